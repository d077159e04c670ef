"""One poll loop (deadline, interval, injected clock and sleep) and the named waits built on it.

Not botocore's waiters: they poll every 15 s and report a service stable after its circuit breaker rolled the
deployment back. Each wait says what it waits for, shows progress through a `Progress` sink, and on timeout says
what was still missing. Nothing here prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import AwsError, RolloutFailed, WaitTimeout
from ghostha.observe import Json, chunks, ci_resource, cluster_instances, maybe, service_tasks, short

T = TypeVar("T")
# ECS's event for a service whose tasks keep failing to start (developer guide, "Amazon ECS service throttle logic")
THROTTLED = "is unable to consistently start tasks successfully"


class Progress(Protocol):
    def status(self, text: str) -> None: ...

    def event(self, text: str) -> None: ...


class NoProgress:
    def status(self, text: str) -> None:
        pass

    def event(self, text: str) -> None:
        pass


@dataclass
class Deadline:
    """A shared deadline for a run's waits, on an injected clock."""

    clock: Callable[[], float]
    sleep: Callable[[float], None]
    seconds: float
    interval: float = 5.0
    start: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.start = self.clock()

    aws_start: datetime | None = None  # AWS's clock when the run looked (see Context.since)

    def aws_now(self, _svc: Json | None = None) -> datetime | None:
        """AWS's clock now, estimated from when the run looked plus the time elapsed since on ours."""
        if self.aws_start is None:
            return None
        return self.aws_start + timedelta(seconds=self.clock() - self.start)

    @property
    def remaining(self) -> float:
        return self.start + self.seconds - self.clock()

    def poll(self, check: Callable[[], T | None], timeout: Callable[[], WaitTimeout]) -> T:
        """Call `check` every `interval` until it returns a value; raise `timeout()` past the deadline."""
        while True:
            result = check()
            if result is not None:
                return result
            if self.remaining <= 0:
                raise timeout()
            self.sleep(max(0.0, min(self.interval, self.remaining)))


def wait_instances(
    aws: Aws, cfg: Config, deadline: Deadline, progress: Progress, fail_fast: Callable[[], None] | None = None
) -> list[Json]:
    """Until `instance_count` container instances are ACTIVE with their agent connected. `fail_fast` raises when
    the instances can never come (a failed scaling activity says why)."""
    want = cfg.cluster.instance_count
    have: list[Json] = []

    def check() -> list[Json] | None:
        nonlocal have
        if fail_fast is not None:
            fail_fast()
        found = cluster_instances_soon(aws, cfg.cluster.name)
        have = [ci for ci in found if ci.get("status") == "ACTIVE" and ci.get("agentConnected")]
        progress.status(f"waiting for container instances in {cfg.cluster.name}: {len(have)} of {want} registered")
        return have if len(have) >= want else None

    def timeout() -> WaitTimeout:
        return WaitTimeout(
            f"timed out waiting for {want} container instances in cluster {cfg.cluster.name} ({len(have)} registered)",
            hint=(
                "likely causes: the instance profile lacks AmazonEC2ContainerServiceforEC2Role; the user data does "
                f"not set ECS_CLUSTER={cfg.cluster.name}; the instances cannot reach ECS (no public IP or NAT in "
                "their subnets). Run `ghostha up` again once fixed."
            ),
        )

    return deadline.poll(check, timeout)


@dataclass
class ServiceProgress:
    running: int = 0
    pending: int = 0
    desired: int = 0
    new_running: int = 0
    healthy: int = 0
    target_states: dict[str, int] = field(default_factory=dict)
    rollout: str = "?"

    def line(self) -> str:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.target_states.items())) or "none"
        return (
            f"rollout {self.rollout}: {self.new_running}/{self.desired} new tasks running "
            f"({self.running} running, {self.pending} pending in all); targets: {states}"
        )


def primary_deployment(service: Json) -> Json | None:
    return next((d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), None)


