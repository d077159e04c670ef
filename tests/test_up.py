"""`ghostha up` against the sandbox: the story's provisioning, idempotence, dry run, preflight, failures."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from ghostha import taskdef
from ghostha.config import TAG_KEY
from ghostha.sandbox.server import Sandbox
from tests.conftest import container_instances, ctrl_c_on_sleep, mutating, run_cli, write_config


def up(box: Sandbox, cfg: Path, *extra: str, **kw: Any) -> Any:
    return run_cli(box, ["--config", str(cfg), "up", "--yes", *extra], **kw)


def assert_story_done(box: Sandbox) -> None:
    """The story's end state: 2 instances in 2 AZs, host-port-0 revision, 6 tasks 3 + 3, 6 healthy targets, rule."""
    assert box.seeded is not None
    ecs, ec2, elbv2 = box.client("ecs"), box.client("ec2"), box.client("elbv2")
    cis = container_instances(box)
    ci_instance = {ci["containerInstanceArn"]: ci["ec2InstanceId"] for ci in cis}
    azs = {a["value"] for ci in cis for a in ci["attributes"] if a["name"] == "ecs.availability-zone"}
    assert len(cis) == 2 and len(azs) == 2

    old = ecs.describe_task_definition(taskDefinition=box.seeded.task_definition_arn)["taskDefinition"]
    new_resp = ecs.describe_task_definition(taskDefinition="ghost", include=["TAGS"])
    new = new_resp["taskDefinition"]
    assert new["revision"] == old["revision"] + 1
    assert new["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 0
    same = {k: v for k, v in old.items() if k not in taskdef.READ_ONLY}
    after = {k: v for k, v in new.items() if k not in taskdef.READ_ONLY}
    after["containerDefinitions"][0]["portMappings"][0]["hostPort"] = 80
    assert after == same, "everything but the host port is unchanged"
    assert {"key": TAG_KEY, "value": "ghost-ha"} in new_resp["tags"]

    arns = ecs.list_tasks(cluster="ghost-ha", serviceName="ghost")["taskArns"]
    tasks = ecs.describe_tasks(cluster="ghost-ha", tasks=arns)["tasks"]
    assert len(tasks) == 6 and {t["taskDefinitionArn"] for t in tasks} == {new["taskDefinitionArn"]}
    assert sorted(Counter(t["containerInstanceArn"] for t in tasks).values()) == [3, 3]
    ports = {(t["containerInstanceArn"], t["containers"][0]["networkBindings"][0]["hostPort"]) for t in tasks}
    assert len(ports) == 6 and all(32768 <= p <= 60999 for _, p in ports)

    th = elbv2.describe_target_health(TargetGroupArn=box.seeded.target_group_arn)["TargetHealthDescriptions"]
    live = [t for t in th if t["TargetHealth"]["State"] != "draining"]  # an earlier service's targets may drain
    assert len(live) == 6 and {t["TargetHealth"]["State"] for t in live} == {"healthy"}
    assert {(t["Target"]["Id"], t["Target"]["Port"]) for t in live} == {(ci_instance[ci], port) for ci, port in ports}

    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [box.seeded.instance_sg]}])
    ours = [r for r in rules["SecurityGroupRules"] if r.get("FromPort") == 32768]
    assert len(ours) == 1
    assert ours[0]["ToPort"] == 65535 and ours[0]["ReferencedGroupInfo"]["GroupId"] == box.seeded.alb_sg


