"""The simulation: what ECS, its agent, Auto Scaling and ELBv2 do on their own, acted out on moto's backends.

Rules (each small and honest; times are simulated seconds):
- Agent: a running EC2 instance registers `BOOT_SECONDS` after launch into the cluster named by `ECS_CLUSTER=` in
  its user data (else `default`, created if missing), sized by its instance type. Without an instance profile
  it never registers. A terminated instance is deregistered and its tasks stop.
- Scheduler: every ACTIVE service is reconciled towards its desired count: tasks placed by the service's
  placement strategy within CPU, memory and port limits; a task that cannot be placed gives an ECS-worded event.
- Dynamic host ports: a mapping with host port 0 (or none) in bridge mode gets the lowest free port in
  32768-60999 on its instance.
- Tasks: PENDING for `PULL_SECONDS`, then RUNNING; their targets are registered `(instance, host port)`.
- Targets: a health check every interval; `healthy_threshold` passes in a row make a target `healthy`,
  `unhealthy_threshold` failures `unhealthy`. A check fails (Target.Timeout) when the instances' security group
  does not admit the load balancer's on that port, or the load balancer's group lets no traffic out to it; with
  the data plane on (dataplane.py) it is also a real HTTP request to the task, which must answer with the group's
  matcher. Deregistered targets drain for the group's
  deregistration delay, then disappear.
- Stops: the scheduler deregisters a task's targets first and keeps it DEACTIVATING (serving) for the
  deregistration delay, then stops it; `StopTask` sends SIGTERM at once (STOPPING) while the targets drain.
- After the health-check grace period a task whose target is unhealthy is stopped and replaced; with the
  deployment circuit breaker on, enough such failures mark the rollout FAILED and roll back.
- Rolling updates honour minimum healthy / maximum percent; DRAINING services stop their tasks, then go INACTIVE.
- A DRAINING container instance gets no new task; its PENDING service tasks stop at once and its RUNNING ones are
  replaced elsewhere like an old deployment's (replacements first within maximum percent, stops within minimum
  healthy percent). ACTIVE again, it is placeable again.
- AZ rebalancing (availabilityZoneRebalancing ENABLED, the first placement strategy spreading by AZ): once steady,
  a service whose tasks are unevenly spread over its cluster's AZs starts tasks in the short AZs (within maximum
  percent) and stops them in the long ones once the new ones are healthy; not during a deployment.
- Tasks whose image is in `unpullable_images` go PENDING → STOPPED (TaskFailedToStart, CannotPullContainerError);
  they count as failed for the circuit breaker, and from the second such round in a row the service is throttled:
  relaunches wait 30 s, doubling up to 27 minutes, until a task runs or a new task definition is deployed.
- Auto Scaling (scaling.py): activities, failed launches, slow terminations and deletions; see that module.
Service events are worded as ECS words them, newest first.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.autoscaling.models import autoscaling_backends
from moto.ec2.models import ec2_backends
from moto.ec2.models.instance_types import INSTANCE_TYPES
from moto.ecs import models as ecs_models
from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends
from moto.moto_api._internal import mock_random

from ghostha.sandbox import scaling
from ghostha.sandbox.clock import SimClock
from ghostha.sandbox.hooks import instance_profile_of, target_key, user_data_text

ACCOUNT = "123456789012"  # moto's default account
BOOT_SECONDS = 30.0  # launch → agent registered
PULL_SECONDS = 10.0  # task PENDING → RUNNING
STOP_SECONDS = 30.0  # a stopping task's containers get SIGTERM, then SIGKILL after the default stopTimeout
EPHEMERAL = (32768, 60999)
RESERVED_PORTS = {22, 2375, 2376, 51678, 51679}
DEFAULT_STRATEGY = [
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
]
EVENT_LIMIT = 100
SICK_STOP_SECONDS = 10.0  # without room for replacements, unhealthy tasks stop one by one, this far apart
# why a task does not fit on a container instance, as ECS words it in service events
PORTS_PROBLEM = "is already using a port required by your task"
MEMORY_PROBLEM = "has insufficient memory available"
CPU_PROBLEM = "has insufficient CPU units available"
RETIRED_SECONDS = 3600.0  # a deregistered container instance stays describable (INACTIVE) this long
# service throttle logic: after the second round of tasks that failed to start in a row, relaunches wait this long,
# doubling each round, up to ECS's documented maximum of 27 minutes
THROTTLE_FIRST_SECONDS = 30.0
THROTTLE_MAX_SECONDS = 27 * 60.0
THROTTLED = "is unable to consistently start tasks successfully."
_CLUSTER_RE = re.compile(r"ECS_CLUSTER=([A-Za-z0-9_-]+)")


def instance_resources(instance_type: str) -> tuple[int, int]:
    """CPU units and MiB of memory an ECS agent reports for an instance type (t3.small: 2048 / 1900)."""
    info = INSTANCE_TYPES.get(instance_type) or INSTANCE_TYPES["t3.small"]
    vcpus = int(info["VCpuInfo"]["DefaultVCpus"])
    mib = int(info["MemoryInfo"]["SizeInMiB"])
    return vcpus * 1024, int(mib * 0.928)


@dataclass(frozen=True)
class Needs:
    cpu: int
    memory: int
    static_ports: frozenset[int]
    dynamic_ports: int


def task_needs(td: Any) -> Needs:
    """What a task of this definition takes from an instance. ECS places by memoryReservation when set."""
    cached = getattr(td, "sim_needs", None)
    if cached is None:
        cached = td.sim_needs = _needs(td)
    return cached  # type: ignore[no-any-return]


def _needs(td: Any) -> Needs:
    cpu = 0
    memory = 0
    static: set[int] = set()
    dynamic = 0
    for c in td.container_definitions:
        cpu += int(c.get("cpu") or 0)
        memory += int(c.get("memoryReservation") or c.get("memory") or 0)
        for pm in c.get("portMappings") or []:
            host = pm.get("hostPort")
            if td.network_mode in (None, "bridge") and not host:
                dynamic += 1
            elif host:
                static.add(int(host))
            elif td.network_mode == "host":
                static.add(int(pm.get("containerPort", 0)))
    if td.cpu and not cpu:
        cpu = int(td.cpu)
    if td.memory and not memory:
        memory = int(td.memory)
    return Needs(cpu, memory, frozenset(static), dynamic)


def ci_arn(ci: Any) -> str:
    """A container instance's ARN (moto computes it on every access; it never changes)."""
    arn = getattr(ci, "sim_arn", None)
    if arn is None:
        arn = ci.sim_arn = ci.container_instance_arn
    return str(arn)


def task_definition(ecs: Any, task: Any) -> Any:
    """A task's definition object, looked up once."""
    td = getattr(task, "sim_td", None)
    if td is None:
        td = task.sim_td = ecs.describe_task_definition(task.task_definition_arn)
    return td