def describe_service(
    aws: Aws, cfg: Config, name: str, sleep: Callable[[float], None] = time.sleep, patience: float = 60.0
) -> Json:
    """The service, read until AWS knows it: right after CreateService, DescribeServices may answer with
    `failures: [{reason: MISSING}]` for a while (eventual consistency). Retried with exponential backoff (1, 2, 4,
    8 s, …) for up to `patience` seconds, as AWS advises; raises if it never appears."""
    ecs = aws.client("ecs")
    waited = 0.0
    delay = 1.0
    while True:
        resp = ecs.describe_services(cluster=cfg.cluster.name, services=[name])
        services = resp.get("services") or []
        if services:
            return dict(services[0])
        if waited >= patience:
            break
        step = min(delay, patience - waited)
        sleep(step)
        waited += step
        delay = min(delay * 2, 15.0)
    failures = resp.get("failures") or [{}]
    raise AwsError(
        f"service {name} not found in cluster {cfg.cluster.name} ({failures[0].get('reason', 'MISSING')})",
        hint="run `ghostha up` again: it creates what is missing",
    )


def cluster_instances_soon(aws: Aws, cluster: str) -> tuple[Json, ...]:
    """The cluster's container instances; none while AWS does not know the new cluster yet."""
    return maybe(lambda: cluster_instances(aws, cluster)) or ()


def wait_service(
    aws: Aws,
    cfg: Config,
    deployment_id: str,
    task_definition: str,
    target_group_arn: str,
    deadline: Deadline,
    progress: Progress,
    events_since: datetime | None = None,
    known_events: frozenset[str] = frozenset(),
) -> ServiceProgress:
    """Until the deployment this run started is COMPLETED, `desired_count` tasks of its revision run, and each of
    their (instance, host port) targets is healthy. Fails at once when it cannot end well: the rollout FAILED or
    was rolled back; a task could not be placed for three polls in a row with nothing pending or stopping; a
    target stays unhealthy past the health-check grace period; ECS throttles the service (its tasks keep failing
    to start). An AZ rebalancing (more tasks than desired for a while) is waited out, not a failure.

    Only this run's service events are shown: those at or after `events_since` (AWS's clock when the run looked),
    else those newer than the first look; never those in `known_events` (already there when the run looked)."""
    ecs, elbv2 = aws.client("ecs"), aws.client("elbv2")
    seen_events: set[str] = set(known_events)
    instance_of: dict[str, str] = {}  # container instance ARN → EC2 id
    state = ServiceProgress(desired=cfg.service.desired_count)
    first = True
    unplaced = 0

    def check() -> ServiceProgress | None:
        nonlocal first, unplaced
        svc = describe_service(aws, cfg, cfg.service.name, deadline.sleep)
        events = list(reversed(svc.get("events", [])[:20]))
        fresh_events: list[str] = []
        for e in events:
            if e["id"] not in seen_events:
                seen_events.add(e["id"])
                at = e.get("createdAt")
                fresh = events_since is not None and isinstance(at, datetime) and at >= events_since
                if (not first and events_since is None) or fresh:
                    progress.event(e["message"])
                    fresh_events.append(e["message"])
        first = False
        throttle = next((m for m in fresh_events if THROTTLED in m), None)
        if throttle is not None:
            # ECS developer guide, "Amazon ECS service throttle logic": tasks go PENDING → STOPPED again and again;
            # ECS keeps retrying, ever more slowly (up to 27 minutes apart): waiting longer does not help
            raise _failed(aws, cfg, svc, f"service {cfg.service.name} cannot start its tasks: {throttle}")
        deployments = {d["id"]: d for d in svc.get("deployments", [])}
        mine = deployments.get(deployment_id)
        primary = primary_deployment(svc)
        if mine is not None and mine.get("rolloutState") == "FAILED":
            raise _failed(aws, cfg, svc, f"deployment {deployment_id} failed: {mine.get('rolloutStateReason', '')}")
        if mine is None and primary is not None and primary.get("taskDefinition") != task_definition:
            raise _failed(aws, cfg, svc, f"deployment {deployment_id} was rolled back to {_rev(primary)}")
        # right after CreateService, ListTasks may not know the service yet (eventual consistency)
        tasks = maybe(lambda: service_tasks(aws, cfg.cluster.name, cfg.service.name, "RUNNING")) or ()
        unknown = sorted({t["containerInstanceArn"] for t in tasks if t.get("containerInstanceArn")} - set(instance_of))
        for batch in chunks(unknown, 100):
            for ci in ecs.describe_container_instances(cluster=cfg.cluster.name, containerInstances=batch)[
                "containerInstances"
            ]:
                instance_of[ci["containerInstanceArn"]] = ci["ec2InstanceId"]
        health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        by_target = {(h["Target"]["Id"], int(h["Target"]["Port"])): h["TargetHealth"] for h in health}
        new = [t for t in tasks if t["taskDefinitionArn"] == task_definition and t["lastStatus"] == "RUNNING"]
        healthy = 0
        grace = float(svc.get("healthCheckGracePeriodSeconds") or 0)
        now = deadline.aws_now(svc)
        for t in new:
            key = (instance_of.get(t.get("containerInstanceArn", ""), ""), task_host_port(t, cfg))
            th = by_target.get(key) or {}
            if th.get("State") == "healthy":
                healthy += 1
            elif (
                th.get("State") == "unhealthy"
                and _started_since(t, events_since)
                and _past(t.get("startedAt"), now, grace)
            ):
                reason = th.get("Reason") or "no reason given"
                raise _failed(
                    aws,
                    cfg,
                    svc,
                    f"target {key[0]}:{key[1]} of task {t['taskArn'].rsplit('/', 1)[-1]} is unhealthy past the "
                    f"{grace:g} s grace period ({reason}: {th.get('Description') or ''})".rstrip(": )")
                    + ")",
                )
        state.running = int(svc.get("runningCount", 0))
        state.pending = int(svc.get("pendingCount", 0))
        state.desired = int(svc.get("desiredCount", cfg.service.desired_count))
        state.new_running = len(new)
        state.healthy = healthy
        state.target_states = {}
        for th in by_target.values():
            state.target_states[th["State"]] = state.target_states.get(th["State"], 0) + 1
        state.rollout = (mine or primary or {}).get("rolloutState", "?")
        progress.status(state.line())
        completed = (mine or primary or {}).get("rolloutState") == "COMPLETED" and len(deployments) == 1
        if completed and len(new) == state.desired and healthy == state.desired:
            return state
        cannot = next((m for m in fresh_events if "was unable to place a task" in m), None) or (
            _newest_unplaceable(svc) if unplaced else None
        )
        stopping = service_tasks(aws, cfg.cluster.name, cfg.service.name, "STOPPED") if cannot else ()
        if cannot and state.pending == 0 and not any(t.get("lastStatus") != "STOPPED" for t in stopping):
            unplaced += 1
            if unplaced >= 3:
                raise _unplaceable(aws, cfg, svc, cannot)
        else:
            unplaced = 0
        return None

    def timeout() -> WaitTimeout:
        return WaitTimeout(
            f"timed out waiting for service {cfg.service.name}: {state.line()}",
            hint="`ghostha status` shows the service events that explain a stall; `ghostha up --timeout SECONDS` "
            "waits longer (the timeout may be too short for a large service) and resumes the wait",
        )

    return deadline.poll(check, timeout)


