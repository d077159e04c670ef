"""Runs a plan step by step, reporting each through a `Reporter`: a step is one AWS call, or a `run` (a wait, a
rolling replacement) given by its resource module.

Values that do not exist until an earlier step ran (the new revision's ARN, the service) are filled in as it goes.
AWS errors a step names as "not yet" (`retry_codes`) are retried within the deadline, and those that mean "already
done" (`done_codes`) count as done. An instance profile that is not usable yet is retried, as AWS asks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import error_code, from_boto
from ghostha.observe import Observed
from ghostha.plan import Plan, TeardownPlan
from ghostha.resources.base import HINT, Context, Ref, Step
from ghostha.waiting import Deadline, Progress, wait_for


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
    """One AWS call. Returns None when AWS says its effect is already there (`done_codes`)."""
    from botocore.exceptions import ClientError

    assert step.service and step.operation
    method = getattr(aws.client(step.service), step.operation)
    for attempt in range(6):
        try:
            return method(**params)
        except ClientError as exc:
            if error_code(exc) in step.done_codes:
                return None
            if "Invalid IAM Instance Profile" in str(exc) and attempt < 5:
                sleep(2.0 * (attempt + 1))  # a new instance profile takes seconds to be usable
                continue
            if error_code(exc) in step.retry_codes:
                raise  # the caller retries it within the deadline
            raise from_boto(exc) from None
    raise AssertionError("unreachable")


def _run_call(ctx: Context, step: Step, hint: str) -> str:
    """The step's AWS call, retried while AWS answers one of its `retry_codes`; keeps its output."""
    from botocore.exceptions import ClientError

    params = _resolve(step.params, ctx.outputs)
    result: list[Any] = []

    def attempt() -> str | None:
        try:
            result.append(_call(ctx.aws, step, params, ctx.deadline.sleep))
        except ClientError as exc:
            return f"AWS says {error_code(exc)}"  # only retry codes come back raw
        return None

    if step.retry_codes:
        wait_for(ctx.deadline, ctx.progress, step.resource, attempt, hint)
    elif attempt() is not None:  # pragma: no cover - attempt only returns text for retry codes
        raise AssertionError("unreachable")
    if step.output and result and result[-1] is not None:
        ctx.outputs[step.output] = step.extract(result[-1]) if step.extract else result[-1]
    return ""


def _execute(ctx: Context, steps: tuple[Step, ...], reporter: Reporter, hint: str) -> dict[str, Any]:
    for step in steps:
        reporter.step(step)
        note = step.run(ctx) if step.run is not None else _run_call(ctx, step, hint)
        reporter.done(step, note)
    return ctx.outputs


def execute(
    aws: Aws, cfg: Config, plan: Plan, deadline: Deadline, reporter: Reporter, observed: Observed | None = None
) -> dict[str, Any]:
    """Run `up`'s plan. What the run `observed` first tells which events and activities are this run's: those
    after AWS's clock then, and not already there."""
    since = observed.observed_at if observed else None
    known = frozenset(str(e.get("id")) for e in ((observed.service or {}) if observed else {}).get("events", []))
    deadline.aws_start = since
    ctx = Context(aws, cfg, deadline, reporter, since=since, known_events=known)
    return _execute(ctx, plan.steps, reporter, "run `ghostha up` again: it picks up where it stopped")


def execute_teardown(aws: Aws, cfg: Config, plan: TeardownPlan, deadline: Deadline, reporter: Reporter) -> None:
    _execute(Context(aws, cfg, deadline, reporter), plan.steps, reporter, HINT)
