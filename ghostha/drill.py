"""The failure drill: stop one task of the service (abruptly, or gracefully: drain its target first), probe the
site over HTTP meanwhile, watch the control plane for the timeline, measure, report.

`prepare()` makes every check before anything is stopped (the stack deployed and healthy, the victim known, the
site answering) and raises a GhosthaError on a refusal; `run()` acts, probes and watches until the service is
steady again (plus a short tail) or `max_recovery` passes, and returns the report (the `drill --json` contract).
Time comes from an injected clock and sleep: in production real seconds; in the tests the sleep advances the
sandbox's simulated time, so every count is deterministic. Nothing here prints: progress goes to a sink.
"""

from __future__ import annotations

import http.client
import random
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from ghostha.aws import Aws
from ghostha.config import Config
from ghostha.errors import EXIT_FAILED, EXIT_OK, EXIT_TIMEOUT, EXIT_USAGE, GhosthaError

PROBE_TIMEOUT = 2.0  # seconds a probe waits for an answer
TAIL_SECONDS = 5.0  # probing goes on this long after recovery


class Refused(GhosthaError):
    """The drill will not stop anything: the stack is not deployed or not healthy."""

    exit_code = EXIT_FAILED


class BadTarget(GhosthaError):
    """The victim or the URL given cannot be used; nothing was stopped."""

    exit_code = EXIT_USAGE


class DrillProgress(Protocol):
    def status(self, text: str) -> None: ...

    def event(self, at: float, text: str) -> None: ...


class Quiet:
    def status(self, text: str) -> None:
        pass

    def event(self, at: float, text: str) -> None:
        pass


# --- HTTP probes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int | None  # HTTP status; None on a connection error or timeout
    error: str | None = None  # "connection" or "timeout"
    latency: float = 0.0


def http_get(url: str, timeout: float = PROBE_TIMEOUT) -> Answer:
    """One GET on a new connection: its status, or what went wrong."""
    parts = urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.hostname or "", parts.port, timeout=timeout)
    started = time.monotonic()
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        resp = conn.getresponse()
        resp.read()
        return Answer(resp.status, None, time.monotonic() - started)
    except TimeoutError:
        return Answer(None, "timeout", time.monotonic() - started)
    except OSError:
        return Answer(None, "connection", time.monotonic() - started)
    finally:
        conn.close()


def ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 400


@dataclass(frozen=True)
class Probe:
    at: float  # seconds after the kill
    answer: Answer