def _started_since(task: Json, since: datetime | None) -> bool:
    """A task this run started (older tasks may be recovering from what this run just fixed)."""
    started = task.get("startedAt")
    return since is not None and isinstance(started, datetime) and started >= since


def _past(started: Any, now: datetime | None, grace: float) -> bool:
    return isinstance(started, datetime) and now is not None and (now - started).total_seconds() > grace


def _newest_unplaceable(svc: Json) -> str | None:
    events = svc.get("events") or []
    newest = events[0]["message"] if events else ""
    return newest if "was unable to place a task" in newest else None


def _unplaceable(aws: Aws, cfg: Config, svc: Json, event: str) -> RolloutFailed:
    """Tasks that cannot be placed: the event, and each instance's free memory against one task's reservation."""
    details = [f"event: {event}"]
    td = svc.get("taskDefinition")
    need = 0
    if td:
        tdef = aws.client("ecs").describe_task_definition(taskDefinition=td)["taskDefinition"]
        need = sum(int(c.get("memoryReservation") or c.get("memory") or 0) for c in tdef["containerDefinitions"])
        need = need or int(tdef.get("memory") or 0)
    for ci in cluster_instances_soon(aws, cfg.cluster.name):
        free = ci_resource(ci, "MEMORY")
        details.append(
            f"instance {ci['ec2InstanceId']}: {free} MiB free, {ci.get('runningTasksCount', 0)} tasks; "
            f"a task reserves {need} MiB"
        )
    running, desired = int(svc.get("runningCount", 0)), int(svc.get("desiredCount", 0))
    return RolloutFailed(
        f"service {cfg.service.name} cannot place all its tasks: {running} of {desired} running, nothing pending",
        hint="lower service.desired_count, raise cluster.instance_count, or use a larger cluster.instance_type; "
        "then run `ghostha up` again",
        details=details,
    )


