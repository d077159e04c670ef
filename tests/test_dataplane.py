"""The sandbox's data plane: tasks serve HTTP on loopback, the ALB stand-in, real health checks, ECS's stops.

The session sandbox runs without a data plane (the other tests keep their timings); `live` turns it on for one
test and off again, closing every listener.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ghostha.sandbox.dataplane import DEREGISTRATION_LAG_SECONDS, GHOST_BOOT_SECONDS, DataPlane, matches
from ghostha.sandbox.seed import Seeded
from ghostha.sandbox.server import Sandbox, boto_client
from tests.conftest import (
    capacity,
    describe_service,
    dynamic_revision,
    open_dynamic_ports,
    running_tasks,
    service,
    settle,
    short_draining,
    targets,
)
from tests.test_sandbox import stack


def plane(box: Sandbox) -> DataPlane:
    assert box.dataplane is not None
    return box.dataplane


def get(host: str, port: int, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def site(box: Sandbox) -> tuple[int, str]:
    return get("127.0.0.1", plane(box).alb_port)


def refuses(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def endpoint_of(box: Sandbox, task: dict[str, Any]) -> tuple[str, int]:
    ci = box.client("ecs").describe_container_instances(
        cluster="ghost-ha", containerInstances=[task["containerInstanceArn"]]
    )["containerInstances"][0]
    return plane(box).address(ci["ec2InstanceId"]), int(task["containers"][0]["networkBindings"][0]["hostPort"])


def healthy_stack(box: Sandbox, count: int = 6) -> None:
    stack(box, count=count)
    settle(box, 60)
    assert {t["TargetHealth"]["State"] for t in targets(box)} == {"healthy"}


def test_matcher_ranges_and_lists() -> None:
    assert matches({"HttpCode": "200-399"}, 301) and not matches({"HttpCode": "200-399"}, 503)
    assert matches({"HttpCode": "200,302"}, 302) and not matches(None, 302)


def test_each_task_answers_like_ghost_on_its_instance_address(live: Sandbox) -> None:
    stack(live)
    settle(live, 15)  # RUNNING since at most 5 s: still booting
    tasks = [t for t in running_tasks(live) if t["lastStatus"] == "RUNNING"]
    assert len(tasks) == 6
    ends = [endpoint_of(live, t) for t in tasks]
    assert len(set(ends)) == 6
    assert len({port for _addr, port in ends}) < 6, "two instances hand out the same host port"
    assert len({addr for addr, _port in ends}) == 2 and all(a.startswith("127.") for a, _ in ends)
    assert all(get(addr, port)[0] == 503 for addr, port in ends)
    settle(live, GHOST_BOOT_SECONDS)
    for task, (addr, port) in zip(tasks, ends, strict=True):
        status, body = get(addr, port)
        assert status == 200 and task["taskArn"].rsplit("/", 1)[-1] in body


def test_health_checks_are_http_requests_that_follow_the_thresholds(live: Sandbox) -> None:
    """ELBv2: a target is healthy after HealthyThresholdCount consecutive successful checks, one every
    HealthCheckIntervalSeconds (Elastic Load Balancing, "Health checks for Application Load Balancer target
    groups", https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html).
    The seeded group checks every 10 s, 2 to turn healthy or unhealthy; Ghost answers 503 for its first 15 s."""
    stack(live)
    settle(live, 10)  # the tasks turn RUNNING and are registered at 10 s
    registered = live.clock.seconds()
    settle(live, 10)  # first check at +10 s: 503, one failure (2 needed), still initial
    assert {t["TargetHealth"]["State"] for t in targets(live)} == {"initial"}
    settle(live, 10)  # +20 s: 200, one success
    assert {t["TargetHealth"]["State"] for t in targets(live)} == {"initial"}
    settle(live, 10)  # +30 s: 200, two in a row
    assert live.clock.seconds() - registered == 30
    assert {t["TargetHealth"]["State"] for t in targets(live)} == {"healthy"}
    # a registered target with nothing listening fails its checks: connection refused
    instance = targets(live)[0]["Target"]["Id"]
    assert live.seeded is not None
    live.client("elbv2").register_targets(
        TargetGroupArn=live.seeded.target_group_arn, Targets=[{"Id": instance, "Port": 59999}]
    )
    settle(live, 25)
    lonely = next(t for t in targets(live) if t["Target"]["Port"] == 59999)["TargetHealth"]
    assert (lonely["State"], lonely["Reason"]) == ("unhealthy", "Target.FailedHealthChecks")


def test_security_group_rule_still_decides_with_the_data_plane(live: Sandbox) -> None:
    stack(live, rule=False, breaker=False, grace=300)
    settle(live, 60)
    assert {(t["TargetHealth"]["State"], t["TargetHealth"]["Reason"]) for t in targets(live)} == {
        ("unhealthy", "Target.Timeout")
    }
    assert site(live)[0] == 503


def test_alb_round_robins_over_healthy_targets_only(live: Sandbox) -> None:
    assert site(live)[0] == 503, "no healthy target: 503"
    healthy_stack(live)
    ids = [t["taskArn"].rsplit("/", 1)[-1] for t in running_tasks(live)]
    seen: Counter[str] = Counter()
    for _ in range(12):
        status, body = site(live)
        assert status == 200
        seen[next(i for i in ids if i in body)] += 1
    assert set(seen.values()) == {2}, "each of the six healthy tasks twice"
    log = plane(live).log
    assert [r.status for r in log] == [503] + [200] * 12 and log[0].target is None


def test_stop_task_closes_the_listener_at_once_and_the_alb_answers_502_while_it_catches_up(live: Sandbox) -> None:
    """StopTask sends SIGTERM at once (ECS API reference, StopTask:
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_StopTask.html); ECS deregisters the target at
    about the same time, and the load balancer keeps routing to it for a moment: 502s (aws/containers-roadmap#708)."""
    healthy_stack(live)
    victim = running_tasks(live)[0]
    addr, port = endpoint_of(live, victim)
    live.client("ecs").stop_task(cluster="ghost-ha", task=victim["taskArn"], reason="drill")
    assert refuses(addr, port), "the container stopped at once"
    task = live.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[victim["taskArn"]])["tasks"][0]
    assert task["lastStatus"] == "STOPPING"
    statuses = [site(live)[0] for _ in range(12)]
    assert Counter(statuses) == {200: 10, 502: 2}, "one target in six refuses"
    settle(live, DEREGISTRATION_LAG_SECONDS)
    assert {site(live)[0] for _ in range(12)} == {200}


def test_scheduler_stop_drains_first_and_keeps_serving_for_the_delay(live: Sandbox) -> None:
    """A scheduler-initiated stop deregisters the target and waits for it to drain (the deregistration delay)
    before stopping the task (ECS developer guide, "Optimize load balancer connection draining parameters for
    Amazon ECS": https://docs.aws.amazon.com/AmazonECS/latest/developerguide/load-balancer-connection-draining.html)."""
    short_draining(live)
    healthy_stack(live)
    before = {t["taskArn"] for t in running_tasks(live)}
    live.client("ecs").update_service(cluster="ghost-ha", service="ghost", desiredCount=5)
    live.advance(1)
    tasks = live.client("ecs").describe_tasks(cluster="ghost-ha", tasks=sorted(before))["tasks"]
    leaving = [t for t in tasks if t["desiredStatus"] == "STOPPED"]
    assert len(leaving) == 1 and leaving[0]["lastStatus"] == "DEACTIVATING"
    addr, port = endpoint_of(live, leaving[0])
    assert [t["TargetHealth"]["State"] for t in targets(live) if t["Target"]["Port"] == port].count("draining") >= 1
    statuses = []
    for _ in range(5):  # 25 s of the 30 s delay: still serving, every answer a 200
        assert get(addr, port)[0] == 200
        statuses += [site(live)[0] for _ in range(5)]
        live.advance(5)
    assert set(statuses) == {200}
    settle(live, 10)
    gone = live.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[leaving[0]["taskArn"]])["tasks"][0]
    assert gone["lastStatus"] == "STOPPED" and refuses(addr, port)
    assert describe_service(live)["runningCount"] == 5