def _sid(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


class Simulator:
    """Reconciles moto's backends towards what AWS would have done by the clock's current time."""

    def __init__(self, clock: SimClock) -> None:
        self.clock = clock
        self._by_id: dict[str, Any] | None = None
        # the data plane, when on: runs a real health check, and syncs its listeners with the tasks
        self.health_checker: Callable[[Any, str, int], tuple[str, str] | None] | None = None
        self.after_tasks: Callable[[], None] | None = None
        # deregistrations since the last pass, per service: its events are written once per pass, aggregated
        self._draining: dict[str, tuple[Any, int, dict[str, int]]] = {}
        # images no registry has (the sandbox's switch, `Sandbox.unpullable_images`): their tasks fail to start
        self.unpullable_images: set[str] = set()

    def instance(self, ec2: Any, instance_id: str) -> Any:
        """An EC2 instance by id (moto copies every reservation per lookup: index them once per pass)."""
        if self._by_id is None or instance_id not in self._by_id:
            self._by_id = {i.id: i for i in ec2.all_instances()}
        return self._by_id.get(instance_id)

    # --- entry point -------------------------------------------------------------------------------------

    def reconcile(self) -> None:
        now = self.clock.seconds()
        if ACCOUNT not in ecs_backends and ACCOUNT not in ec2_backends:
            return
        regions = set(ec2_backends.get(ACCOUNT, {}).keys()) | set(ecs_backends.get(ACCOUNT, {}).keys())
        for region in sorted(regions):
            ec2 = ec2_backends[ACCOUNT][region]
            ecs = ecs_backends[ACCOUNT][region]
            elbv2 = elbv2_backends[ACCOUNT][region]
            self._by_id = None
            self._asg(region, now)
            self._agent(ec2, ecs, now)
            self._tasks(ecs, elbv2, now)
            if self.after_tasks is not None:
                self.after_tasks()
            self._targets(ec2, elbv2, now)
            for svc in list(ecs.services.values()):
                self._service(ec2, ecs, elbv2, svc, now)
            self._counters(ecs)
        self.flush_events()
        if self.after_tasks is not None:
            self.after_tasks()

    # --- Auto Scaling ------------------------------------------------------------------------------------

    def _asg(self, region: str, now: float) -> None:
        if ACCOUNT not in autoscaling_backends or region not in autoscaling_backends[ACCOUNT]:
            return
        for group in list(autoscaling_backends[ACCOUNT][region].autoscaling_groups.values()):
            scaling.advance(group, now)
            # an instance terminated through EC2 leaves the group; one the group terminates stays until it is gone
            kept = [
                s
                for s in group.instance_states
                if s.lifecycle_state == "Terminating" or s.instance.state in ("pending", "running")
            ]
            if len(kept) != len(group.instance_states):
                group.instance_states = kept
            missing = (group.desired_capacity or 0) - len(group.active_instances())
            if missing > 0:
                group.replace_autoscaling_group_instances(missing, group.get_propagated_tags())

    # --- agent -------------------------------------------------------------------------------------------

    def _agent(self, ec2: Any, ecs: Any, now: float) -> None:
        for inst in ec2.all_instances():
            if inst.state == "running":
                seen = getattr(inst, "sim_seen", None)
                if seen is None:
                    inst.sim_seen = seen = now
                if getattr(inst, "sim_ci", None) or now - seen < BOOT_SECONDS:
                    continue
                if instance_profile_of(inst) is None:
                    continue  # no credentials for the agent: it can never register
                match = _CLUSTER_RE.search(user_data_text(inst))
                cluster_name = match.group(1) if match else "default"
                if cluster_name not in ecs.clusters:
                    if cluster_name != "default":
                        continue  # the agent keeps retrying until the cluster exists
                    ecs.create_cluster("default")
                ci = ecs.register_container_instance(cluster_name, inst.id)
                cpu, mem = instance_resources(inst.instance_type)
                for res_list in (ci.registered_resources, ci.remaining_resources):
                    for r in res_list:
                        if r["name"] == "CPU":
                            r["integerValue"] = cpu
                        elif r["name"] == "MEMORY":
                            r["integerValue"] = mem
                ci.registered_at = self.clock.at(now)
                inst.sim_ci = (cluster_name, ci.id)
            elif inst.state in ("shutting-down", "terminated", "stopped", "stopping"):
                ref = getattr(inst, "sim_ci", None)
                if not ref:
                    continue
                cluster_name, ci_id = ref
                cis = ecs.container_instances.get(cluster_name, {})
                ci = cis.get(ci_id)
                if ci is None:
                    inst.sim_ci = None
                    continue
                if inst.state == "stopped" or inst.state == "stopping":
                    ci.agent_connected = False
                    continue
                for task in self._live_tasks(ecs, cluster_name):
                    if task.container_instance_arn == ci_arn(ci):
                        self.stop_task(
                            ecs, task, f"Host EC2 (instance {inst.id}) terminated.", "TerminationNotice", now=True
                        )
                retire(ecs, cluster_name, ci, now)
                del cis[ci_id]
                if cluster_name in ecs.clusters:
                    ecs.clusters[cluster_name].registered_container_instances_count = len(cis)
                inst.sim_ci = None

    # --- tasks -------------------------------------------------------------------------------------------

    @staticmethod
    def _live_tasks(ecs: Any, cluster_name: str) -> list[Any]:
        """Tasks meant to run (desired RUNNING): what a service counts."""
        return [t for t in ecs.tasks.get(cluster_name, {}).values() if t.desired_status == "RUNNING"]

    @staticmethod
    def _holding(ecs: Any, cluster_name: str) -> list[Any]:
        """Tasks not yet STOPPED: they still hold CPU, memory and ports on their instance."""
        return [t for t in ecs.tasks.get(cluster_name, {}).values() if t.last_status != "STOPPED"]

    def _tasks(self, ecs: Any, elbv2: Any, now: float) -> None:
        started: dict[str, tuple[Any, list[Any]]] = {}  # service ARN → tasks that turned RUNNING in this pass
        failed: dict[str, Any] = {}  # service ARN → service, for services with a task that failed to start
        for cluster_name in list(ecs.tasks):
            for task in ecs.tasks[cluster_name].values():
                stop_at = getattr(task, "sim_stop_at", None)
                if task.last_status != "STOPPED" and stop_at is not None and now >= stop_at:
                    self._stopped(task, now)
            for task in self._live_tasks(ecs, cluster_name):
                created = getattr(task, "sim_created", None)
                if created is None:
                    # a task not started by the simulation (run_task, start_task): adopt it
                    task.sim_created = created = now
                    task.created_at = self.clock.at(now)
                    task.last_status = "PENDING"
                if task.last_status == "PENDING" and now - created >= PULL_SECONDS and self._pull_fails(ecs, task, now):
                    svc = self._service_of(ecs, task)
                    if svc is not None:
                        failed[svc.arn] = svc
                        dep = next((d for d in svc.deployments if d["id"] == task.started_by), None)
                        if dep is not None:
                            dep["failedTasks"] = int(dep.get("failedTasks", 0)) + 1
                elif task.last_status == "PENDING" and now - created >= PULL_SECONDS:
                    task.last_status = "RUNNING"
                    task.started_at = task.pull_stopped_at = self.clock.at(now)
                    task.sim_started = now
                    for c in task.containers:
                        c.last_status = "RUNNING"
                    svc = self._service_of(ecs, task)
                    if svc is not None:
                        started.setdefault(svc.arn, (svc, []))[1].append(task)
        for svc, tasks in started.values():
            self._register_targets(elbv2, svc, tasks)
            svc.sim_fail_rounds, svc.sim_throttle_until = 0, None  # a task that runs ends the throttle
        for svc in failed.values():
            self._throttle(svc, now)

    def _pull_fails(self, ecs: Any, task: Any, now: float) -> bool:
        """A task whose image no registry has goes from PENDING straight to STOPPED, as the agent reports a failed
        pull (stop code TaskFailedToStart, CannotPullContainerError)."""
        if not self.unpullable_images:
            return False
        for cdef in task_definition(ecs, task).container_definitions:
            image = str(cdef.get("image") or "")
            if image in self.unpullable_images:
                ref = docker_reference(image)
                reason = (
                    "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve "
                    f"ref {ref}: {ref}: not found"
                )
                task.desired_status = "STOPPED"
                task.stopped_reason = reason
                task.stop_code = "TaskFailedToStart"
                task.stopping_at = self.clock.at(now)
                self._stopped(task, now)
                for c in task.containers:
                    if c.image == image:
                        c.reason = reason
                return True
        return False

    def _throttle(self, svc: Any, now: float) -> None:
        """ECS developer guide, "Amazon ECS service throttle logic": tasks that repeatedly fail to start (PENDING to
        STOPPED) make the scheduler wait longer between relaunches, up to 27 minutes, with an event. Each pass in which
        tasks failed to start is a round; from the second round in a row on, the service is throttled."""
        rounds = svc.sim_fail_rounds = int(getattr(svc, "sim_fail_rounds", 0) or 0) + 1
        svc.sim_throttle_td = svc.deployments[0]["taskDefinition"] if svc.deployments else None
        if rounds >= 2:
            delay = min(THROTTLE_MAX_SECONDS, THROTTLE_FIRST_SECONDS * 2 ** (rounds - 2))
            svc.sim_throttle_until = now + delay
            self.event(svc, f"(service {svc.name}) {THROTTLED}")

    def _service_of(self, ecs: Any, task: Any) -> Any:
        arn = getattr(task, "sim_service", None)
        if arn is None:
            return None
        for svc in ecs.services.values():
            if svc.arn == arn:
                return svc
        return None

    def _task_targets(self, task: Any, svc: Any) -> list[tuple[str, str, int]]:
        """(target group arn, instance id, host port) for each load balancer of the task's service."""
        out = []
        for lb in svc.load_balancers:
            tg_arn = lb.get("targetGroupArn")
            if not tg_arn:
                continue
            for c in task.containers:
                if c.name != lb.get("containerName"):
                    continue
                for b in getattr(c, "network_bindings", []):
                    if int(b["containerPort"]) == int(lb.get("containerPort", 0)):
                        out.append((tg_arn, task.sim_instance_id, int(b["hostPort"])))
        return out

    def _register_targets(self, elbv2: Any, svc: Any, tasks: list[Any]) -> None:
        by_group: dict[str, int] = {}
        for tg_arn, iid, port in (target for task in tasks for target in self._task_targets(task, svc)):
            tg = elbv2.target_groups.get(tg_arn)
            if tg is None:
                continue
            try:
                tg.register([{"Id": iid, "Port": port}])
            except Exception:
                continue
            by_group[tg_arn] = by_group.get(tg_arn, 0) + 1
        for tg_arn, n in by_group.items():
            self.event(svc, f"(service {svc.name}) registered {n} targets in (target-group {tg_arn})")

    def stop_task(
        self, ecs: Any, task: Any, reason: str, stop_code: str = "ServiceSchedulerInitiated", now: bool = False
    ) -> None:
        """Stop a task as ECS does. The scheduler (scale-in, deployment, unhealthy task, service deleted)
        deregisters the task's targets first and keeps it DEACTIVATING, still serving, for the target group's
        deregistration delay, then stops it. `StopTask` (stop code UserInitiated) sends the containers SIGTERM
        at once (Ghost exits; the task is STOPPING, holding its resources for `STOP_SECONDS`) while its targets
        start draining. A task that never started, or whose host is gone, stops at once."""
        if task.desired_status == "STOPPED":
            return
        t = self.clock.seconds()
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        task.stop_code = stop_code
        task.stopping_at = self.clock.at(t)
        svc = self._service_of(ecs, task)
        elbv2 = elbv2_backends[ACCOUNT][svc.region_name] if svc is not None else None
        if now or task.last_status == "PENDING":
            self._stopped(task, t)
        elif stop_code == "UserInitiated" or svc is None:
            task.last_status = "STOPPING"
            task.sim_stop_at = t + STOP_SECONDS
        else:
            task.last_status = "DEACTIVATING"
            task.sim_stop_at = t + self._draining_seconds(elbv2, svc, task)
        if svc is None or elbv2 is None:
            return
        _svc, draining, by_group = self._draining.get(svc.arn, (svc, 0, {}))
        deregistered = False
        for tg_arn, iid, port in self._task_targets(task, svc):
            tg = elbv2.target_groups.get(tg_arn)
            if tg is not None and target_key(iid, port) in tg.targets:
                tg.deregister([{"Id": iid, "Port": port}])
                by_group[tg_arn] = by_group.get(tg_arn, 0) + 1
                deregistered = True
        scheduler = task.last_status == "DEACTIVATING" and deregistered
        self._draining[svc.arn] = (svc, draining + (1 if scheduler else 0), by_group)
        svc.sim_steady = False

    def flush_events(self) -> None:
        """The pass's deregistrations as ECS words them, one event per kind and target group with the counts:
        "(service s) has begun draining connections on N tasks." (scheduler-initiated stops), then
        "(service s) deregistered N targets in (target-group …)"."""
        for svc, draining, by_group in self._draining.values():
            if draining:
                self.event(svc, f"(service {svc.name}) has begun draining connections on {draining} tasks.")
            for tg_arn, n in by_group.items():
                self.event(svc, f"(service {svc.name}) deregistered {n} targets in (target-group {tg_arn})")
        self._draining.clear()

    def _draining_seconds(self, elbv2: Any, svc: Any, task: Any) -> float:
        """How long the scheduler holds a task DEACTIVATING: its target groups' longest deregistration delay."""
        delays = [
            float(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
            for tg_arn, _iid, _port in self._task_targets(task, svc)
            if (tg := elbv2.target_groups.get(tg_arn)) is not None
        ]
        return max(delays, default=0.0)

    def _stopped(self, task: Any, t: float) -> None:
        task.last_status = "STOPPED"
        task.stopped_at = task.execution_stopped_at = self.clock.at(t)
        for c in task.containers:
            c.last_status = "STOPPED"
            c.exitCode = 137 if getattr(task, "sim_started", None) is not None else None

    # --- targets -----------------------------------------------------------------------------------------

    def _targets(self, ec2: Any, elbv2: Any, now: float) -> None:
        """Health checks every interval; a target changes state after `threshold` consecutive results."""
        for tg in elbv2.target_groups.values():
            interval = float(tg.health_check_interval_seconds or 30)
            healthy_n = int(tg.healthy_threshold_count or 5)
            unhealthy_n = int(tg.unhealthy_threshold_count or 2)
            delay = int(tg.attributes.get("deregistration_delay.timeout_seconds", 300))
            for key, t in list(tg.targets.items()):
                if t.get("since") is None:
                    t["since"] = now
                if t["State"] == "draining":
                    if now - t["since"] >= delay:
                        del tg.targets[key]
                    continue
                if t.get("next_check") is None:
                    t["next_check"] = t["since"] + interval
                    t["ok_run"] = t["bad_run"] = 0
                if now < t["next_check"]:
                    continue
                behind = math.floor((now - t["next_check"]) / interval)
                t["next_check"] += interval * (behind + 1)
                outcome = self._health_check(ec2, elbv2, tg, t)
                for _ in range(min(behind + 1, max(healthy_n, unhealthy_n))):
                    self._count_check(t, outcome, healthy_n, unhealthy_n, now)

    def _health_check(self, ec2: Any, elbv2: Any, tg: Any, t: dict[str, Any]) -> tuple[str, str] | None:
        """One health check of a target: None when it passes, else (reason code, description) as ELBv2 words
        them. Without a data plane a target passes when the security groups admit the load balancer."""
        if not self.admits(ec2, elbv2, tg, t["Id"], int(t["Port"])):
            return "Target.Timeout", "Request timed out"
        if self.health_checker is None:
            return None
        return self.health_checker(tg, t["Id"], int(t["Port"]))

    def _count_check(
        self, t: dict[str, Any], outcome: tuple[str, str] | None, healthy_n: int, unhealthy_n: int, now: float
    ) -> None:
        if outcome is None:
            t["ok_run"], t["bad_run"] = t["ok_run"] + 1, 0
            if t["State"] != "healthy" and t["ok_run"] >= healthy_n:
                self._set_target(t, "healthy", now)
        else:
            t["ok_run"], t["bad_run"] = 0, t["bad_run"] + 1
            if t["State"] != "unhealthy" and t["bad_run"] >= unhealthy_n:
                self._set_target(t, "unhealthy", now, outcome)

    @staticmethod
    def _set_target(t: dict[str, Any], state: str, now: float, why: tuple[str, str] | None = None) -> None:
        t["State"] = state
        if state == "unhealthy":
            t["Reason"], t["Description"] = why or ("Target.Timeout", "Request timed out")
        else:
            t["Reason"] = t["Description"] = None

    def admits(self, ec2: Any, elbv2: Any, tg: Any, instance_id: str, port: int) -> bool:
        """Is the path open both ways on this port: one of the load balancer's security groups lets traffic out to
        the instance, and one of the instance's lets the load balancer's in?"""
        inst = self.instance(ec2, instance_id)
        if inst is None or inst.state != "running":
            return False
        lb_groups: set[str] = set()
        for lb_arn in tg.load_balancer_arns:
            lb = elbv2.load_balancers.get(lb_arn)
            if lb is not None:
                lb_groups.update(lb.security_groups or [])
        own = {sg.id for sg in inst.security_groups}
        inbound = any(_allows(r, port, lb_groups) for sg in inst.security_groups for r in sg.ingress_rules)
        outbound = not lb_groups or any(
            _allows(r, port, own, inst.private_ip)
            for gid in lb_groups
            if (sg := ec2.get_security_group_from_id(gid)) is not None
            for r in sg.egress_rules
        )
        return inbound and outbound

    # --- services ----------------------------------------------------------------------------------------

    def event(self, svc: Any, message: str) -> None:
        """Add a service event, newest first (an identical newest event is not repeated)."""
        if svc.events and svc.events[0]["message"] == message:
            return
        svc.events.insert(0, {"id": str(mock_random.uuid4()), "createdAt": self.clock.now(), "message": message})
        del svc.events[EVENT_LIMIT:]

    def _service_tasks(self, ecs: Any, svc: Any) -> list[Any]:
        return [t for t in self._live_tasks(ecs, svc.cluster_name) if getattr(t, "sim_service", None) == svc.arn]

    def _is_healthy(self, elbv2: Any, svc: Any, task: Any) -> bool:
        if task.last_status != "RUNNING":
            return False
        for tg_arn, iid, port in self._task_targets(task, svc):
            tg = elbv2.target_groups.get(tg_arn)
            t = tg.targets.get(target_key(iid, port)) if tg is not None else None
            if t is None or t["State"] != "healthy":
                return False
        return True

    def _target_unhealthy(self, elbv2: Any, svc: Any, task: Any) -> tuple[str, str, int] | None:
        for tg_arn, iid, port in self._task_targets(task, svc):
            tg = elbv2.target_groups.get(tg_arn)
            t = tg.targets.get(target_key(iid, port)) if tg is not None else None
            if t is not None and t["State"] == "unhealthy":
                return tg_arn, iid, port
        return None

    def _service(self, ec2: Any, ecs: Any, elbv2: Any, svc: Any, now: float) -> None:
        if not hasattr(svc, "sim_steady"):
            return  # not created through the sandbox's guarded API (e.g. CloudFormation): left alone
        tasks = self._service_tasks(ecs, svc)
        if svc.status == "DRAINING":
            for task in tasks:
                self.stop_task(ecs, task, "Service deleted")
            svc.running_count = svc.pending_count = 0
            if not any(getattr(t, "sim_service", None) == svc.arn for t in self._holding(ecs, svc.cluster_name)):
                svc.status = "INACTIVE"
            return
        if svc.status != "ACTIVE":
            return
        primary = svc.deployments[0]
        others = svc.deployments[1:]
        dep_of = {d["id"]: d for d in svc.deployments}
        grace = int(getattr(svc, "health_check_grace_period_seconds", 0) or 0)

        # health: after the grace period, a task whose target is unhealthy is condemned; it is replaced first and
        # stopped once its replacement is healthy (or one by one, when no replacement can start)
        condemned: dict[Any, str] = {}  # task → its target group
        for task in tasks:
            bad = self._target_unhealthy(elbv2, svc, task)
            started = getattr(task, "sim_started", None)
            if bad and started is not None and now - started >= grace:
                tg_arn, iid, port = bad
                condemned[task] = tg_arn
                if not getattr(task, "sim_condemned", False):
                    task.sim_condemned = True
                    target = elbv2.target_groups[tg_arn].targets.get(target_key(iid, port)) or {}
                    why = target.get("Description") or "Health checks failed"
                    self.event(
                        svc,
                        f"(service {svc.name}) (instance {iid}) (port {port}) is unhealthy in (target-group "
                        f"{tg_arn}) due to (reason {why}).",
                    )

        self._circuit_breaker(svc, primary, others)
        primary = svc.deployments[0]
        others = svc.deployments[1:]
        desired = int(svc.desired_count)
        dc = getattr(svc, "deployment_configuration", None) or {}
        max_total = math.floor(desired * int(dc.get("maximumPercent", 200)) / 100)
        min_healthy = math.ceil(desired * int(dc.get("minimumHealthyPercent", 100)) / 100)
        # a DRAINING instance's tasks: PENDING ones stop at once, RUNNING ones are replaced like an old deployment's
        draining = {
            ci_arn(ci): ci.id
            for ci in ecs.container_instances.get(svc.cluster_name, {}).values()
            if ci.status == "DRAINING"
        }
        leaving = [t for t in tasks if t.container_instance_arn in draining]
        for task in [t for t in leaving if t.last_status == "PENDING"]:
            self.stop_task(ecs, task, drained_reason(draining[task.container_instance_arn]))
            tasks.remove(task)
        new = [t for t in tasks if t.started_by == primary["id"] and t not in leaving]
        old = [t for t in tasks if t.started_by != primary["id"] or t in leaving]
        sick = [t for t in new if t in condemned]
        good = [t for t in new if t not in condemned]

        # launch tasks of the primary deployment (replacements of the condemned ones within maximum percent); a
        # throttled service waits, and a new task definition ends the throttle at once
        launched: list[Any] = []
        if getattr(svc, "sim_throttle_td", None) not in (None, primary["taskDefinition"]):
            svc.sim_fail_rounds, svc.sim_throttle_until, svc.sim_throttle_td = 0, None, None
        throttled = now < (getattr(svc, "sim_throttle_until", None) or 0.0)
        if primary.get("rolloutState") != "FAILED" and not throttled:
            room = desired - len(good)
            if old or sick:
                room = min(room, max_total - len(tasks))
            for _ in range(max(room, 0)):
                task = self._place(ec2, ecs, svc, primary, now)
                if task is None:
                    break
                launched.append(task)
            if launched:
                ids = " ".join(f"(task {t.id})" for t in launched)
                self.event(svc, f"(service {svc.name}) has started {len(launched)} tasks: {ids}.")
                svc.sim_steady = False
                new += launched
                good += launched
                tasks += launched

        # condemned tasks go as their replacements turn healthy; when none could start (no room within maximum
        # percent or on the instances) and none is on its way, one by one to free capacity
        if sick:
            healthy_good = sum(1 for t in good if self._is_healthy(elbv2, svc, t))
            ready = healthy_good - (desired - len(sick))
            coming = any(t.last_status == "PENDING" or not self._is_healthy(elbv2, svc, t) for t in good)
            # one by one: at most one such stop per health-check interval (a pass runs on every API request)
            paced = now - getattr(svc, "sim_sick_stop", -1e9) >= SICK_STOP_SECONDS
            count = max(ready, 0 if launched or coming or not paced else 1)
            if count > max(ready, 0):
                svc.sim_sick_stop = now
            gone = sorted(sick, key=lambda t: getattr(t, "sim_started", 0))[: min(count, len(sick))]
            for task in gone:
                self.stop_task(ecs, task, f"Task failed ELB health checks in (target-group {condemned[task]})")
                dep = dep_of.get(task.started_by)
                if dep is not None:
                    dep["failedTasks"] = int(dep.get("failedTasks", 0)) + 1
            if gone:
                ids = " ".join(f"(task {t.id})" for t in gone)
                self.event(svc, f"(service {svc.name}) has stopped {len(gone)} running tasks: {ids}.")
            tasks = [t for t in tasks if t not in gone]
            new = [t for t in new if t not in gone]

        # Availability Zone rebalancing: start tasks in the short AZs, stop them in the long ones
        moved = self._rebalance(ec2, ecs, elbv2, svc, primary, tasks, new, condemned, max_total, now)
        tasks = [t for t in tasks if t not in moved]
        new = [t for t in new if t not in moved]

        # stop what is too much: old deployments first (keeping minimum healthy), then surplus new tasks
        healthy = [t for t in tasks if self._is_healthy(elbv2, svc, t)]
        new_healthy = [t for t in new if t in healthy]
        stopped: list[Any] = []
        reason = f"Scaling activity initiated by (deployment {primary['id']})"
        for task in sorted(old, key=lambda t: t in healthy):
            if len(new_healthy) >= desired or task not in healthy or len(healthy) - 1 >= min_healthy:
                if task in healthy:
                    healthy.remove(task)
                ci_id = draining.get(task.container_instance_arn)
                self.stop_task(ecs, task, drained_reason(ci_id) if ci_id else reason)
                stopped.append(task)
        keep = [t for t in new if t not in condemned]  # the condemned go above, with their own reason
        surplus = len(keep) - desired
        if surplus > 0 and not getattr(svc, "sim_rebalancing", False):
            for task in sorted(keep, key=lambda t: (t in healthy, -getattr(t, "sim_created", 0)))[:surplus]:
                self.stop_task(ecs, task, reason)
                stopped.append(task)
        if stopped:
            ids = " ".join(f"(task {t.id})" for t in stopped)
            self.event(svc, f"(service {svc.name}) has stopped {len(stopped)} running tasks: {ids}.")
        tasks = [t for t in tasks if t not in stopped]

        # deployments: counters, finished old ones removed, completion
        for dep in svc.deployments:
            mine = [t for t in tasks if t.started_by == dep["id"]]
            dep["runningCount"] = sum(1 for t in mine if t.last_status == "RUNNING")
            dep["pendingCount"] = sum(1 for t in mine if t.last_status == "PENDING")
            dep["desiredCount"] = desired if dep is primary else len(mine)
        # an old deployment leaves the list once drained; a rolled-back one stays visible while the rollback runs
        svc.deployments[1:] = [
            d
            for d in others
            if d["runningCount"] + d["pendingCount"] > 0
            or (d.get("sim_rolled_back") and primary.get("rolloutState") == "IN_PROGRESS")
        ]
        for dep in others:
            if dep not in svc.deployments and dep.get("rolloutState") == "IN_PROGRESS":
                dep["rolloutState"] = "FAILED" if dep.get("sim_rolled_back") else "COMPLETED"
        new_tasks = [t for t in tasks if t.started_by == primary["id"]]
        all_good = (
            len(svc.deployments) == 1
            and len(new_tasks) == desired
            and all(self._is_healthy(elbv2, svc, t) for t in new_tasks)
        )
        if all_good and primary.get("rolloutState") == "IN_PROGRESS":
            primary["rolloutState"] = "COMPLETED"
            primary["rolloutStateReason"] = f"ECS deployment {primary['id']} completed."
            primary["updatedAt"] = self.clock.now()
            svc.sim_last_good = primary["taskDefinition"]
            self.event(svc, f"(service {svc.name}) (deployment {primary['id']}) deployment completed.")
        if all_good and not svc.sim_steady:
            svc.sim_steady = True
            self.event(svc, f"(service {svc.name}) has reached a steady state.")
        svc.running_count = sum(1 for t in tasks if t.last_status == "RUNNING")
        svc.pending_count = sum(1 for t in tasks if t.last_status == "PENDING")

    def _circuit_breaker(self, svc: Any, primary: dict[str, Any], others: list[dict[str, Any]]) -> None:
        dc = getattr(svc, "deployment_configuration", None) or {}
        breaker = dc.get("deploymentCircuitBreaker") or {}
        if not breaker.get("enable") or primary.get("rolloutState") != "IN_PROGRESS":
            return
        threshold = max(3, min(200, math.ceil(0.5 * int(svc.desired_count))))
        if int(primary.get("failedTasks", 0)) < threshold:
            return
        primary["rolloutState"] = "FAILED"
        primary["rolloutStateReason"] = "ECS deployment circuit breaker: tasks failed to start."
        self.event(
            svc,
            f"(service {svc.name}) (deployment {primary['id']}) deployment failed: tasks failed to start.",
        )
        good = getattr(svc, "sim_last_good", None)
        if breaker.get("rollback") and good and good != primary["taskDefinition"]:
            primary["status"] = "ACTIVE"
            primary["sim_rolled_back"] = True
            back = new_deployment(svc, good, self.clock)
            svc.deployments.insert(0, back)
            svc.task_definition = good
            self.event(svc, f"(service {svc.name}) rolling back to deployment {back['id']}.")

    # --- Availability Zone rebalancing -------------------------------------------------------------------

    def _rebalance(
        self,
        ec2: Any,
        ecs: Any,
        elbv2: Any,
        svc: Any,
        primary: dict[str, Any],
        tasks: list[Any],
        new: list[Any],
        condemned: dict[Any, str],
        max_total: int,
        now: float,
    ) -> list[Any]:
        """ECS developer guide, "Balancing an Amazon ECS service across Availability Zones": once the service has
        reached a steady state, an uneven spread of its tasks over the AZs of its cluster's instances starts a
        rebalancing: an event, tasks started in the AZs with the fewest tasks (within maximum percent), tasks
        stopped in the AZs with the most once the new ones are healthy, and an event when it is balanced. Not
        while a deployment runs, nor unless the service's first placement strategy spreads by AZ. Returns the
        tasks it stopped (tasks it started are added to `tasks` and `new`)."""
        rebalancing = bool(getattr(svc, "sim_rebalancing", False))
        if getattr(svc, "availability_zone_rebalancing", "DISABLED") != "ENABLED" or not _az_spread_first(svc):
            svc.sim_rebalancing = False
            return []
        if len(svc.deployments) > 1 or primary.get("rolloutState") == "FAILED" or condemned:
            return []  # a deployment or unhealthy tasks come first; rebalancing resumes after
        desired = int(svc.desired_count)
        azs = sorted(
            {
                str(ci.attributes.get("ecs.availability-zone", ""))
                for ci in ecs.container_instances.get(svc.cluster_name, {}).values()
                if ci.status == "ACTIVE" and ci.agent_connected
            }
        )
        live = [t for t in new if t.availability_zone in azs]
        count = {az: sum(1 for t in live if t.availability_zone == az) for az in azs}
        healthy = {t for t in live if self._is_healthy(elbv2, svc, t)}
        if len(azs) < 2 or desired < 2:
            svc.sim_rebalancing = False
            return []
        if not rebalancing:
            even = max(count.values()) - min(count.values()) <= 1
            if even or not svc.sim_steady or len(live) != desired or len(healthy) != desired:
                return []
            self.event(
                svc,
                f"service ({svc.name}) is not AZ balanced with {_az_counts(count, every=False)}. "
                "AZ Rebalancing in progress.",
            )
            svc.sim_rebalancing = True
            svc.sim_steady = False
        target = _balanced(count, desired)
        # start: in the AZs short of their share, within maximum percent
        started: dict[str, list[Any]] = {}
        for az in azs:
            while count[az] < target[az] and len(tasks) < max_total:
                task = self._place(ec2, ecs, svc, primary, now, az=az)
                if task is None:
                    self.event(
                        svc,
                        f"service ({svc.name}) is unable to place a task in {az} because no container instance "
                        "met all of its requirements.",
                    )
                    break
                started.setdefault(az, []).append(task)
                count[az] += 1
                tasks.append(task)
                new.append(task)
                live.append(task)
        for az, ts in started.items():
            ids = ", ".join(t.id for t in ts)
            self.event(svc, f"{svc.name} has started {len(ts)} tasks in {az} to AZ Rebalance: {ids}.")
        # stop: in the AZs over their share, never leaving fewer healthy tasks than desired; with no room to
        # start any (maximum percent), one at a time within minimum healthy percent
        dc = getattr(svc, "deployment_configuration", None) or {}
        min_healthy = math.ceil(desired * int(dc.get("minimumHealthyPercent", 100)) / 100)
        no_room = len(tasks) >= max_total and all(t in healthy for t in live)
        stopped: dict[str, list[Any]] = {}
        for az in sorted(azs, key=lambda a: target[a] - count[a]):
            mine = sorted((t for t in live if t.availability_zone == az), key=lambda t: (t in healthy, -t.sim_created))
            for task in mine:
                if count[az] <= target[az]:
                    break
                left = len(healthy) - (1 if task in healthy else 0)
                if left < desired and not (no_room and left >= min_healthy and not stopped):
                    break
                self.stop_task(ecs, task, f"Task stopped due to AZ rebalancing ({az})")
                stopped.setdefault(az, []).append(task)
                count[az] -= 1
                live.remove(task)
                healthy.discard(task)
        for az, ts in stopped.items():
            ids = ", ".join(t.id for t in ts)
            self.event(svc, f"{svc.name} has stopped {len(ts)} running tasks in {az} due to AZ rebalancing: {ids}.")
        if count == target and len(live) == desired and all(t in healthy for t in live):
            self.event(svc, f"service ({svc.name}) is AZ balanced with {_az_counts(count, every=True)}.")
            svc.sim_rebalancing = False
        return [t for ts in stopped.values() for t in ts]

    # --- placement ---------------------------------------------------------------------------------------

    def fits(self, ec2: Any, ecs: Any, cluster_name: str, needs: Needs) -> tuple[list[Any], list[tuple[Any, str]]]:
        """Where a task with these needs fits: (container instance, EC2 instance, its tasks, used ports) for each
        placeable instance it fits on, and (container instance, ECS's reason) for each it does not fit on."""
        by_instance: dict[str, list[Any]] = {}
        for t in self._holding(ecs, cluster_name):
            by_instance.setdefault(t.container_instance_arn, []).append(t)
        cands: list[Any] = []
        misfits: list[tuple[Any, str]] = []
        for ci in ecs.container_instances.get(cluster_name, {}).values():
            inst = self.instance(ec2, ci.ec2_instance_id)
            if ci.status != "ACTIVE" or not ci.agent_connected or inst is None or inst.state != "running":
                continue
            on = by_instance.get(ci_arn(ci), [])
            cpu, mem = self._registered(ci)
            used_cpu = sum(task_needs(task_definition(ecs, t)).cpu for t in on)
            used_mem = sum(task_needs(task_definition(ecs, t)).memory for t in on)
            ports = self._used_ports(on)
            if needs.static_ports & ports:
                misfits.append((ci, PORTS_PROBLEM))
            elif used_mem + needs.memory > mem:
                misfits.append((ci, MEMORY_PROBLEM))
            elif used_cpu + needs.cpu > cpu:
                misfits.append((ci, CPU_PROBLEM))
            else:
                cands.append((ci, inst, on, ports))
        return cands, misfits

    def _place(self, ec2: Any, ecs: Any, svc: Any, dep: dict[str, Any], now: float, az: str | None = None) -> Any:
        cluster = ecs.clusters.get(svc.cluster_name)
        if cluster is None:
            return None
        td = ecs.describe_task_definition(dep["taskDefinition"])
        needs = task_needs(td)
        live = self._live_tasks(ecs, svc.cluster_name)
        cands, misfits = self.fits(ec2, ecs, svc.cluster_name, needs)
        if az is not None:  # AZ rebalancing places in one AZ, and says so itself when it cannot
            cands = [c for c in cands if c[0].attributes.get("ecs.availability-zone") == az]
            if not cands:
                return None
        closest = misfits[0] if misfits else None
        if not cands:
            if closest is None:
                msg = (
                    f"(service {svc.name}) was unable to place a task because no container instance met all of "
                    "its requirements. Reason: No Container Instances were found in your cluster. For more "
                    "information, see the Troubleshooting section of the Amazon ECS Developer Guide."
                )
            else:
                msg = (
                    f"(service {svc.name}) was unable to place a task because no container instance met all of "
                    f"its requirements. The closest matching (container-instance {closest[0].id}) {closest[1]}. "
                    "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
                )
            self.event(svc, msg)
            return None
        mine = [t for t in live if getattr(t, "sim_service", None) == svc.arn]
        for rule in getattr(svc, "placement_strategy", None) or DEFAULT_STRATEGY:
            if len(cands) == 1:
                break
            if rule.get("type") == "spread":
                key = _spread_key(rule.get("field", "instanceId"), ecs.container_instances.get(svc.cluster_name, {}))
                spread = Counter(key(t) for t in mine)
                counts = {id(c): spread[key(c[0])] for c in cands}
                best = min(counts.values())
                cands = [c for c in cands if counts[id(c)] == best]
            elif rule.get("type") == "binpack":
                free = {id(c): self._registered(c[0])[1] - len(c[2]) for c in cands}
                best = min(free.values())
                cands = [c for c in cands if free[id(c)] == best]
        ci, inst, _on, ports = cands[0]
        return self._start_task(ecs, svc, dep, td, ci, inst, ports, now)

    @staticmethod
    def _next_port(ci: Any, used: set[int]) -> int:
        """Docker takes ephemeral ports in turn, so a stopped task's port is not reused at once."""
        low, high = EPHEMERAL
        start = getattr(ci, "sim_next_port", low)
        for i in range(high - low + 1):
            port = low + (start - low + i) % (high - low + 1)
            if port not in used:
                ci.sim_next_port = port + 1
                return port
        raise RuntimeError("no free ephemeral port")

    @staticmethod
    def _registered(ci: Any) -> tuple[int, int]:
        res = {r["name"]: r.get("integerValue", 0) for r in ci.registered_resources}
        return int(res.get("CPU", 0)), int(res.get("MEMORY", 0))

    @staticmethod
    def _used_ports(tasks: list[Any]) -> set[int]:
        used = set(RESERVED_PORTS)
        for t in tasks:
            for c in t.containers:
                used.update(int(b["hostPort"]) for b in getattr(c, "network_bindings", []))
        return used

    def _start_task(
        self,
        ecs: Any,
        svc: Any,
        dep: dict[str, Any],
        td: Any,
        ci: Any,
        inst: Any,
        ports: set[int],
        now: float,
    ) -> Any:
        cluster = ecs.clusters[svc.cluster_name]
        tags = list(svc.tags) if svc.propagate_tags == "SERVICE" else []
        if svc.propagate_tags == "TASK_DEFINITION":
            tags = list(td.tags or [])
        if getattr(svc, "enable_ecs_managed_tags", False):
            tags += [
                {"key": "aws:ecs:serviceName", "value": svc.name},
                {"key": "aws:ecs:clusterName", "value": cluster.name},
            ]
        task = ecs_models.Task(
            cluster,
            td,
            ci_arn(ci),
            ecs._calculate_task_resource_requirements(td),
            backend=ecs,
            group=f"service:{svc.name}",
            launch_type="EC2",
            started_by=dep["id"],
            tags=tags,
        )
        task.last_status = "PENDING"
        task.sim_created = now
        task.sim_service = svc.arn
        task.sim_instance_id = inst.id
        task.created_at = self.clock.at(now)
        task.availability_zone = inst.placement.zone if hasattr(inst.placement, "zone") else str(inst.placement)
        task.health_status = "UNKNOWN"
        task.cpu = str(td.cpu) if td.cpu else None
        task.memory = str(td.memory) if td.memory else None
        used = set(ports)
        containers = []
        for cdef in td.container_definitions:
            c = ecs_models.Container(td)
            c.name, c.image = cdef.get("name"), cdef.get("image")
            c.cpu, c.memory = cdef.get("cpu"), cdef.get("memory")
            c.container_arn = (
                f"arn:aws:ecs:{svc.region_name}:{ACCOUNT}:container/{cluster.name}/{task.id}/{mock_random.uuid4()}"
            )
            c.task_arn = task.task_arn
            c.exitCode = None
            bindings = []
            for pm in cdef.get("portMappings") or []:
                host = pm.get("hostPort")
                if not host and td.network_mode in (None, "bridge"):
                    host = self._next_port(ci, used)
                if host:
                    used.add(int(host))
                    bindings.append(
                        {
                            "bindIP": "0.0.0.0",
                            "containerPort": int(pm["containerPort"]),
                            "hostPort": int(host),
                            "protocol": pm.get("protocol", "tcp"),
                        }
                    )
            c.network_bindings = bindings
            containers.append(c)
        task.containers = containers
        ecs.tasks.setdefault(cluster.name, {})[task.task_arn] = task
        return task

    # --- counters ----------------------------------------------------------------------------------------

    def _counters(self, ecs: Any) -> None:
        for name, cluster in ecs.clusters.items():
            live = self._holding(ecs, name)
            cluster.running_tasks_count = sum(1 for t in live if t.last_status == "RUNNING")
            cluster.pending_tasks_count = sum(1 for t in live if t.last_status == "PENDING")
            cluster.active_services_count = sum(
                1 for s in ecs.services.values() if s.cluster_name == name and s.status == "ACTIVE"
            )
            cis = ecs.container_instances.get(name, {})
            cluster.registered_container_instances_count = len(cis)
            by_instance: dict[str, list[Any]] = {}
            for t in live:
                by_instance.setdefault(t.container_instance_arn, []).append(t)
            for ci in cis.values():
                on = by_instance.get(ci_arn(ci), [])
                cpu, mem = self._registered(ci)
                needs = [task_needs(task_definition(ecs, t)) for t in on]
                ci.running_tasks_count = sum(1 for t in on if t.last_status == "RUNNING")
                ci.pending_tasks_count = sum(1 for t in on if t.last_status == "PENDING")
                for r in ci.remaining_resources:
                    if r["name"] == "CPU":
                        r["integerValue"] = cpu - sum(n.cpu for n in needs)
                    elif r["name"] == "MEMORY":
                        r["integerValue"] = mem - sum(n.memory for n in needs)
                    elif r["name"] == "PORTS":
                        r["stringSetValue"] = sorted(str(p) for p in self._used_ports(on))


def docker_reference(image: str) -> str:
    """An image name as Docker resolves it: `ghost:5` is `docker.io/library/ghost:5`, no tag is `:latest`."""
    first, _, rest = image.partition("/")
    if not rest:
        image = f"docker.io/library/{image}"
    elif "." not in first and ":" not in first and first != "localhost":
        image = f"docker.io/{image}"
    name = image.rsplit("/", 1)[-1]
    return image if ":" in name or "@" in name else f"{image}:latest"


def _az_spread_first(svc: Any) -> bool:
    """Does the service's first placement strategy spread by AZ (what AZ rebalancing works with)?"""
    strategy = getattr(svc, "placement_strategy", None) or DEFAULT_STRATEGY
    first = strategy[0]
    return bool(first.get("type") == "spread" and first.get("field") == "attribute:ecs.availability-zone")


def _balanced(count: dict[str, int], desired: int) -> dict[str, int]:
    """Each AZ's share of `desired` tasks, as even as can be; the odd ones where most run now."""
    base, extra = divmod(desired, len(count))
    order = sorted(count, key=lambda az: (-count[az], az))
    return {az: base + (1 if order.index(az) < extra else 0) for az in count}


def _az_counts(count: dict[str, int], every: bool) -> str:
    """'3 tasks in us-east-1a, 1 in us-east-1b, and 2 in us-east-1c' as ECS's AZ rebalancing events word it
    ('N tasks in' each AZ once it is balanced); two AZs are joined by 'and'."""
    parts = [f"{n} tasks in {az}" if every or i == 0 else f"{n} in {az}" for i, (az, n) in enumerate(count.items())]
    if len(parts) <= 2:
        return " and ".join(parts)
    return ", ".join(parts[:-1]) + ", and " + parts[-1]


def retire(ecs: Any, cluster_name: str, ci: Any, now: float) -> None:
    """A deregistered container instance leaves the cluster's list but stays describable as INACTIVE."""
    ci.status = "INACTIVE"
    ci.agent_connected = False
    ci.sim_retired_at = now
    retired(ecs, cluster_name)[ci.id] = ci


def retired(ecs: Any, cluster_name: str) -> dict[str, Any]:
    """The cluster's deregistered (INACTIVE) container instances by id."""
    store: dict[str, dict[str, Any]] = ecs.__dict__.setdefault("sim_retired", {})
    return store.setdefault(cluster_name, {})


def drained_reason(container_instance_id: str) -> str:
    return f"Service scheduler: (container-instance {container_instance_id}) is DRAINING"


def _allows(rule: Any, port: int, groups: set[str], ip: str | None = None) -> bool:
    """Does a security-group rule let TCP on `port` through to (or from) one of `groups`, or to `ip`?"""
    proto = str(rule.ip_protocol)
    if proto not in ("tcp", "6", "-1"):
        return False
    if proto != "-1" and not (int(rule.from_port) <= port <= int(rule.to_port)):
        return False
    source = (rule.source_group or {}).get("GroupId")
    if source and source in groups:
        return True
    cidr = rule.cidr_ipv4
    return bool(cidr) and (
        cidr == "0.0.0.0/0" or (ip is not None and ipaddress.ip_address(ip) in ipaddress.ip_network(cidr))
    )


def _spread_key(field: str, instances: dict[str, Any]) -> Any:
    """A function giving the value to spread on, for a task or a container instance of the cluster."""

    def key(obj: Any) -> str:
        arn = str(obj.container_instance_arn)
        if field == "instanceId":
            return arn
        ci = instances.get(_sid(arn))
        return str(ci.attributes.get(field.removeprefix("attribute:"), "")) if ci is not None else ""

    return key


def new_deployment(svc: Any, task_definition_arn: str, clock: SimClock) -> dict[str, Any]:
    now = clock.now()
    dep_id = f"ecs-svc/{mock_random.randint(10**18, 10**19 - 1)}"
    return {
        "id": dep_id,
        "status": "PRIMARY",
        "taskDefinition": task_definition_arn,
        "desiredCount": svc.desired_count,
        "pendingCount": 0,
        "runningCount": 0,
        "failedTasks": 0,
        "createdAt": now,
        "updatedAt": now,
        "launchType": svc.launch_type or "EC2",
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment detected a new primary deployment.",
    }
