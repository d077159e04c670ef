"""`ghostha drill` against the sandbox with its data plane on: the prober's requests really cross the ALB stand-in,
and the runtime's sleep advances simulated time, so every count is deterministic and checkable against the log."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ghostha.drill import Answer, Probe, clock_rate, summarize
from ghostha.sandbox.server import Sandbox
from tests.conftest import container_instances, mutating, run_cli, settle, short_draining, write_config
from tests.test_sandbox import stack

STOPPING_CALLS = {("ecs", "StopTask"), ("elasticloadbalancing", "DeregisterTargets")}


def deploy(box: Sandbox, tmp_path: Path, count: int = 6) -> Path:
    assert box.site_url is not None
    short_draining(box)
    # no site_url: the sandbox advises its ALB stand-in's (ghostha/advice.py)
    cfg = write_config(box, tmp_path / "g.yaml", **{"service.desired_count": count})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    return cfg


def drill(box: Sandbox, cfg: Path, *args: str, answer: str | None = None) -> tuple[int, dict[str, Any], str]:
    args = ("--json", "--connections", "1", "--rate", "5", *args)  # one request at a time: deterministic
    ran = run_cli(box, ["--config", str(cfg), "drill", *args], answer=answer)
    report = json.loads(ran.out) if ran.out.strip().startswith("{") else {}
    return ran.exit_code, report, ran.err


def alb_statuses(box: Sandbox) -> Counter[str]:
    """What the ALB stand-in answered, minus drill's one check of the URL before it stopped anything."""
    assert box.dataplane is not None
    return Counter(str(r.status) for r in box.dataplane.log[1:])


def check_counts(report: dict[str, Any], box: Sandbox) -> None:
    r = report["requests"]
    assert r["sent"] == r["ok"] + r["failed"]
    assert r["failed"] == sum(n for s, n in r["by_status"].items() if not 200 <= int(s) < 400) + (
        r["connection_errors"] + r["timeouts"]
    )
    assert Counter(r["by_status"]) == alb_statuses(box), "the report says exactly what the ALB stand-in logged"


def check_times(report: dict[str, Any]) -> None:
    rec = report["recovery"]
    assert 0 < rec["running_after_seconds"] <= rec["healthy_after_seconds"] <= rec["steady_after_seconds"]
    events = {e["event"].split(":")[0]: e["at_seconds"] for e in report["timeline"]}
    assert events["service steady"] == rec["steady_after_seconds"]
    at = [e["at_seconds"] for e in report["timeline"]]
    assert at == sorted(at)


