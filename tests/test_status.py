"""`ghostha status`: the joined view, its verdicts and exit codes, `--json` and `--watch`, against the sandbox."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ghostha.sandbox.server import Sandbox
from tests.conftest import container_instances, ctrl_c_on_sleep, describe_service, run_cli, write_config

TOP_KEYS = {"stack", "cluster", "instances", "service", "tasks", "targets", "healthy"}
TASK_KEYS = {"task_id", "instance_id", "host_port", "last_status", "health"}
TARGET_KEYS = {"instance_id", "port", "state", "reason"}


def status(box: Sandbox, cfg: Path, *args: str, **kw: Any) -> Any:
    return run_cli(box, ["--config", str(cfg), "status", *args], **kw)


def as_json(box: Sandbox, cfg: Path) -> dict[str, Any]:
    ran = status(box, cfg, "--json")
    report: dict[str, Any] = json.loads(ran.out)
    report["_exit"] = ran.exit_code
    return report


def test_healthy_stack(box: Sandbox, deployed: Path) -> None:
    ran = status(box, deployed)
    assert ran.exit_code == 0, ran.out
    assert "HEALTHY" in ran.out and "6 of 6 tasks healthy" in ran.out
    report = as_json(box, deployed)
    assert sorted(report["spread"]["per_instance"].values()) == [3, 3]
    assert sorted(report["spread"]["per_az"].values()) == [3, 3]
    assert report["spread"]["warning"] is None
    assert all(t["started_ago"] and t["started_ago"].endswith("s") for t in report["tasks"])


def test_view_fits_a_100_column_terminal(box: Sandbox, deployed: Path) -> None:
    import io

    from rich.console import Console

    from ghostha.cli import Runtime

    out = io.StringIO()
    runtime = Runtime(clock=box.clock.seconds, sleep=box.advance, out=Console(file=out, width=100, color_system=None))
    from click.testing import CliRunner

    from ghostha.cli import cli

    CliRunner().invoke(cli, ["--config", str(deployed), "status"], obj=runtime)
    lines = out.getvalue().splitlines()
    assert lines and max(len(line) for line in lines) <= 100
    assert any("tasks" in line for line in lines) and any("targets" in line for line in lines)


def test_json_keys_match_the_contract_and_aws(box: Sandbox, deployed: Path) -> None:
    report = as_json(box, deployed)
    assert report["_exit"] == 0
    assert set(report) >= TOP_KEYS
    assert report["stack"] == "ghost-ha" and report["healthy"] is True
    assert report["cluster"]["name"] == "ghost-ha"
    assert len(report["instances"]) == 2
    assert report["service"]["desired"] == 6 and report["service"]["running"] == 6
    assert len(report["tasks"]) == 6 and all(set(t) >= TASK_KEYS for t in report["tasks"])
    assert len(report["targets"]) == 6 and all(set(t) >= TARGET_KEYS for t in report["targets"])
    # the join: each task's (instance, host port) is a healthy target
    assert box.seeded is not None
    th = box.client("elbv2").describe_target_health(TargetGroupArn=box.seeded.target_group_arn)
    aws_targets = {(t["Target"]["Id"], t["Target"]["Port"]) for t in th["TargetHealthDescriptions"]}
    assert {(t["instance_id"], t["host_port"]) for t in report["tasks"]} == aws_targets
    assert {t["health"] for t in report["tasks"]} == {"healthy"}
    ecs = box.client("ecs")
    arns = ecs.list_tasks(cluster="ghost-ha")["taskArns"]
    assert {t["task_id"] for t in report["tasks"]} == {a.rsplit("/", 1)[-1] for a in arns}


def test_stopped_task_during_replacement_is_degraded_with_its_reason(box: Sandbox, deployed: Path) -> None:
    ecs = box.client("ecs")
    victim = ecs.list_tasks(cluster="ghost-ha")["taskArns"][0]
    ecs.stop_task(cluster="ghost-ha", task=victim, reason="failure drill: stopped by hand")
    box.advance(1)
    ran = status(box, deployed)
    assert ran.exit_code == 1
    assert "DEGRADED" in ran.out and "5 of 6 tasks running" in ran.out
    assert "failure drill: stopped by hand" in ran.out
    box.advance(120)  # the replacement runs and turns healthy
    assert status(box, deployed).exit_code == 0


def test_unhealthy_targets_are_degraded(box: Sandbox, deployed: Path) -> None:
    assert box.seeded is not None
    ec2 = box.client("ec2")
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [box.seeded.instance_sg]}])
    ours = [r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"] if r.get("FromPort") == 32768]
    ec2.revoke_security_group_ingress(GroupId=box.seeded.instance_sg, SecurityGroupRuleIds=ours)
    box.advance(25)
    report = as_json(box, deployed)
    assert report["_exit"] == 1 and report["verdict"] == "DEGRADED"
    assert "6 of 6 targets not healthy" in report["reason"]
    assert {t["reason"] for t in report["targets"]} == {"Target.Timeout"}


def test_stale_target_registered_by_hand_is_flagged(box: Sandbox, deployed: Path) -> None:
    assert box.seeded is not None
    instance = as_json(box, deployed)["instances"][0]["instance_id"]
    box.client("elbv2").register_targets(
        TargetGroupArn=box.seeded.target_group_arn, Targets=[{"Id": instance, "Port": 40000}]
    )
    report = as_json(box, deployed)
    stale = [t for t in report["targets"] if t["stale"]]
    assert [(t["instance_id"], t["port"]) for t in stale] == [(instance, 40000)]
    assert "stale: no running task" in status(box, deployed).out


def test_an_az_rebalancing_in_progress_is_not_healthy_yet(box: Sandbox, tmp_path: Path) -> None:
    """ECS's AZ rebalancing ("Track Amazon ECS Availability Zone rebalancing": "service (service-name) is not AZ
    balanced ... AZ Rebalancing in progress." until "... is AZ balanced ..."): status says so and is HEALTHY only
    once it is balanced again."""
    cfg = write_config(box, tmp_path / "g.yaml", **{"cluster.instance_type": "t3.medium"})
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    victim = container_instances(box)[0]["ec2InstanceId"]
    box.client("ec2").terminate_instances(InstanceIds=[victim])
    for _ in range(60):
        box.advance(5)
        if any("is not AZ balanced" in e["message"] for e in describe_service(box)["events"]):
            break
    report = as_json(box, cfg)
    assert report["_exit"] == 1 and report["reason"] == "AZ rebalancing in progress"
    assert report["service"]["az_rebalancing"] == "ENABLED" and report["service"]["az_balance"]["in_progress"]
    assert "ENABLED (in progress)" in status(box, cfg).out
    for _ in range(60):
        box.advance(5)
        if as_json(box, cfg)["healthy"]:
            break
    report = as_json(box, cfg)
    assert report["_exit"] == 0 and not report["service"]["az_balance"]["in_progress"]
    assert sorted(report["spread"]["per_az"].values()) == [3, 3]


def test_no_stack_says_how_to_deploy(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = status(box, cfg)
    assert ran.exit_code == 1
    assert "NOT DEPLOYED" in ran.out and "ghostha up" in ran.out


def test_watch_redraws_until_ctrl_c(box: Sandbox, deployed: Path) -> None:
    start = len(box.requests)
    ran = status(box, deployed, "--watch", sleep=ctrl_c_on_sleep(box, 3))
    assert ran.exit_code == 0 and "Traceback" not in ran.err
    reads = [r for r in box.requests[start:] if r[1] == "DescribeClusters"]
    assert len(reads) == 3, "the first view and two refreshes"
    assert "HEALTHY" in ran.out


def test_story_stack_status_takes_12_calls_and_13_with_stopped_tasks_to_explain(box: Sandbox, deployed: Path) -> None:
    """The numbers the README gives: stopped tasks add one DescribeTasks (their reasons)."""
    start = len(box.requests)
    assert status(box, deployed).exit_code == 0
    assert len(box.requests[start:]) <= 12, box.requests[start:]
    ecs = box.client("ecs")
    ecs.stop_task(cluster="ghost-ha", task=ecs.list_tasks(cluster="ghost-ha")["taskArns"][0])
    box.advance(120)
    start = len(box.requests)
    assert status(box, deployed).exit_code == 0
    assert len(box.requests[start:]) <= 13, box.requests[start:]


def test_config_errors_exit_2_without_traceback(box: Sandbox, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("stack: ghost-ha\nnetwork: {subnets: [subnet-a], security_group: sg-1}\ncolour: blue\n")
    ran = status(box, cfg)
    assert ran.exit_code == 2
    assert "error:" in ran.err and "unknown key 'colour'" in ran.err and "Traceback" not in ran.err


def test_help_does_not_import_boto3() -> None:
    code = (
        "import sys\n"
        "from ghostha.cli import cli\n"
        "for args in (['--help'], ['status', '--help']):\n"
        "    try:\n"
        "        cli(args, prog_name='ghostha')\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print('boto3' in sys.modules, 'botocore' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_an_az_rebalancing_is_in_progress_only_until_something_ends_it() -> None:
    """A rebalancing may end without its "is AZ balanced" event (turned off, overtaken by a deployment): a later
    steady state or the setting DISABLED ends "in progress", so status cannot say it forever."""
    from ghostha.status import az_rebalancing

    def ev(*messages: str) -> list[dict[str, Any]]:  # newest first, as DescribeServices gives them
        return [{"message": f"(service ghost) {m}"} for m in messages]

    unbalanced = "is not AZ balanced with 4 tasks in us-east-1a and 2 tasks in us-east-1b. AZ Rebalancing in progress."
    assert az_rebalancing(ev(unbalanced, "has reached a steady state."))["in_progress"]
    assert not az_rebalancing(ev("has reached a steady state.", unbalanced))["in_progress"]
    assert not az_rebalancing(ev(unbalanced), enabled=False)["in_progress"]
    assert not az_rebalancing(ev("is AZ balanced with 3 tasks in us-east-1a and 3 tasks in us-east-1b.", unbalanced))[
        "in_progress"
    ]
