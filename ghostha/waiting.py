"""One poll loop (deadline, interval, injected clock and sleep) and the named waits built on it.

Not botocore's waiters: they poll every 15 s and report a service stable after its circuit breaker rolled the
deployment back. Each wait says what it waits for, shows progress through a `Progress` sink, and on timeout says
what was still missing. Nothing here prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import RolloutFailed, WaitTimeout
from ghostha.observe import Json, chunks, cluster_instances, service_tasks

T = TypeVar("T")


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


def wait_instances(aws: Aws, cfg: Config, deadline: Deadline, progress: Progress) -> list[Json]:
    """Until `instance_count` container instances are ACTIVE with their agent connected."""
    want = cfg.cluster.instance_count
    have: list[Json] = []

    def check() -> list[Json] | None:
        nonlocal have
        found = cluster_instances(aws, cfg.cluster.name)
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


def wait_service(
    aws: Aws,
    cfg: Config,
    deployment_id: str,
    task_definition: str,
    target_group_arn: str,
    deadline: Deadline,
    progress: Progress,
    events_since: datetime | None = None,
) -> ServiceProgress:
    """Until the deployment this run started is COMPLETED, `desired_count` tasks of its revision run, and each of
    their (instance, host port) targets is healthy. A FAILED rollout or a rollback raises RolloutFailed at once.

    Service events are shown as they come: from `events_since` (when this run changed the service), else only
    those newer than the first look."""
    ecs, elbv2 = aws.client("ecs"), aws.client("elbv2")
    seen_events: set[str] = set()
    instance_of: dict[str, str] = {}  # container instance ARN → EC2 id
    state = ServiceProgress(desired=cfg.service.desired_count)
    first = True

    def check() -> ServiceProgress | None:
        nonlocal first
        svc = ecs.describe_services(cluster=cfg.cluster.name, services=[cfg.service.name])["services"][0]
        events = list(reversed(svc.get("events", [])[:10]))
        for e in events:
            if e["id"] not in seen_events:
                seen_events.add(e["id"])
                fresh = events_since is not None and e.get("createdAt") and e["createdAt"] >= events_since
                if not first or fresh:
                    progress.event(e["message"])
        first = False
        deployments = {d["id"]: d for d in svc.get("deployments", [])}
        mine = deployments.get(deployment_id)
        primary = primary_deployment(svc)
        if mine is not None and mine.get("rolloutState") == "FAILED":
            raise _failed(aws, cfg, svc, f"deployment {deployment_id} failed: {mine.get('rolloutStateReason', '')}")
        if mine is None and primary is not None and primary.get("taskDefinition") != task_definition:
            raise _failed(aws, cfg, svc, f"deployment {deployment_id} was rolled back to {_rev(primary)}")
        tasks = service_tasks(aws, cfg.cluster.name, cfg.service.name, "RUNNING")
        unknown = sorted({t["containerInstanceArn"] for t in tasks if t.get("containerInstanceArn")} - set(instance_of))
        for batch in chunks(unknown, 100):
            for ci in ecs.describe_container_instances(cluster=cfg.cluster.name, containerInstances=batch)[
                "containerInstances"
            ]:
                instance_of[ci["containerInstanceArn"]] = ci["ec2InstanceId"]
        health = elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        by_target = {(h["Target"]["Id"], int(h["Target"]["Port"])): h["TargetHealth"]["State"] for h in health}
        new = [t for t in tasks if t["taskDefinitionArn"] == task_definition and t["lastStatus"] == "RUNNING"]
        healthy = 0
        for t in new:
            key = (instance_of.get(t.get("containerInstanceArn", ""), ""), task_host_port(t, cfg))
            if by_target.get(key) == "healthy":
                healthy += 1
        state.running = int(svc.get("runningCount", 0))
        state.pending = int(svc.get("pendingCount", 0))
        state.desired = int(svc.get("desiredCount", cfg.service.desired_count))
        state.new_running = len(new)
        state.healthy = healthy
        state.target_states = {}
        for s in by_target.values():
            state.target_states[s] = state.target_states.get(s, 0) + 1
        state.rollout = (mine or primary or {}).get("rolloutState", "?")
        progress.status(state.line())
        completed = (mine or primary or {}).get("rolloutState") == "COMPLETED" and len(deployments) == 1
        if completed and len(new) == state.desired and healthy == state.desired:
            return state
        return None

    def timeout() -> WaitTimeout:
        return WaitTimeout(
            f"timed out waiting for service {cfg.service.name}: {state.line()}",
            hint="`ghostha status` shows the service events that explain a stall; `ghostha up` resumes the wait",
        )

    return deadline.poll(check, timeout)


def task_host_port(task: Json, cfg: Config) -> int:
    for c in task.get("containers", []):
        if c.get("name") != cfg.task.container:
            continue
        for b in c.get("networkBindings") or []:
            if int(b.get("containerPort", -1)) == cfg.task.container_port:
                return int(b["hostPort"])
    return -1


def _rev(dep: Json) -> str:
    return str(dep.get("taskDefinition", "?")).rsplit("/", 1)[-1]


def _failed(aws: Aws, cfg: Config, svc: Json, message: str) -> RolloutFailed:
    """The failure with what explains it: newest service events and stopped tasks' reasons."""
    ecs = aws.client("ecs")
    details = [f"event: {e['message']}" for e in svc.get("events", [])[:5]]
    arns = ecs.list_tasks(cluster=cfg.cluster.name, serviceName=cfg.service.name, desiredStatus="STOPPED")["taskArns"]
    if arns:  # the first page is enough to explain a failure
        stopped = ecs.describe_tasks(cluster=cfg.cluster.name, tasks=arns[:100])["tasks"]
        reasons: dict[str, int] = {}
        for t in stopped:
            r = t.get("stoppedReason") or "no reason given"
            reasons[r] = reasons.get(r, 0) + 1
        details += [f"stopped task ({n}x): {r}" for r, n in sorted(reasons.items(), key=lambda x: -x[1])[:5]]
    return RolloutFailed(
        message,
        hint="the events above say why; a common cause is the instances' security group not admitting the ALB on "
        "the dynamic ports (run `ghostha up` again to restore the rule)",
        details=details,
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