def service_whole(aws: Aws, cfg: Config, sleep: Callable[[float], None]) -> str | None:
    """None when the service runs its desired count with every registered non-draining target healthy; else what
    is still missing (used while instances are drained and replaced)."""
    svc = describe_service(aws, cfg, cfg.service.name, sleep)
    desired, running = int(svc.get("desiredCount", 0)), int(svc.get("runningCount", 0))
    if running < desired or int(svc.get("pendingCount", 0)) > 0:
        return f"{running} of {desired} tasks running"
    elbv2 = aws.client("elbv2")
    arns = [lb["targetGroupArn"] for lb in svc.get("loadBalancers") or [] if lb.get("targetGroupArn")]
    for arn in arns:
        health = elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
        live = [h for h in health if h["TargetHealth"]["State"] != "draining"]
        good = [h for h in live if h["TargetHealth"]["State"] == "healthy"]
        if len(good) < desired or len(good) < len(live):
            return f"{len(good)} of {desired} targets healthy"
    return None


def service_tasks_left(name: str, hint: str, at_most: int = 0) -> Callable[[Any], str]:
    """A step that waits until at most `at_most` of the service's tasks are left (stopping ones still hold their
    memory and ports, so they count until STOPPED)."""

    def run(ctx: Any) -> str:
        cluster = ctx.cfg.cluster.name

        def left() -> str | None:
            running = maybe(lambda: service_tasks(ctx.aws, cluster, name, "RUNNING")) or ()
            stopping = maybe(lambda: service_tasks(ctx.aws, cluster, name, "STOPPED")) or ()
            n = len(running) + sum(1 for t in stopping if t.get("lastStatus") != "STOPPED")
            return f"{n} tasks not stopped yet" if n > at_most else None

        wait_for(ctx.deadline, ctx.progress, f"tasks of service {name}", left, hint)
        return f"{at_most} left" if at_most else "stopped"

    return run


def healthy_tasks(aws: Aws, cfg: Config, service: str, target_group_arn: str) -> tuple[int, int]:
    """(RUNNING tasks of the service, how many of them have a healthy target), joined by (instance, host port)."""
    ecs = aws.client("ecs")
    tasks = maybe(lambda: service_tasks(aws, cfg.cluster.name, service, "RUNNING")) or ()
    running = [t for t in tasks if t.get("lastStatus") == "RUNNING"]
    arns = sorted({t["containerInstanceArn"] for t in running if t.get("containerInstanceArn")})
    instance_of: dict[str, str] = {}
    for batch in chunks(arns, 100):
        for ci in ecs.describe_container_instances(cluster=cfg.cluster.name, containerInstances=batch)[
            "containerInstances"
        ]:
            instance_of[ci["containerInstanceArn"]] = ci["ec2InstanceId"]
    health = aws.client("elbv2").describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
    good = {(h["Target"]["Id"], int(h["Target"]["Port"])) for h in health if h["TargetHealth"]["State"] == "healthy"}
    healthy = sum(
        1 for t in running if (instance_of.get(t.get("containerInstanceArn", ""), ""), task_host_port(t, cfg)) in good
    )
    return len(running), healthy


def service_healthy_at_least(name: str, count: int, hint: str) -> Callable[[Any], str]:
    """A step that waits until `count` tasks of the service run with healthy targets (a partial handover)."""

    def run(ctx: Any) -> str:
        tg = ctx.aws.client("elbv2").describe_target_groups(Names=[ctx.cfg.load_balancer.target_group])
        arn = tg["TargetGroups"][0]["TargetGroupArn"]

        def left() -> str | None:
            running, healthy = healthy_tasks(ctx.aws, ctx.cfg, name, arn)
            return None if healthy >= count else f"{healthy} of {count} healthy ({running} running)"

        wait_for(ctx.deadline, ctx.progress, f"service {name} to take over", left, hint)
        return f"{count} healthy"

    return run


