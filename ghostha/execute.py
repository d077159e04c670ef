"""Runs a plan step by step: one AWS call per step (or a named wait), reporting each through a `Reporter`.

Values that do not exist until an earlier step ran (the new revision's ARN, the service's deployment id) are
filled in as it goes. An instance profile that is not usable yet is retried, as AWS asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import from_boto
from ghostha.plan import Plan, Ref, Step
from ghostha.waiting import Deadline, Progress, primary_deployment, wait_instances, wait_service


class Reporter(Progress, Protocol):
    def step(self, step: Step) -> None: ...

    def done(self, step: Step, note: str = "") -> None: ...


def _resolve(value: Any, outputs: dict[str, Any]) -> Any:
    if isinstance(value, Ref):
        return outputs[value.name]
    if isinstance(value, dict):
        return {k: _resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, outputs) for v in value]
    return value


def _call(aws: Aws, step: Step, params: dict[str, Any], sleep: Callable[[float], None]) -> Any:
    from botocore.exceptions import ClientError

    assert step.service and step.operation
    method = getattr(aws.client(step.service), step.operation)
    for attempt in range(6):
        try:
            return method(**params)
        except ClientError as exc:
            if "Invalid IAM Instance Profile" in str(exc) and attempt < 5:
                sleep(2.0 * (attempt + 1))  # a new instance profile takes seconds to be usable
                continue
            raise from_boto(exc) from None
    raise AssertionError("unreachable")


def execute(aws: Aws, cfg: Config, plan: Plan, deadline: Deadline, reporter: Reporter) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    for step in plan.steps:
        reporter.step(step)
        if step.mutating:
            result = _call(aws, step, _resolve(step.params, outputs), deadline.sleep)
            if step.output == "task_definition_arn":
                outputs[step.output] = result["taskDefinition"]["taskDefinitionArn"]
            elif step.output:
                outputs[step.output] = result.get("service", result)
            reporter.done(step)
        elif step.action == "wait-instances":
            found = wait_instances(aws, cfg, deadline, reporter)
            reporter.done(step, f"{len(found)} registered")
        elif step.action == "wait-service":
            svc = outputs.get("service")
            if svc is None:
                ecs = aws.client("ecs")
                svc = ecs.describe_services(cluster=cfg.cluster.name, services=[cfg.service.name])["services"][0]
            dep = primary_deployment(svc) or {}
            tg = aws.client("elbv2").describe_target_groups(Names=[cfg.load_balancer.target_group])["TargetGroups"][0]
            state = wait_service(
                aws, cfg, str(dep.get("id")), str(dep.get("taskDefinition")), tg["TargetGroupArn"], deadline, reporter
            )
            reporter.done(step, f"{state.new_running} tasks running, {state.healthy} targets healthy")
    return outputs