class Prober:
    """Sends one request per `tick()`; with several connections they run side by side (production), with one
    each request finishes before the next tick (tests: deterministic)."""

    def __init__(self, url: str, connections: int, get: Callable[[str], Answer] = http_get) -> None:
        self.url = url
        self.get = get
        self.probes: list[Probe] = []
        self._pool = ThreadPoolExecutor(max_workers=connections) if connections > 1 else None
        self._pending: list[tuple[float, Future[Answer]]] = []

    def tick(self, at: float) -> None:
        if self._pool is None:
            self.probes.append(Probe(at, self.get(self.url)))
            return
        self._pending.append((at, self._pool.submit(self.get, self.url)))
        self._collect(block=False)

    def _collect(self, block: bool) -> None:
        still = []
        for at, fut in self._pending:
            if block or fut.done():
                self.probes.append(Probe(at, fut.result()))
            else:
                still.append((at, fut))
        self._pending = still

    def finish(self) -> list[Probe]:
        self._collect(block=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        return sorted(self.probes, key=lambda p: p.at)


def summarize(probes: list[Probe]) -> dict[str, Any]:
    """What the prober saw, exactly: counts, and the longest run of consecutive failures."""
    by_status = Counter(str(p.answer.status) for p in probes if p.answer.status is not None)
    failed = [p for p in probes if not ok(p.answer.status)]
    longest = 0.0
    run_start: float | None = None
    for p in probes:
        if not ok(p.answer.status):
            if run_start is None:
                run_start = p.at
            longest = max(longest, p.at - run_start)
        elif run_start is not None:
            longest = max(longest, p.at - run_start)  # the outage lasts until the next good answer
            run_start = None
    return {
        "requests": {
            "sent": len(probes),
            "ok": len(probes) - len(failed),
            "failed": len(failed),
            "by_status": dict(sorted(by_status.items())),
            "connection_errors": sum(1 for p in probes if p.answer.error == "connection"),
            "timeouts": sum(1 for p in probes if p.answer.error == "timeout"),
        },
        "longest_outage_seconds": round(longest, 3),
        "first_failure_at": round(failed[0].at, 3) if failed else None,
        "last_failure_at": round(failed[-1].at, 3) if failed else None,
    }


# --- before: the checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    kind: str  # "task" or "instance"
    victim_id: str  # the task id, or the EC2 instance id
    task_arns: tuple[str, ...]  # the task, or the service's tasks on the instance
    instance_id: str | None
    host_port: int | None  # the task's (kind task)
    container_instance_arn: str | None
    graceful: bool
    url: str
    target_group_arn: str | None
    baseline: frozenset[str]  # task ids running before the kill
    baseline_instances: frozenset[str]  # container instances' EC2 ids before the kill
    expected: dict[str, Any]

    def victim(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.victim_id,
            "instance_id": self.instance_id,
            "graceful": self.graceful,
            "host_port": self.host_port,
            "task_ids": [arn.rsplit("/", 1)[-1] for arn in self.task_arns],
        }


def expected_times(aws: Aws, target_group: dict[str, Any] | None, service: dict[str, Any] | None) -> dict[str, Any]:
    """What the settings promise: healthy after threshold x interval, draining for the deregistration delay."""
    from ghostha.observe import target_group_attributes

    tg = target_group or {}
    delay = None
    if tg.get("TargetGroupArn"):
        raw = target_group_attributes(aws, tg["TargetGroupArn"]).get("deregistration_delay.timeout_seconds")
        delay = int(raw) if raw is not None else None
    interval, threshold = tg.get("HealthCheckIntervalSeconds"), tg.get("HealthyThresholdCount")
    return {
        "healthy_within_seconds": int(interval) * int(threshold) if interval and threshold else None,
        "draining_seconds": delay,
        "grace_seconds": (service or {}).get("healthCheckGracePeriodSeconds"),
    }


def prepare(
    aws: Aws,
    cfg: Config,
    kind: str = "task",
    target: str | None = None,
    graceful: bool = False,
    url: str | None = None,
    force: bool = False,
    get: Callable[[str], Answer] = http_get,
    choose: Callable[[list[dict[str, Any]]], dict[str, Any]] = random.choice,
) -> Prepared:
    """Every check before anything is stopped; a refusal raises and leaves the stack untouched."""
    from ghostha.observe import observe
    from ghostha.status import report

    obs = observe(aws, cfg, "status")
    rep = report(cfg, obs, events=0)
    if rep["verdict"] == "NOT DEPLOYED":
        raise Refused(f"stack {cfg.stack} is not deployed ({rep['reason']}): nothing to drill", hint="run ghostha up")
    if not rep["healthy"] and not force:
        raise Refused(
            f"stack {cfg.stack} is {rep['verdict']} ({rep['reason']}): refusing to stop anything",
            hint="wait until `ghostha status` says HEALTHY, or pass --force to drill a degraded stack",
        )
    running = [t for t in rep["tasks"] if t["last_status"] == "RUNNING"]
    if kind == "instance":
        victim = _victim_instance(cfg, rep, target, choose)
    elif target:
        found = [t for t in running if t["task_id"] == target or t["task_id"].startswith(target)]
        if len(found) != 1:
            ids = ", ".join(sorted(t["task_id"] for t in running)) or "none"
            what = "no running task" if not found else "more than one running task starts with"
            raise BadTarget(f"{what} {target} in service {cfg.service.name}", hint=f"running tasks: {ids}")
        victim = found[0]
    else:
        candidates = [t for t in running if t["health"] == "healthy"] or running
        if not candidates:
            raise Refused(f"service {cfg.service.name} has no running task to stop")
        victim = choose(candidates)
    site = url or rep["site_url"]
    if not site:
        raise BadTarget("no URL to probe: the load balancer has no DNS name", hint="pass --url or set site_url")
    answer = get(site)
    if not ok(answer.status):
        seen = f"HTTP {answer.status}" if answer.status is not None else (answer.error or "no answer")
        raise BadTarget(
            f"the site at {site} does not answer 2xx/3xx ({seen}): nothing was stopped",
            hint="pass --url with the blog's address, or set site_url in the config",
        )
    tg = obs.target_group or {}
    if kind == "instance":
        iid = victim["instance_id"]
        arns = tuple(t["taskArn"] for t in obs.tasks if _task_instance(obs, t) == iid)
        ci_arn = next(ci["containerInstanceArn"] for ci in obs.container_instances if ci["ec2InstanceId"] == iid)
        victim_id, port = iid, None
    else:
        arns = tuple(t["taskArn"] for t in obs.tasks if t["taskArn"].endswith("/" + victim["task_id"]))
        ci_arn, victim_id, port = None, victim["task_id"], victim["host_port"]
    return Prepared(
        kind=kind,
        victim_id=victim_id,
        task_arns=arns,
        instance_id=victim["instance_id"],
        host_port=port,
        container_instance_arn=ci_arn,
        graceful=graceful,
        url=site,
        target_group_arn=tg.get("TargetGroupArn"),
        baseline=frozenset(t["task_id"] for t in rep["tasks"]),
        baseline_instances=frozenset(i["instance_id"] for i in rep["instances"]),
        expected=expected_times(aws, obs.target_group, obs.service),
    )


def _task_instance(obs: Any, task: dict[str, Any]) -> str | None:
    for ci in obs.container_instances:
        if ci["containerInstanceArn"] == task.get("containerInstanceArn"):
            return str(ci["ec2InstanceId"])
    return None


def _victim_instance(
    cfg: Config, rep: dict[str, Any], target: str | None, choose: Callable[[list[dict[str, Any]]], dict[str, Any]]
) -> dict[str, Any]:
    active = [i for i in rep["instances"] if i["status"] == "ACTIVE"]
    if target:
        found = [i for i in active if i["instance_id"] == target]
        if not found:
            ids = ", ".join(sorted(i["instance_id"] for i in active)) or "none"
            raise BadTarget(
                f"no ACTIVE container instance {target} in cluster {cfg.cluster.name}", hint=f"instances: {ids}"
            )
        return dict(found[0])
    busy = [i for i in active if i["running_tasks"] > 0] or active
    if not busy:
        raise Refused(f"cluster {cfg.cluster.name} has no container instance to terminate")
    return dict(choose(busy))


# --- during: act, probe, watch -----------------------------------------------------------------------------


@dataclass
class Watch:
    """The timeline, from successive looks at the control plane."""

    prepared: Prepared
    progress: DrillProgress
    timeline: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # what → last state seen
    running_at: float | None = None
    healthy_at: float | None = None
    steady_at: float | None = None
    replacements: list[str] = field(default_factory=list)
    new_instance: bool = False

    def note(self, at: float, event: str) -> None:
        self.timeline.append({"at_seconds": round(at, 3), "event": event})
        self.progress.event(at, event)

    def changed(self, key: str, state: str) -> bool:
        if self.seen.get(key) == state:
            return False
        self.seen[key] = state
        return True

    def look(self, at: float, rep: dict[str, Any], victims: dict[str, str], stopped: bool) -> None:
        p = self.prepared
        for task_id, status in victims.items():
            if self.changed(f"victim {task_id}", status):
                self.note(at, f"victim task {task_id[:8]} {status}")
        if p.kind == "task":
            vt = next(
                (t for t in rep["targets"] if t["instance_id"] == p.instance_id and t["port"] == p.host_port),
                None,
            )
            state = vt["state"] if vt else "deregistered"
            if self.changed("victim-target", state):
                self.note(at, f"victim target {p.instance_id}:{p.host_port} {state}")
        else:
            mine = [i for i in rep["instances"] if i["instance_id"] == p.instance_id]
            state = str(mine[0]["status"]) if mine else "deregistered"
            if self.changed("victim-instance", state):
                self.note(at, f"victim container instance {p.instance_id} {state}")
            for i in rep["instances"]:
                if i["instance_id"] not in p.baseline_instances and self.changed(f"new {i['instance_id']}", "seen"):
                    self.note(at, f"new container instance {i['instance_id']} registered ({i['status']})")
                    self.new_instance = True
        for t in rep["tasks"]:
            if t["task_id"] in p.baseline:
                continue
            if t["task_id"] not in self.replacements:
                self.replacements.append(t["task_id"])
            short = t["task_id"][:8]
            if self.changed(f"task {t['task_id']}", str(t["last_status"])):
                self.note(at, f"replacement task {short} {t['last_status']} on {t['instance_id']}:{t['host_port']}")
            if t["last_status"] == "RUNNING" and self.running_at is None:
                self.running_at = at
            if t["health"] != "unregistered" and self.changed(f"target {t['task_id']}", t["health"]):
                self.note(at, f"replacement target {t['instance_id']}:{t['host_port']} {t['health']}")
            if t["health"] == "healthy" and self.healthy_at is None:
                self.healthy_at = at
        # ECS's AZ rebalancing (the lost AZ's replacement instance gets its share of tasks back): each new event
        balance = str(((rep.get("service") or {}).get("az_balance") or {}).get("event") or "")
        if "az-balance" not in self.seen:
            self.seen["az-balance"] = balance  # what was there before the drill is not part of it
        elif self.changed("az-balance", balance):
            self.note(at, f"AZ rebalancing: {balance}")
        replaced = self.new_instance or self.prepared.kind == "task"
        if stopped and replaced and rep["healthy"] and self.healthy_at is not None and self.steady_at is None:
            self.steady_at = at
            self.note(at, f"service steady: {rep['reason']}")


def _victim_status(aws: Aws, cfg: Config, task_arns: tuple[str, ...]) -> dict[str, str]:
    """Task id → last status of the victim's tasks (100 per call, as DescribeTasks allows)."""
    from ghostha.observe import chunks

    out: dict[str, str] = {}
    for part in chunks(list(task_arns), 100):
        for t in aws.client("ecs").describe_tasks(cluster=cfg.cluster.name, tasks=part).get("tasks", []):
            out[t["taskArn"].rsplit("/", 1)[-1]] = str(t.get("lastStatus"))
    return out


def _look(aws: Aws, cfg: Config, task_arns: tuple[str, ...]) -> tuple[dict[str, Any], dict[str, str], datetime | None]:
    from ghostha.observe import observe
    from ghostha.status import report

    obs = observe(aws, cfg, "status")
    return report(cfg, obs, events=0), _victim_status(aws, cfg, task_arns), obs.observed_at


def clock_rate(samples: list[tuple[float, datetime]]) -> float:
    """AWS seconds per second of the drill's clock, from AWS's Date header at each poll: 1 against AWS (whose
    clock is real time; within 25 % is taken as exactly 1, the header has 1-second resolution), N against a
    sandbox whose time runs N times faster. Every time in the report is multiplied by it."""
    if len(samples) < 2:
        return 1.0
    (l0, a0), (l1, a1) = samples[0], samples[-1]
    aws_span = (a1 - a0).total_seconds()
    if l1 - l0 <= 0 or aws_span < 10:
        return 1.0
    rate = aws_span / (l1 - l0)
    return 1.0 if 0.8 <= rate <= 1.25 else round(rate, 2)


class _InAwsSeconds:
    """Passes progress on with times in AWS's seconds, as far as the polls so far tell the clock rate."""

    def __init__(self, inner: DrillProgress) -> None:
        self.inner = inner
        self.rate = 1.0

    def status(self, text: str) -> None:
        self.inner.status(text)

    def event(self, at: float, text: str) -> None:
        self.inner.event(at * self.rate, text)


def _scaled(value: float | None, rate: float) -> float | None:
    return round(value * rate, 3) if value is not None else None


def run(
    aws: Aws,
    cfg: Config,
    prepared: Prepared,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    progress: DrillProgress,
    rate: float = 10.0,
    connections: int = 4,
    max_failed_requests: int = 0,
    max_recovery: float = 600.0,
    get: Callable[[str], Answer] = http_get,
) -> dict[str, Any]:
    """Kill the victim, probe at `rate` per second, poll the control plane every `poll_seconds`; the report."""
    ecs, elbv2, asg = aws.client("ecs"), aws.client("elbv2"), aws.client("autoscaling")
    p = prepared
    prober = Prober(p.url, connections, get)
    live = _InAwsSeconds(progress)
    watch = Watch(p, live)
    t0 = clock()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if p.kind == "instance":
            # the group replaces it: desired capacity unchanged
            asg.terminate_instance_in_auto_scaling_group(InstanceId=p.victim_id, ShouldDecrementDesiredCapacity=False)
            watch.note(clock() - t0, f"TerminateInstanceInAutoScalingGroup {p.victim_id}")
        else:
            ecs.stop_task(cluster=cfg.cluster.name, task=p.task_arns[0], reason="ghostha drill")
            watch.note(clock() - t0, f"StopTask {p.victim_id[:8]}")
        stopped = True

    def drained(rep: dict[str, Any], victims: dict[str, str]) -> bool:
        if p.kind == "task":
            return watch.seen.get("victim-target") == "deregistered"
        # its tasks have left it (STOPPED, after their targets drained) and every task still running is healthy;
        # where the other instances have no room, the rest start on the instance that replaces it
        running = [t for t in rep["tasks"] if t["last_status"] == "RUNNING"]
        gone = all(status == "STOPPED" for status in victims.values())
        return gone and all(t["health"] == "healthy" for t in running)

    if p.graceful and p.kind == "instance" and p.container_instance_arn:
        ecs.update_container_instances_state(
            cluster=cfg.cluster.name, containerInstances=[p.container_instance_arn], status="DRAINING"
        )
        watch.note(0.0, f"UpdateContainerInstancesState {p.instance_id} DRAINING (draining first)")
    elif p.graceful and p.target_group_arn and p.instance_id and p.host_port:
        elbv2.deregister_targets(
            TargetGroupArn=p.target_group_arn, Targets=[{"Id": p.instance_id, "Port": p.host_port}]
        )
        watch.note(0.0, f"DeregisterTargets {p.instance_id}:{p.host_port} (draining first)")
    else:
        stop()
    tick = 1.0 / rate
    n_ticks = 0
    next_poll = t0
    recovered_at: float | None = None
    timed_out = False
    samples: list[tuple[float, datetime]] = []
    while True:
        now = clock()
        while t0 + n_ticks * tick <= now:
            prober.tick(now - t0)
            n_ticks += 1
        if now >= next_poll:
            rep, victims, aws_now = _look(aws, cfg, p.task_arns)
            watch.look(clock() - t0, rep, victims, stopped)
            if aws_now is not None:
                samples.append((clock() - t0, aws_now))
                live.rate = clock_rate(samples)
            if not stopped and drained(rep, victims):
                stop()  # drained: now stop it
            next_poll = now + cfg.poll_seconds
            if watch.steady_at is not None and recovered_at is None:
                recovered_at = now
            progress.status(
                f"{(now - t0) * live.rate:.0f}s: {len(prober.probes)} requests, "
                f"{sum(1 for x in prober.probes if not ok(x.answer.status))} failed; {rep['reason']}"
            )
        if recovered_at is not None and now - recovered_at >= TAIL_SECONDS:
            break
        if now - t0 >= max_recovery:
            timed_out = True
            break
        sleep(max(0.0, min(t0 + n_ticks * tick, next_poll) - clock()))
    rate = clock_rate(samples)
    measured = summarize([Probe(x.at * rate, x.answer) for x in prober.finish()])
    steady = _scaled(watch.steady_at, rate)
    failed = measured["requests"]["failed"]
    if timed_out:
        verdict, reason = "FAIL", f"the service did not recover within {max_recovery:g} s"
    elif failed > max_failed_requests:
        verdict = "FAIL"
        reason = f"{failed} of {measured['requests']['sent']} requests failed (at most {max_failed_requests} allowed)"
    else:
        verdict = "PASS"
        reason = f"{failed} of {measured['requests']['sent']} requests failed; steady again after {steady:.0f} s"
    return {
        "verdict": verdict,
        "reason": reason,
        "timed_out": timed_out,
        "url": p.url,
        "victim": p.victim(),
        **measured,
        "recovery": {
            "replacement_task_ids": watch.replacements,
            "running_after_seconds": _scaled(watch.running_at, rate),
            "healthy_after_seconds": _scaled(watch.healthy_at, rate),
            "steady_after_seconds": steady,
        },
        "expected": p.expected,
        "timeline": [{**e, "at_seconds": _scaled(e["at_seconds"], rate)} for e in watch.timeline],
        "clock_rate": rate,
    }


def exit_code(report: dict[str, Any]) -> int:
    if report["timed_out"]:
        return EXIT_TIMEOUT
    return EXIT_OK if report["verdict"] == "PASS" else EXIT_FAILED