def service_gone(name: str, hint: str) -> Callable[[Any], str]:
    """A step that waits until the deleted service is INACTIVE (or unknown)."""

    def run(ctx: Any) -> str:
        ecs = ctx.aws.client("ecs")

        def left() -> str | None:
            resp = maybe(lambda: ecs.describe_services(cluster=ctx.cfg.cluster.name, services=[name]))
            live = [s for s in (resp or {}).get("services", []) if s.get("status") not in (None, "INACTIVE")]
            return f"service {name} {live[0]['status']}" if live else None

        wait_for(ctx.deadline, ctx.progress, f"service {name}", left, hint)
        return "INACTIVE"

    return run


def task_host_port(task: Json, cfg: Config) -> int:
    for c in task.get("containers", []):
        if c.get("name") != cfg.task.container:
            continue
        for b in c.get("networkBindings") or []:
            if int(b.get("containerPort", -1)) == cfg.task.container_port:
                return int(b["hostPort"])
    return -1


def _rev(dep: Json) -> str:
    return short(dep.get("taskDefinition"), missing="?")


def stop_reasons(tasks: tuple[Json, ...] | list[Json]) -> list[tuple[str, int]]:
    """The stopped tasks' reasons, most frequent first (five at most), each with its count."""
    reasons: dict[str, int] = {}
    for t in tasks:
        r = str(t.get("stoppedReason") or "no reason given")
        reasons[r] = reasons.get(r, 0) + 1
    return sorted(reasons.items(), key=lambda x: -x[1])[:5]


def _failed(aws: Aws, cfg: Config, svc: Json, message: str) -> RolloutFailed:
    """The failure with what explains it: newest service events and stopped tasks' reasons."""
    ecs = aws.client("ecs")
    details = [f"event: {e['message']}" for e in svc.get("events", [])[:5]]
    stopped: list[Json] = []
    arns = (
        maybe(lambda: ecs.list_tasks(cluster=cfg.cluster.name, serviceName=cfg.service.name, desiredStatus="STOPPED"))
        or {}
    ).get("taskArns", [])
    if arns:  # the first page is enough to explain a failure
        stopped = ecs.describe_tasks(cluster=cfg.cluster.name, tasks=arns[:100])["tasks"]
        details += [f"stopped task ({n}x): {r}" for r, n in stop_reasons(stopped)]
    return RolloutFailed(message, hint=failure_hint(stopped), details=details)


def failure_hint(stopped: list[Json]) -> str:
    """What to do, from how the service's tasks stopped: tasks that never ran (an image that cannot be pulled, a
    container that cannot start) are not a network problem."""
    # on the EC2 launch type the pull error may be only a container's reason, not the task's
    reasons = [str(t.get("stoppedReason") or "") for t in stopped]
    reasons += [str(c.get("reason") or "") for t in stopped for c in t.get("containers", [])]
    if any(r.startswith("CannotPullContainerError") for r in reasons):
        return (
            "the instances cannot pull the task's image: check the image name and tag in the family's latest "
            "revision (`ghostha up` copies it; register a revision whose image exists), and that the instances "
            "can reach the registry; then run `ghostha up` again"
        )
    if any(t.get("stopCode") == "TaskFailedToStart" for t in stopped):
        return "the tasks stop before they run: the stopped tasks' reasons above say why; fix it, then `ghostha up`"
    return (
        "the events above say why; common causes: the instances' security group not admitting the ALB on the "
        "dynamic ports (`ghostha up` restores ghostha's rule), or the ALB's security group not letting traffic out "
        "to them (`ghostha doctor` names the rule to add)"
    )


def wait_for(deadline: Deadline, progress: Progress, what: str, check: Callable[[], str | None], hint: str) -> None:
    """Until `check` returns None; it returns what is still there (shown while waiting and on timeout)."""
    left = ""

    def poll() -> bool | None:
        nonlocal left
        left = check() or ""
        if not left:
            return True
        progress.status(f"waiting for {what}: {left}")
        return None

    deadline.poll(poll, lambda: WaitTimeout(f"timed out waiting for {what}; still there: {left}", hint=hint))