def test_graceful_task_kill_passes_with_no_failed_request(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    code, report, err = drill(live, cfg, "--yes", "--graceful")
    assert code == 0, err
    assert report["verdict"] == "PASS" and report["clock_rate"] == 1
    assert report["requests"]["failed"] == 0 and report["requests"]["sent"] > 100
    assert report["longest_outage_seconds"] == 0 and report["first_failure_at"] is None
    check_counts(report, live)
    check_times(report)
    victim = report["victim"]
    assert victim["kind"] == "task" and victim["graceful"] is True
    assert report["expected"] == {"healthy_within_seconds": 20, "draining_seconds": 30, "grace_seconds": 120}
    timeline = [e["event"] for e in report["timeline"]]
    assert timeline[0].startswith("DeregisterTargets")
    stop_at = next(e["at_seconds"] for e in report["timeline"] if e["event"].startswith("StopTask"))
    assert stop_at >= report["expected"]["draining_seconds"], "stopped only after draining"
    (new,) = report["recovery"]["replacement_task_ids"]
    status = json.loads(run_cli(live, ["--config", str(cfg), "status", "--json"]).out)
    task = next(t for t in status["tasks"] if t["task_id"] == new)
    assert (task["instance_id"], task["host_port"]) != (victim["instance_id"], victim["host_port"])
    assert task["health"] == "healthy" and status["healthy"]


def test_abrupt_task_kill_reports_exactly_what_the_alb_logged(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    code, report, err = drill(live, cfg, "--yes")
    check_counts(report, live)
    check_times(report)
    failed = report["requests"]["failed"]
    assert report["verdict"] == ("PASS" if failed == 0 else "FAIL")
    assert code == (0 if failed == 0 else 1), err
    # the sandbox's ALB keeps routing to the stopped task for a moment: the 502 race of a plain StopTask
    assert report["requests"]["by_status"].get("502", 0) == failed > 0
    assert report["first_failure_at"] is not None and report["first_failure_at"] < 5
    assert report["timeline"][0]["event"].startswith("StopTask")


def test_a_service_of_one_task_fails_with_the_outage_reported(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path, count=1)
    code, report, _err = drill(live, cfg, "--yes")
    assert code == 1 and report["verdict"] == "FAIL"
    assert report["requests"]["by_status"].get("503", 0) > 0, "no healthy target left: the ALB answers 503"
    assert report["longest_outage_seconds"] >= 30, "the replacement needs to start, boot and pass checks"
    check_counts(report, live)


def test_max_failed_requests_and_the_table(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    ran = run_cli(live, ["--config", str(cfg), "drill", "--yes", "--connections", "1", "--max-failed-requests", "1000"])
    assert ran.exit_code == 0, ran.err
    assert "PASS" in ran.out and "requests" in ran.out and "timeline" in ran.out
    assert re.search(r"\d\.\ds StopTask", ran.out), "each timeline event prints as it happens"
    sent = len(live.dataplane.log) - 1 if live.dataplane else -1
    assert f"│ {sent} " in ran.out.replace("┃", "│"), "the table shows the count the ALB logged"


def test_recovery_deadline_exits_3(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    code, report, _err = drill(live, cfg, "--yes", "--graceful", "--max-recovery", "20")
    assert code == 3 and report["verdict"] == "FAIL" and report["timed_out"]
    assert "did not recover within 20 s" in report["reason"]


# --- refusals: nothing is stopped ---------------------------------------------------------------------------


def nothing_stopped(box: Sandbox, before: int) -> bool:
    return not STOPPING_CALLS & set(mutating(box.requests[before:]))


def test_refuses_a_stack_not_deployed(live: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(live, tmp_path / "g.yaml")
    before = len(live.requests)
    code, _report, err = drill(live, cfg, "--yes")
    assert code == 1 and "is not deployed" in err and nothing_stopped(live, before)


def test_refuses_a_stack_not_healthy_unless_forced(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    ecs = live.client("ecs")
    first = ecs.list_tasks(cluster="ghost-ha", serviceName="ghost")["taskArns"][0]
    ecs.stop_task(cluster="ghost-ha", task=first, reason="an earlier failure")
    live.advance(6)  # past the ALB's moment of routing to the stopped task; the replacement is far from ready
    before = len(live.requests)
    code, _report, err = drill(live, cfg, "--yes")
    assert code == 1 and "refusing to stop anything" in err and "--force" in err
    assert nothing_stopped(live, before)
    code, report, err = drill(live, cfg, "--yes", "--force", "--max-failed-requests", "1000")
    assert code == 0 and report["verdict"] == "PASS", err
    assert not nothing_stopped(live, before)


def test_refuses_an_unreachable_url(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    before = len(live.requests)
    code, _report, err = drill(live, cfg, "--yes", "--url", "http://127.0.0.1:9/")
    assert code == 2 and "does not answer 2xx/3xx (connection)" in err and nothing_stopped(live, before)


def test_refuses_an_unknown_task_id(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    before = len(live.requests)
    code, _report, err = drill(live, cfg, "--yes", "--target", "0123456789abcdef")
    assert code == 2 and "no running task 0123456789abcdef" in err and "running tasks:" in err
    assert nothing_stopped(live, before)


def test_asks_for_the_stack_name(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    before = len(live.requests)
    code, _report, err = drill(live, cfg, answer="no")
    assert code == 1 and "nothing was stopped" in err and nothing_stopped(live, before)


def test_status_shows_the_configured_site_url(box: Sandbox, tmp_path: Path) -> None:
    stack(box)
    settle(box, 45)
    cfg = write_config(box, tmp_path / "g.yaml", site_url="https://blog.example.com")
    report = json.loads(run_cli(box, ["--config", str(cfg), "status", "--json"]).out)
    assert report["site_url"] == "https://blog.example.com"


def test_clock_rate_follows_aws_date_header() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert clock_rate([(0.0, start), (10.0, start + timedelta(seconds=300))]) == 30, "a sandbox at --scale 30"
    assert clock_rate([(0.0, start), (100.0, start + timedelta(seconds=101))]) == 1, "AWS: real time"
    assert clock_rate([(0.0, start)]) == 1


def test_summary_counts_and_the_longest_outage() -> None:
    def p(at: float, status: int | None, error: str | None = None) -> Probe:
        return Probe(at, Answer(status, error))

    probes = [p(0, 200), p(1, 502), p(2, None, "connection"), p(3, 200), p(4, None, "timeout"), p(5, 301)]
    s = summarize(probes)
    assert s["requests"] == {
        "sent": 6,
        "ok": 3,
        "failed": 3,
        "by_status": {"200": 2, "301": 1, "502": 1},
        "connection_errors": 1,
        "timeouts": 1,
    }
    assert (s["longest_outage_seconds"], s["first_failure_at"], s["last_failure_at"]) == (2, 1, 4)


# --- instance loss ----------------------------------------------------------------------------------------------


def new_instances(box: Sandbox, before: set[str]) -> set[str]:
    ids = {ci["ec2InstanceId"] for ci in container_instances(box)}
    return ids - before


@pytest.mark.parametrize("graceful", [False, True], ids=["abrupt", "graceful"])
def test_instance_kill_replaces_its_three_tasks_on_the_groups_new_instance(
    live: Sandbox, tmp_path: Path, graceful: bool
) -> None:
    """TerminateInstanceInAutoScalingGroup with ShouldDecrementDesiredCapacity=false: the group launches a
    replacement (Amazon EC2 Auto Scaling API reference, TerminateInstanceInAutoScalingGroup:
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_TerminateInstanceInAutoScalingGroup.html)."""
    cfg = deploy(live, tmp_path)
    before = {ci["ec2InstanceId"] for ci in container_instances(live)}
    args = ["--yes", "--kill", "instance", "--max-failed-requests", "1000"] + (["--graceful"] if graceful else [])
    code, report, err = drill(live, cfg, *args)
    assert code == 0, err
    victim = report["victim"]
    assert victim["kind"] == "instance" and victim["id"] in before and len(victim["task_ids"]) == 3
    assert len(report["recovery"]["replacement_task_ids"]) == 3
    (new,) = new_instances(live, before)
    events = [e["event"] for e in report["timeline"]]
    assert f"new container instance {new} registered (ACTIVE)" in events
    assert any(e.startswith(f"TerminateInstanceInAutoScalingGroup {victim['id']}") for e in events)
    check_counts(report, live)
    check_times(report)
    status = json.loads(run_cli(live, ["--config", str(cfg), "status", "--json"]).out)
    assert status["healthy"] and {t["instance_id"] for t in status["tasks"]} == (before - {victim["id"]}) | {new}
    if graceful:
        assert events[0].startswith(f"UpdateContainerInstancesState {victim['id']} DRAINING")
        at = {e["event"]: e["at_seconds"] for e in report["timeline"]}
        stopped = [at[f"victim task {t[:8]} STOPPED"] for t in victim["task_ids"]]
        terminated = next(v for k, v in at.items() if k.startswith("TerminateInstance"))
        assert terminated >= max(stopped) >= report["expected"]["draining_seconds"], "its tasks drained first"
        assert report["requests"]["failed"] == 0, "drained first: no visitor saw a failure"
        assert report["verdict"] == "PASS"


def test_instance_kill_on_roomy_instances_rebalances_the_azs_when_the_new_instance_arrives(
    live: Sandbox, tmp_path: Path
) -> None:
    """With room for all six tasks on one instance (t3.medium), the victim's tasks move to the survivor; when the
    group's new instance registers in the lost AZ, ECS's AZ rebalancing moves three back (ECS developer guide,
    "Balancing an Amazon ECS service across Availability Zones":
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-rebalancing.html). The drill's timeline shows
    the rebalancing events, and the service is steady only once it is balanced again."""
    short_draining(live)
    assert live.site_url is not None
    cfg = write_config(live, tmp_path / "g.yaml", site_url=live.site_url, **{"cluster.instance_type": "t3.medium"})
    ran = run_cli(live, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    code, report, err = drill(live, cfg, "--yes", "--kill", "instance", "--max-failed-requests", "1000")
    assert code == 0, err
    at = {e["event"]: e["at_seconds"] for e in report["timeline"]}
    started = next(v for k, v in at.items() if k.startswith("AZ rebalancing: service (ghost) is not AZ balanced"))
    done = next(
        (k, v) for k, v in at.items() if k.startswith("AZ rebalancing: service (ghost) is AZ balanced with 3 tasks")
    )
    assert started <= done[1] <= report["recovery"]["steady_after_seconds"]
    status = json.loads(run_cli(live, ["--config", str(cfg), "status", "--json"]).out)
    assert sorted(status["spread"]["per_az"].values()) == [3, 3]
    assert status["service"]["az_balance"] == {
        "in_progress": False,
        "event": done[0].removeprefix("AZ rebalancing: "),
        "at": status["service"]["az_balance"]["at"],
    }


def test_refuses_an_unknown_instance_id(live: Sandbox, tmp_path: Path) -> None:
    cfg = deploy(live, tmp_path)
    before = len(live.requests)
    code, _report, err = drill(live, cfg, "--yes", "--kill", "instance", "--target", "i-0000000000")
    assert code == 2 and "no ACTIVE container instance i-0000000000" in err
    assert not {("autoscaling", "TerminateInstanceInAutoScalingGroup")} & set(mutating(live.requests[before:]))