def test_up_builds_the_story_from_the_seed(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = up(box, cfg)
    assert ran.exit_code == 0, ran.err + ran.out
    assert_story_done(box)
    assert "HEALTHY" in ran.out and "ghost-elb" in ran.out
    assert "(service ghost) has reached a steady state." in ran.out, "service events are shown while waiting"
    assert "(service ghost) has started 6 tasks" in ran.out, "from the start of this run's deployment"


def test_second_up_changes_nothing(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert up(box, cfg).exit_code == 0
    start = len(box.requests)
    again = up(box, cfg)
    assert again.exit_code == 0, again.err
    assert "nothing to change" in again.out
    assert "  event: " not in again.out, "old service events are not replayed as news"
    assert mutating(box.requests[start:]) == []


def test_dry_run_changes_nothing_and_shows_the_plan(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    assert ran.exit_code == 0, ran.err
    assert mutating(box.requests[start:]) == []
    for needle in ("create-cluster", "create-auto-scaling-group", "register-task-definition", "create-service"):
        assert needle in ran.out
    assert "host port 80 → 0" in ran.out
    assert box.client("ecs").describe_clusters(clusters=["ghost-ha"])["clusters"] == []


def test_up_asks_before_changing_and_no_means_no(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "up"], answer="n")
    assert ran.exit_code == 1 and "nothing was changed" in ran.err
    assert mutating(box.requests[start:]) == []


def test_up_as_a_user_runs_it_through_the_console_script(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("ghostha")
    start = subprocess.run(
        [str(exe), "sandbox", "start", "--detach", "--scale", "60"], cwd=tmp_path, capture_output=True, text=True
    )
    assert start.returncode == 0, start.stderr
    try:
        ran = subprocess.run(
            [str(exe), "--config", "ghostha-sandbox.yaml", "up", "--yes"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stderr + ran.stdout
        assert "HEALTHY" in ran.stdout and "Traceback" not in ran.stderr
        status = subprocess.run(
            [str(exe), "--config", "ghostha-sandbox.yaml", "status", "--json"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        report = json.loads(status.stdout)
        assert status.returncode == 0 and report["healthy"] is True and len(report["tasks"]) == 6
    finally:
        subprocess.run([str(exe), "sandbox", "stop"], cwd=tmp_path, capture_output=True)


# --- preflight: one line each, exit 2, nothing created -----------------------------------------------------


def _tg_ip(box: Sandbox) -> dict[str, Any]:
    assert box.seeded is not None
    elbv2 = box.client("elbv2")
    tg = elbv2.create_target_group(Name="ghost-ip", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id, TargetType="ip")[
        "TargetGroups"
    ][0]
    elbv2.create_rule(
        ListenerArn=box.seeded.listener_arn,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/ip/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    return {"load_balancer.target_group": "ghost-ip"}


def _tg_unattached(box: Sandbox) -> dict[str, Any]:
    assert box.seeded is not None
    box.client("elbv2").create_target_group(Name="ghost-lonely", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id)
    return {"load_balancer.target_group": "ghost-lonely"}


def _tg_other_vpc(box: Sandbox) -> dict[str, Any]:
    other = box.client("ec2").create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    box.client("elbv2").create_target_group(Name="ghost-far", Protocol="HTTP", Port=80, VpcId=other)
    return {"load_balancer.target_group": "ghost-far"}


def _awsvpc_family(box: Sandbox) -> dict[str, Any]:
    box.client("ecs").register_task_definition(
        family="ghost-vpc",
        networkMode="awsvpc",
        containerDefinitions=[
            {"name": "ghost", "image": "ghost:5", "memory": 512, "portMappings": [{"containerPort": 2368}]}
        ],
    )
    return {"task.family": "ghost-vpc"}


def _untagged_cluster(box: Sandbox) -> dict[str, Any]:
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    return {}


def _alb_one_az(box: Sandbox) -> dict[str, Any]:
    assert box.seeded is not None
    ec2 = box.client("ec2")
    extra = ec2.create_subnet(VpcId=box.seeded.vpc_id, CidrBlock="10.0.3.0/24", AvailabilityZone="us-east-1c")
    return {"network.subnets": [box.seeded.subnets[0], extra["Subnet"]["SubnetId"]]}


def _foreign_service(box: Sandbox) -> dict[str, Any]:
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha", tags=[{"key": TAG_KEY, "value": "ghost-ha"}])
    ecs.create_service(cluster="ghost-ha", serviceName="ghost", taskDefinition="ghost", desiredCount=0)
    return {}


def _attached_tg(box: Sandbox, name: str, priority: int, **kw: Any) -> dict[str, Any]:
    assert box.seeded is not None
    elbv2 = box.client("elbv2")
    tg = elbv2.create_target_group(Name=name, Port=80, VpcId=box.seeded.vpc_id, TargetType="instance", **kw)
    elbv2.create_rule(
        ListenerArn=box.seeded.listener_arn,
        Priority=priority,
        Conditions=[{"Field": "path-pattern", "Values": [f"/{name}/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}],
    )
    return {"load_balancer.target_group": name}


def _subnets_two_vpcs(box: Sandbox) -> dict[str, Any]:
    assert box.seeded is not None
    ec2 = box.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    far = ec2.create_subnet(VpcId=other, CidrBlock="10.8.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    return {"network.subnets": [box.seeded.subnets[0], far]}


def _sg_other_vpc(box: Sandbox) -> dict[str, Any]:
    ec2 = box.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    sg = ec2.create_security_group(GroupName="far", Description="far", VpcId=other)["GroupId"]
    return {"network.security_group": sg}


PREFLIGHT = {
    "subnets in two VPCs": (_subnets_two_vpcs, "span several VPCs"),
    "security group in another VPC": (_sg_other_vpc, "use a security group of the subnets' VPC"),
    "target group speaking HTTPS": (
        lambda box: _attached_tg(box, "ghost-tls", 11, Protocol="HTTPS"),
        "uses HTTPS: Ghost's containers speak HTTP",
    ),
    "health checks on a fixed port": (
        lambda box: _attached_tg(box, "ghost-fixed", 12, Protocol="HTTP", HealthCheckPort="8080"),
        "checks health on port 8080",
    ),
    "target group of type ip": (_tg_ip, "has target type ip"),
    "target group on no listener": (_tg_unattached, "is not attached to a listener of ghost-elb"),
    "target group in another VPC": (_tg_other_vpc, "the subnets in vpc-"),
    "awsvpc family": (_awsvpc_family, "uses network mode awsvpc"),
    "missing container port": (lambda box: {"task.container_port": 8080}, "maps no container port 8080"),
    "missing container": (lambda box: {"task.container": "blog"}, "has no container 'blog'"),
    "missing subnet": (
        lambda box: {"network.subnets": ["subnet-0123456789abcdef0", box.seeded.subnets[1]]},
        "subnet subnet-0123456789abcdef0 not found",
    ),
    "missing security group": (lambda box: {"network.security_group": "sg-0123456789abcdef0"}, "not found"),
    "missing load balancer": (lambda box: {"load_balancer.name": "nope"}, "load balancer nope not found"),
    "ALB not in an AZ of the subnets": (_alb_one_az, "does not cover us-east-1c"),
    "missing family": (lambda box: {"task.family": "wordpress"}, "task family wordpress has no ACTIVE revision"),
    "missing instance profile": (lambda box: {"cluster.instance_profile": "nope"}, "instance profile nope not found"),
    "AMI that does not resolve": (lambda box: {"cluster.ami": "ssm:/no/such/parameter"}, "not found"),
    "untagged cluster of that name": (_untagged_cluster, "was not created by ghostha"),
    "service of another owner": (_foreign_service, "is not this stack's"),
}


@pytest.mark.parametrize("case", sorted(PREFLIGHT))
def test_preflight_failure_is_one_line_exit_2_and_creates_nothing(box: Sandbox, tmp_path: Path, case: str) -> None:
    make, needle = PREFLIGHT[case]
    overrides = make(box)
    cfg = write_config(box, tmp_path / "g.yaml", **overrides)
    start = len(box.requests)
    ran = up(box, cfg)
    assert ran.exit_code == 2, ran.out + ran.err
    assert needle in ran.err
    assert "Traceback" not in ran.err
    assert mutating(box.requests[start:]) == [], "nothing is created"


def test_one_az_is_a_warning_not_a_stop(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    ec2 = box.client("ec2")
    second = ec2.create_subnet(VpcId=box.seeded.vpc_id, CidrBlock="10.0.4.0/24", AvailabilityZone="us-east-1a")
    cfg = write_config(
        box, tmp_path / "g.yaml", **{"network.subnets": [box.seeded.subnets[0], second["Subnet"]["SubnetId"]]}
    )
    ran = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    assert ran.exit_code == 0
    assert "warning:" in ran.out and "all in us-east-1a" in ran.out


# --- failures while running ------------------------------------------------------------------------------------


def test_rollout_that_never_turns_healthy_fails_clearly(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    cfg = write_config(box, tmp_path / "g.yaml")
    revoked = False

    def sleep(seconds: float) -> None:
        nonlocal revoked
        rules = box.client("ec2").describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [box.seeded.instance_sg]}]  # type: ignore[union-attr]
        )["SecurityGroupRules"]
        ours = [r["SecurityGroupRuleId"] for r in rules if r.get("FromPort") == 32768 and not r["IsEgress"]]
        if ours and not revoked:  # behind ghostha's back, once the rule is in place
            box.client("ec2").revoke_security_group_ingress(
                GroupId=box.seeded.instance_sg,  # type: ignore[union-attr]
                SecurityGroupRuleIds=ours,
            )
            revoked = True
        box.advance(seconds)

    ran = up(box, cfg, sleep=sleep)
    assert revoked
    assert ran.exit_code == 1, ran.out + ran.err
    # whichever comes first: a target unhealthy past the grace period, or the circuit breaker failing the rollout
    assert ("unhealthy past the" in ran.err and "Target.Timeout" in ran.err) or (
        "deployment" in ran.err and "failed" in ran.err
    ), ran.err
    assert "Task failed ELB health checks" in ran.err, "the stopped tasks' reasons are shown"
    assert "Traceback" not in ran.err


def test_timeout_waiting_for_instances_exits_3_naming_causes(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = up(box, cfg, "--timeout", "10")
    assert ran.exit_code == 3, ran.out + ran.err
    assert "timed out waiting for 2 container instances" in ran.err
    assert "ECS_CLUSTER" in ran.err and "instance profile" in ran.err


def test_interrupted_up_finishes_on_rerun_without_duplicates(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = up(box, cfg, sleep=ctrl_c_on_sleep(box, 3))
    assert ran.exit_code == 130
    assert ran.err.strip() == "error: interrupted: run `ghostha up` again to resume where it stopped"
    again = up(box, cfg)
    assert again.exit_code == 0, again.err
    assert_story_done(box)
    auto = box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]
    assert len(auto) == 1
    assert len(box.client("ec2").describe_launch_templates()["LaunchTemplates"]) == 1
    revisions = box.client("ecs").list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]
    assert len(revisions) == 2, "one ghostha revision, not two"


def test_no_credentials_is_one_line(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", endpoint_url=None)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 2 and "no AWS credentials found" in ran.err and "Traceback" not in ran.err


def test_no_region_is_one_line(box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", region=None)
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 2 and "no AWS region set" in ran.err


def test_existing_service_is_updated_only_where_it_differs(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert up(box, cfg).exit_code == 0
    smaller = write_config(box, tmp_path / "g4.yaml", **{"service.desired_count": 4})
    start = len(box.requests)
    ran = up(box, smaller)
    assert ran.exit_code == 0, ran.err
    assert "desired count 6 → 4" in ran.out
    assert mutating(box.requests[start:]) == [("ecs", "UpdateService")]
    svc = box.client("ecs").describe_services(cluster="ghost-ha", services=["ghost"])["services"][0]
    assert svc["desiredCount"] == 4 and svc["runningCount"] == 4


def test_up_while_the_old_service_drains_says_to_wait(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert up(box, cfg).exit_code == 0
    # the scheduler drains each task's target for the deregistration delay (AWS's default 300 s), then stops it
    box.client("ecs").delete_service(cluster="ghost-ha", service="ghost", force=True)
    start = len(box.requests)
    ran = up(box, cfg)
    assert ran.exit_code == 2 and "is still DRAINING" in ran.err
    assert mutating(box.requests[start:]) == []
    box.advance(310)
    again = up(box, cfg)
    assert again.exit_code == 0, again.err
    assert_story_done(box)
