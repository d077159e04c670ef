"""`ghostha teardown` against the sandbox: exactly what ghostha made goes, in AWS's order; nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ghostha.sandbox.server import Sandbox
from tests.conftest import ctrl_c_on_sleep, mutating, run_cli, write_config


def inventory(box: Sandbox) -> dict[str, Any]:
    """Everything in the account that up or teardown could touch, minus what AWS keeps after deletion
    (INACTIVE services and revisions, terminated instances, draining targets)."""
    ecs, ec2, auto, elbv2 = (box.client(s) for s in ("ecs", "ec2", "autoscaling", "elbv2"))
    clusters = [
        c
        for c in ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
        if c["status"] == "ACTIVE"
    ]
    services = []
    for c in clusters:
        arns = ecs.list_services(cluster=c["clusterName"])["serviceArns"]
        if arns:
            described = ecs.describe_services(cluster=c["clusterName"], services=arns)["services"]
            services += [(c["clusterName"], s["serviceName"]) for s in described if s["status"] != "INACTIVE"]
    instances = [
        i["InstanceId"]
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
    ]
    tgs = elbv2.describe_target_groups()["TargetGroups"]
    targets = [
        (tg["TargetGroupName"], t["Target"]["Id"], t["Target"]["Port"])
        for tg in tgs
        for t in elbv2.describe_target_health(TargetGroupArn=tg["TargetGroupArn"])["TargetHealthDescriptions"]
        if t["TargetHealth"]["State"] != "draining"
    ]
    return {
        "clusters": sorted(c["clusterName"] for c in clusters),
        "services": sorted(services),
        "asgs": sorted(g["AutoScalingGroupName"] for g in auto.describe_auto_scaling_groups()["AutoScalingGroups"]),
        "launch_templates": sorted(t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]),
        "instances": sorted(instances),
        "revisions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "sg_rules": sorted(r["SecurityGroupRuleId"] for r in ec2.describe_security_group_rules()["SecurityGroupRules"]),
        "targets": sorted(targets),
        "load_balancers": sorted(lb["LoadBalancerName"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]),
        "listeners": sorted(
            listener["ListenerArn"]
            for lb in elbv2.describe_load_balancers()["LoadBalancers"]
            for listener in elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
        ),
    }


def teardown(box: Sandbox, cfg: Path, *extra: str, **kw: Any) -> Any:
    return run_cli(box, ["--config", str(cfg), "teardown", *extra], **kw)


def test_up_then_teardown_leaves_the_account_as_seeded(box: Sandbox, tmp_path: Path) -> None:
    seeded = inventory(box)
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    assert inventory(box) != seeded
    ran = teardown(box, cfg, "--yes")
    assert ran.exit_code == 0, ran.err + ran.out
    assert inventory(box) == seeded
    for kept in ("ghost-elb", "ghost-tg", "ghost:1", "ecsInstanceRole"):
        assert kept in ran.out, f"the table says {kept} is left"
    assert "delete-task-definitions 1 task definition revision\n" in ran.out, "one revision, said as one"
    assert "2 deregistered" not in ran.out.split("scale-service")[0], "the table tells nothing done as done"
    again = teardown(box, cfg, "--yes")
    assert again.exit_code == 0 and "nothing to delete" in again.out
    after = run_cli(box, ["--config", str(cfg), "status", "--json"])
    report = json.loads(after.out)
    assert after.exit_code == 1 and report["verdict"] == "NOT DEPLOYED"
    assert report["stopped_tasks"] == [], "a torn-down stack's old tasks are not its state"


def test_teardown_of_nothing_says_so(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    start = len(box.requests)
    ran = teardown(box, cfg, "--yes")
    assert ran.exit_code == 0 and "nothing to delete" in ran.out
    assert mutating(box.requests[start:]) == []


def test_dry_run_and_a_wrong_name_delete_nothing(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    before = inventory(box)
    start = len(box.requests)
    dry = teardown(box, cfg, "--dry-run")
    assert dry.exit_code == 0 and "delete" in dry.out and "dry run" in dry.out
    wrong = teardown(box, cfg, answer="ghost-hq")
    assert wrong.exit_code == 1 and "nothing was deleted" in wrong.err
    assert mutating(box.requests[start:]) == []
    assert inventory(box) == before
    right = teardown(box, cfg, answer="ghost-ha")
    assert right.exit_code == 0, right.err


def test_foreign_service_in_the_cluster_is_left_and_said(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    ecs = box.client("ecs")
    ecs.register_task_definition(family="cron", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}])
    ecs.create_service(cluster="ghost-ha", serviceName="cron", taskDefinition="cron", desiredCount=1)
    ran = teardown(box, cfg, "--yes")
    assert ran.exit_code == 0, ran.err + ran.out
    assert "cron" in ran.out and "not created by ghostha" in ran.out
    left = inventory(box)
    assert ("ghost-ha", "cron") in left["services"] and ("ghost-ha", "ghost") not in left["services"]
    assert "ghost-ha" in left["clusters"] and left["asgs"] == ["ghost-ha-ecs"], "capacity stays for the foreign service"


def test_untagged_cluster_of_the_stack_name_is_not_deleted(box: Sandbox, tmp_path: Path) -> None:
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    cfg = write_config(box, tmp_path / "g.yaml")
    start = len(box.requests)
    ran = teardown(box, cfg, "--yes")
    assert ran.exit_code == 0
    assert "not created by ghostha" in ran.out and "nothing to delete" in ran.out
    assert mutating(box.requests[start:]) == []
    assert inventory(box)["clusters"] == ["ghost-ha"]


def test_teardown_after_an_interrupted_up_leaves_the_account_as_seeded(box: Sandbox, tmp_path: Path) -> None:
    seeded = inventory(box)
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=ctrl_c_on_sleep(box, 2)).exit_code == 130
    ran = teardown(box, cfg, "--yes")
    assert ran.exit_code == 0, ran.err + ran.out
    assert inventory(box) == seeded


def test_interrupted_teardown_finishes_on_rerun(box: Sandbox, tmp_path: Path) -> None:
    seeded = inventory(box)
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0

    first = teardown(box, cfg, "--yes", sleep=ctrl_c_on_sleep(box, 1))
    assert first.exit_code == 130 and "interrupted" in first.err
    again = teardown(box, cfg, "--yes")
    assert again.exit_code == 0, again.err + again.out
    assert inventory(box) == seeded


def test_teardown_timeout_exits_3_naming_what_is_left(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    ticks = iter(range(0, 10**6, 100))

    def no_time_for_aws(seconds: float) -> None:
        pass  # ghostha's clock runs on, the sandbox's does not: the tasks never finish stopping

    ran = teardown(box, cfg, "--yes", "--timeout", "300", sleep=no_time_for_aws, clock=lambda: float(next(ticks)))
    assert ran.exit_code == 3, ran.err + ran.out
    assert "timed out waiting for tasks of service ghost" in ran.err and "6 tasks not stopped yet" in ran.err
    assert "run `ghostha teardown` again" in ran.err