# --- the sandbox process: its own clock, and nothing left open -------------------------------------------


class Remote:
    """A running sandbox process, seen through the same helpers as the in-process one."""

    def __init__(self, endpoint: str, seeded: dict[str, Any]) -> None:
        self.endpoint = endpoint
        self.seeded = Seeded(**{**seeded, "subnets": tuple(seeded["subnets"]), "azs": tuple(seeded["azs"])})

    def client(self, name: str) -> Any:
        return boto_client(self.endpoint, name)

    def info(self) -> dict[str, Any]:
        host, port = self.endpoint.removeprefix("http://").split(":")
        return dict(json.loads(get(host, int(port), "/_ghostha/info")[1]))


def serve(tmp_path: Path, scale: float) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    state = tmp_path / "state.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ghostha.sandbox.server", "--scale", str(scale), "--state-file", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert "sandbox ready" in proc.stdout.readline()
    return proc, json.loads(state.read_text())


def wait_for_simulated(remote: Remote, seconds: float) -> None:
    """Wait (in real time, bounded) until the sandbox's own clock has passed `seconds`: the clock under test."""
    deadline = time.monotonic() + 30
    while remote.info()["seconds"] < seconds:
        assert time.monotonic() < deadline, "the sandbox's clock does not run"
        time.sleep(0.05)


def test_the_sandbox_runs_by_itself_and_closes_every_port(tmp_path: Path) -> None:
    proc, state = serve(tmp_path, scale=400)
    try:
        remote = Remote(state["endpoint"], state["seeded"])
        site_url = state["site_url"]
        alb_port = int(site_url.rsplit(":", 1)[1])
        capacity(remote)  # type: ignore[arg-type]
        wait_for_simulated(remote, remote.info()["seconds"] + 60)
        td = dynamic_revision(remote)  # type: ignore[arg-type]
        open_dynamic_ports(remote)  # type: ignore[arg-type]
        service(remote, td)  # type: ignore[arg-type]
        start = remote.info()["seconds"]
        wait_for_simulated(remote, start + 120)
        # one look after idle time: the service is where ECS would have it, not one step on
        svc = describe_service(remote)  # type: ignore[arg-type]
        assert (svc["runningCount"], svc["pendingCount"]) == (6, 0)
        assert {t["TargetHealth"]["State"] for t in targets(remote)} == {"healthy"}  # type: ignore[arg-type]
        status, body = get("127.0.0.1", alb_port)
        assert status == 200 and "ghost task" in body
        listening = remote.info()["listening"]
        assert len(listening) == 6
        ports = [(alb_port, "127.0.0.1")] + [(int(p), a) for a, p in (x.rsplit(":", 1) for x in listening)]
        proc.send_signal(signal.SIGTERM)  # what `sandbox stop` sends
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert all(refuses(host, port) for port, host in ports)


def test_ctrl_c_closes_the_alb_stand_in(tmp_path: Path) -> None:
    proc, state = serve(tmp_path, scale=30)
    try:
        alb_port = int(state["site_url"].rsplit(":", 1)[1])
        assert get("127.0.0.1", alb_port)[0] == 503, "answering: no target yet"
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in err, err
    assert refuses("127.0.0.1", alb_port)
