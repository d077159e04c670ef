"""Runs a plan step by step: one AWS call per step (or a named wait), reporting each through a `Reporter`.

Values that do not exist until an earlier step ran (the new revision's ARN, the service's deployment id) are
filled in as it goes. An instance profile that is not usable yet is retried, as AWS asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import GhosthaError, from_boto
from ghostha.observe import cluster_instances, service_tasks
from ghostha.plan import Plan, Ref, Step, TeardownPlan
from ghostha.waiting import Deadline, Progress, primary_deployment, wait_for, wait_instances, wait_service


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
            changed = svc is not None  # this run created or updated the service
            if svc is None:
                ecs = aws.client("ecs")
                svc = ecs.describe_services(cluster=cfg.cluster.name, services=[cfg.service.name])["services"][0]
            dep = primary_deployment(svc) or {}
            tg = aws.client("elbv2").describe_target_groups(Names=[cfg.load_balancer.target_group])["TargetGroups"][0]
            state = wait_service(
                aws,
                cfg,
                str(dep.get("id")),
                str(dep.get("taskDefinition")),
                tg["TargetGroupArn"],
                deadline,
                reporter,
                events_since=dep.get("createdAt") if changed else None,
            )
            reporter.done(step, f"{state.new_running} tasks running, {state.healthy} targets healthy")
    return outputs


# --- teardown -------------------------------------------------------------------------------------------------

_CLUSTER_BUSY = (
    "ClusterContainsContainerInstancesException",
    "ClusterContainsTasksException",
    "ClusterContainsServicesException",
)


def execute_teardown(aws: Aws, cfg: Config, plan: TeardownPlan, deadline: Deadline, reporter: Reporter) -> None:
    ecs = aws.client("ecs")
    hint = "run `ghostha teardown` again: it finishes what is left"
    cluster, service = cfg.cluster.name, cfg.service.name

    def tasks_left() -> str | None:
        running = service_tasks(aws, cluster, service, "RUNNING")
        stopping = service_tasks(aws, cluster, service, "STOPPED")
        left = len(running) + sum(1 for t in stopping if t.get("lastStatus") != "STOPPED")
        return f"{left} tasks not stopped yet" if left else None

    def service_left() -> str | None:
        svcs = ecs.describe_services(cluster=cluster, services=[service])["services"]
        live = [s for s in svcs if s.get("status") not in (None, "INACTIVE")]
        return f"service {service} {live[0]['status']}" if live else None

    def asg_left() -> str | None:
        auto = aws.client("autoscaling")
        groups = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[cfg.asg_name])["AutoScalingGroups"]
        return f"group {cfg.asg_name} with {len(groups[0].get('Instances', []))} instances" if groups else None

    waits: dict[str, Callable[[], str | None]] = {
        "wait-tasks-stopped": tasks_left,
        "wait-service-inactive": service_left,
        "wait-asg-gone": asg_left,
    }

    for step in plan.steps:
        reporter.step(step)
        if step.action in waits:
            wait_for(deadline, reporter, step.resource, waits[step.action], hint)
        elif step.action == "deregister-container-instances":
            for arn in [ci["containerInstanceArn"] for ci in cluster_instances(aws, cluster)]:
                _call(aws, step, {**step.params, "containerInstance": arn}, deadline.sleep)
        elif step.action == "delete-cluster":

            def delete_when_empty(step: Step = step) -> str | None:
                try:
                    _call(aws, step, step.params, deadline.sleep)
                except GhosthaError as exc:
                    if any(code in exc.message for code in _CLUSTER_BUSY):
                        return "container instances or tasks still registered"
                    raise
                return None

            wait_for(deadline, reporter, f"cluster {cluster} to delete", delete_when_empty, hint)
        else:
            _call(aws, step, step.params, deadline.sleep)
        reporter.done(step)
