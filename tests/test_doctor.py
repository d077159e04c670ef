"""`ghostha doctor`: the high-availability audit, each check passing and failing against the sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ghostha import checks
from ghostha.sandbox import sim
from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    SPREAD,
    capacity,
    dynamic_revision,
    mutating,
    open_dynamic_ports,
    run_cli,
    service,
    settle,
    user_data,
    write_config,
)


def doctor(box: Sandbox, cfg: Path) -> tuple[int, dict[str, Any]]:
    ran = run_cli(box, ["--config", str(cfg), "doctor", "--json"])
    assert ran.exit_code in (0, 1), ran.err + ran.out
    assert "Traceback" not in ran.err
    return ran.exit_code, json.loads(ran.out)


def by_id(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    found: dict[str, dict[str, str]] = {}
    for c in report["checks"]:
        assert c["id"] not in found or c["verdict"] == found[c["id"]]["verdict"], c
        found.setdefault(c["id"], c)
    return found


def audit(box: Sandbox, tmp_path: Path, **overrides: Any) -> dict[str, dict[str, str]]:
    return by_id(doctor(box, write_config(box, tmp_path / "g.yaml", **overrides))[1])


def revision(box: Sandbox, host_port: int = 0, env: dict[str, str] | None = None, **container: Any) -> str:
    """A new revision of the seeded family: the seed's container with host port, env and fields changed."""
    ecs = box.client("ecs")
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    c = td["containerDefinitions"][0]
    c["portMappings"][0]["hostPort"] = host_port
    c["environment"] = [*c["environment"], *({"name": k, "value": v} for k, v in (env or {}).items())]
    extra = {k: td[k] for k in ("volumes",) if td.get(k)} | container.pop("_task", {})
    c.update(container)
    c = {k: v for k, v in c.items() if v is not None}
    return str(
        ecs.register_task_definition(family="ghost", networkMode="bridge", containerDefinitions=[c], **extra)[
            "taskDefinition"
        ]["taskDefinitionArn"]
    )


def hand_built(box: Sandbox, task_definition: str, rule: bool = False, **svc: Any) -> None:
    """The story's way, by hand: a cluster, two instances, a service; the dynamic-ports rule only if asked."""
    capacity(box)
    settle(box, 35)
    if rule:
        open_dynamic_ports(box)
    service(box, task_definition, **svc)
    settle(box, 60)


# --- the whole audit --------------------------------------------------------------------------------------------


def test_fresh_seed_before_up_gives_a_careful_engineers_verdicts(box: Sandbox, tmp_path: Path) -> None:
    code, report = doctor(box, write_config(box, tmp_path / "g.yaml"))
    found = by_id(report)
    assert code == 1 and report["verdict"] == "FAIL"
    fails = {i for i, c in found.items() if c["verdict"] == "fail"}
    assert fails == {"ghost.database"}, "six SQLite blogs is the one blocker of the seed"
    warns = {i for i, c in found.items() if c["verdict"] == "warn"}
    assert warns == {
        "target-group.deregistration-delay",  # AWS's default 300 s
        "capacity.deploy",  # 2 x t3.small hold 6, a surge to 12 does not fit
        "ghost.storage",
        "ghost.clustering",
    }
    assert "not deployed: `up` adds TCP 32768-65535" in found["network.ingress"]["evidence"]
    assert found["capacity.fit"]["evidence"].startswith("6 tasks desired, 6 fit: 2 instances x 3 (1900 MiB / 512")
    assert found["ghost.database"]["fix"].startswith("with SQLite each of the 6 tasks is a separate blog")
    assert report["expected_recovery"] == {"healthy_within_seconds": 50, "draining_seconds": 300}
    assert all(set(c) == {"id", "area", "verdict", "title", "evidence", "fix"} for c in report["checks"])
    assert all(c["fix"] == "" for c in report["checks"] if c["verdict"] == "pass")
    assert all(c["fix"] for c in report["checks"] if c["verdict"] != "pass"), "every finding says how to fix it"


def test_after_up_the_deployed_stack_is_judged_from_what_runs(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    start = len(box.requests)
    code, report = doctor(box, cfg)
    assert mutating(box.requests[start:]) == [], "doctor only reads"
    found = by_id(report)
    assert code == 1 and {i for i, c in found.items() if c["verdict"] == "fail"} == {"ghost.database"}
    assert found["network.ingress"]["verdict"] == "pass"
    assert "on the agent's dynamic range 32768-60999" in found["network.ingress"]["evidence"]
    assert found["placement.spread"]["verdict"] == "pass" and "6 tasks" in found["placement.spread"]["evidence"]
    assert "by registered resources" in found["capacity.fit"]["evidence"]
    assert found["instances.cluster"]["evidence"] == "2 container instances registered in ghost-ha"
    assert found["instances.imds"]["evidence"] == "2 running instances: IMDSv2 required, hop limit 1", "up's template"
    assert found["service.role"]["evidence"] == "service ghost runs with the service-linked role AWSServiceRoleForECS"


def test_table_groups_by_area_and_states_the_recovery_bound(box: Sandbox, tmp_path: Path) -> None:
    ran = run_cli(box, ["--config", str(write_config(box, tmp_path / "g.yaml")), "doctor"])
    assert ran.exit_code == 1
    positions = [("\n" + ran.out).index(f"\n{area} ") for area in ("network", "target group", "capacity", "ghost")]
    assert positions == sorted(positions), "areas in order"
    assert "doctor ghost-ha: FAIL (1 fail, 4 warn," in ran.out
    assert "healthy within 50 s (placement 10 s + start 20 s + 2 healthy checks x 10 s = 50 s)" in ran.out
    assert "drains for 300 s" in ran.out


def test_only_warnings_exit_0(box: Sandbox, tmp_path: Path) -> None:
    revision(box, env={"database__client": "mysql", "database__connection__host": "db.internal"})
    code, report = doctor(box, write_config(box, tmp_path / "g.yaml"))
    assert (code, report["verdict"]) == (0, "WARN")
    assert by_id(report)["ghost.database"]["evidence"] == "database__client=mysql, host db.internal"


def test_config_error_exits_2(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", **{"service.desired_count": "six"})
    ran = run_cli(box, ["--config", str(cfg), "doctor"])
    assert ran.exit_code == 2 and "service.desired_count" in ran.err and "Traceback" not in ran.err


# --- the story's hand-built stack -----------------------------------------------------------------------------


def test_story_static_port_80_is_diagnosed_with_the_fix(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    hand_built(box, box.seeded.task_definition_arn, breaker=False, grace=0)
    found = audit(box, tmp_path)
    fit = found["capacity.fit"]
    assert fit["verdict"] == "fail"
    assert fit["evidence"].startswith("6 tasks desired, 2 fit: 2 instances x 1 (a static host port allows one task")
    assert fit["fix"] == "use host port 0 (dynamic; `ghostha up` registers such a revision)"
    assert found["network.ingress"]["verdict"] == "pass", "port 80 is admitted from the ALB in the story"
    assert found["service.circuit-breaker"]["verdict"] == "warn"
    assert found["service.grace-period"]["verdict"] == "warn"
    assert "--health-check-grace-period-seconds 120" in found["service.grace-period"]["fix"]


def test_story_host_port_0_without_the_rule_is_diagnosed_with_the_exact_command(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    hand_built(box, dynamic_revision(box))
    found = audit(box, tmp_path)
    ingress = found["network.ingress"]
    assert ingress["verdict"] == "fail"
    seeded = box.seeded
    assert ingress["evidence"] == (
        f"{seeded.instance_sg} does not admit {seeded.alb_sg} on the agent's dynamic range 32768-60999: every "
        "target times out (Target.Timeout)"
    )
    assert ingress["fix"] == (
        f"aws ec2 authorize-security-group-ingress --group-id {seeded.instance_sg} --ip-permissions "
        f"'{{IpProtocol=tcp,FromPort=32768,ToPort=65535,UserIdGroupPairs=[{{GroupId={seeded.alb_sg}}}]}}'"
    )
    # the command's rule is what makes the targets healthy
    open_dynamic_ports(box)
    assert audit(box, tmp_path)["network.ingress"]["verdict"] == "pass"


# --- network --------------------------------------------------------------------------------------------------


def _subnet(box: Sandbox, az: str, cidr: str) -> str:
    assert box.seeded is not None
    sn = box.client("ec2").create_subnet(VpcId=box.seeded.vpc_id, CidrBlock=cidr, AvailabilityZone=az)
    return str(sn["Subnet"]["SubnetId"])


def test_network_failures(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    one_az = [box.seeded.subnets[0], _subnet(box, "us-east-1a", "10.0.4.0/24")]
    found = audit(box, tmp_path, **{"network.subnets": one_az})
    assert found["network.azs"]["verdict"] == "warn" and "all in us-east-1a" in found["network.azs"]["evidence"]
    uncovered = [box.seeded.subnets[0], _subnet(box, "us-east-1c", "10.0.5.0/24")]
    found = audit(box, tmp_path, **{"network.subnets": uncovered})
    assert found["network.alb-azs"]["verdict"] == "fail"
    assert "does not cover us-east-1c" in found["network.alb-azs"]["evidence"]
    found = audit(box, tmp_path, **{"network.subnets": ["subnet-0123456789abcdef0", box.seeded.subnets[1]]})
    assert found["network.subnets"]["verdict"] == "fail"
    found = audit(box, tmp_path, **{"network.security_group": "sg-0123456789abcdef0"})
    assert found["network.security-group"]["verdict"] == "fail"
    found = audit(box, tmp_path, **{"load_balancer.name": "nope"})
    assert found["network.load-balancer"]["verdict"] == "fail"
    ec2 = box.client("ec2")
    other = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    far = ec2.create_subnet(VpcId=other, CidrBlock="10.8.1.0/24", AvailabilityZone="us-east-1b")["Subnet"]["SubnetId"]
    found = audit(box, tmp_path, **{"network.subnets": [box.seeded.subnets[0], far]})
    assert found["network.vpc"]["verdict"] == "fail" and "span several VPCs" in found["network.vpc"]["evidence"]
    box.client("elbv2").create_target_group(Name="tg-far", Protocol="HTTP", Port=80, VpcId=other)
    found = audit(box, tmp_path, **{"load_balancer.target_group": "tg-far"})
    assert found["target-group.vpc"]["verdict"] == "fail"


# --- target group ---------------------------------------------------------------------------------------------


def _tg(box: Sandbox, name: str, priority: int, **kw: Any) -> dict[str, Any]:
    assert box.seeded is not None
    elbv2 = box.client("elbv2")
    kw = {"Protocol": "HTTP", "Port": 80, "VpcId": box.seeded.vpc_id, "TargetType": "instance", **kw}
    tg = elbv2.create_target_group(Name=name, **kw)["TargetGroups"][0]
    elbv2.create_rule(
        ListenerArn=box.seeded.listener_arn,
        Priority=priority,
        Conditions=[{"Field": "path-pattern", "Values": [f"/{name}/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    return {"load_balancer.target_group": name}


def test_target_group_shape_failures(box: Sandbox, tmp_path: Path) -> None:
    found = audit(box, tmp_path, **_tg(box, "tg-ip", 10, TargetType="ip"))
    assert found["target-group.type"]["verdict"] == "fail"
    found = audit(box, tmp_path, **_tg(box, "tg-fixed", 11, HealthCheckPort="8080"))
    assert found["target-group.health-check-port"]["verdict"] == "fail"
    found = audit(box, tmp_path, **_tg(box, "tg-tls", 12, Protocol="HTTPS"))
    assert found["target-group.protocol"]["verdict"] == "fail"
    assert box.seeded is not None
    box.client("elbv2").create_target_group(Name="tg-lonely", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id)
    found = audit(box, tmp_path, **{"load_balancer.target_group": "tg-lonely"})
    assert found["target-group.listener"]["verdict"] == "fail"
    assert audit(box, tmp_path, **{"load_balancer.target_group": "nope"})["target-group.exists"]["verdict"] == "fail"


def test_health_check_that_ghost_fails_and_slow_defaults(box: Sandbox, tmp_path: Path) -> None:
    # AWS's defaults: path /, matcher 200, 5 x 30 s
    found = audit(box, tmp_path, **_tg(box, "tg-defaults", 13))
    assert found["target-group.health-check"]["verdict"] == "warn"
    assert found["target-group.health-timing"]["verdict"] == "warn"
    assert "5 x 30 s to turn healthy" in found["target-group.health-timing"]["evidence"]
    _, report = doctor(box, write_config(box, tmp_path / "g.yaml", **_tg(box, "tg-defaults2", 14)))
    assert report["expected_recovery"] == {"healthy_within_seconds": 180, "draining_seconds": 300}
    # an https url: Ghost answers plain-HTTP checks with 301, which matcher 200 rejects
    revision(box, env={"url": "https://blog.example.com"})
    found = audit(box, tmp_path, **_tg(box, "tg-strict", 15, HealthCheckPath="/ghost/api/admin/site/"))
    check = found["target-group.health-check"]
    assert check["verdict"] == "fail" and "does not accept 301" in check["evidence"]
    assert check["fix"].endswith("--matcher HttpCode=200-399")
    assert audit(box, tmp_path)["target-group.health-check"]["verdict"] == "pass", "the seed's 200-399 accepts it"


def test_deregistration_delay_passes_at_30_seconds(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    box.client("elbv2").modify_target_group_attributes(
        TargetGroupArn=box.seeded.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
    )
    _, report = doctor(box, write_config(box, tmp_path / "g.yaml"))
    assert by_id(report)["target-group.deregistration-delay"]["verdict"] == "pass"
    assert report["expected_recovery"]["draining_seconds"] == 30


# --- capacity -------------------------------------------------------------------------------------------------


def test_capacity_arithmetic(box: Sandbox, tmp_path: Path) -> None:
    found = audit(box, tmp_path, **{"service.desired_count": 7})
    assert found["capacity.fit"]["verdict"] == "fail"
    assert found["capacity.fit"]["evidence"].startswith("7 tasks desired, 6 fit")
    found = audit(box, tmp_path, **{"service.desired_count": 4, "service.maximum_percent": 150})
    assert (
        found["capacity.deploy"]["verdict"] == "pass"
        and "surge to 6 tasks fits" in found["capacity.deploy"]["evidence"]
    )
    found = audit(box, tmp_path, **{"cluster.instance_count": 1, "service.desired_count": 2})
    assert found["capacity.fit"]["verdict"] == "pass"
    assert found["capacity.instance-loss"]["verdict"] == "fail"
    found = audit(box, tmp_path, **{"cluster.instance_count": 3, "service.desired_count": 6})
    assert found["capacity.instance-loss"]["verdict"] == "pass"
    found = audit(box, tmp_path, **{"cluster.instance_type": "t9.nonexistent"})
    assert found["capacity.instance-type"]["verdict"] == "fail"


def test_deploys_blocked_at_100_100_fail(box: Sandbox, tmp_path: Path) -> None:
    config = {"maximumPercent": 100, "minimumHealthyPercent": 100}
    hand_built(box, dynamic_revision(box), rule=True, deploymentConfiguration=config)
    check = audit(box, tmp_path)["capacity.deploy"]
    assert check["verdict"] == "fail" and "deploys and drains are blocked" in check["evidence"]


def test_capacity_estimate_agrees_with_the_sandbox_agent() -> None:
    """The sandbox registers what doctor assumes the agent registers (before instances exist)."""
    info = {"VCpuInfo": {"DefaultVCpus": 2}, "MemoryInfo": {"SizeInMiB": 2048}}
    est = checks.registered_estimate(info)
    assert (est.cpu, est.memory) == sim.instance_resources("t3.small") == (2048, 1900)


def test_capacity_blocks_up_in_preflight(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", **{"service.desired_count": 7})
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2 and "7 tasks desired, 6 fit" in ran.err
    assert mutating(box.requests[start:]) == []
    assert "2048 CPU units, 1900 MiB each (as ECS registers a t3.small)" in ran.err, "before any instance runs"


def test_capacity_counts_what_the_running_instances_registered(box: Sandbox, deployed: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", **{"service.desired_count": 8})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2 and "8 tasks desired, 6 fit" in ran.err
    assert "MiB each (as the running t3.small instances registered them)" in ran.err
    # a larger type replaces them: their registration says nothing of the new instances
    larger = write_config(box, tmp_path / "l.yaml", **{"service.desired_count": 8, "cluster.instance_type": "t3.large"})
    dry = run_cli(box, ["--config", str(larger), "up", "--dry-run"])
    assert dry.exit_code == 0, dry.err
    assert "replace-instances" in dry.out


# --- placement and service ------------------------------------------------------------------------------------


def test_binpack_fails_and_packed_tasks_fail_the_spread(box: Sandbox, tmp_path: Path) -> None:
    hand_built(
        box, dynamic_revision(box), rule=True, count=3, placementStrategy=[{"type": "binpack", "field": "memory"}]
    )
    found = audit(box, tmp_path)
    assert found["placement.strategy"]["verdict"] == "fail"
    assert "binpack first" in found["placement.strategy"]["evidence"]
    spread = found["placement.spread"]
    assert spread["verdict"] == "fail" and "3 tasks" in spread["evidence"], spread


def test_spread_over_instances_only_warns(box: Sandbox, tmp_path: Path) -> None:
    hand_built(box, dynamic_revision(box), rule=True, placementStrategy=[SPREAD[1]])
    found = audit(box, tmp_path)
    assert found["placement.strategy"]["verdict"] == "warn"
    assert found["placement.spread"]["verdict"] == "pass"
    assert found["service.circuit-breaker"]["verdict"] == "pass"
    assert found["service.grace-period"]["verdict"] == "pass"


def test_az_rebalancing_disabled_warns_with_the_fix(box: Sandbox, tmp_path: Path) -> None:
    """ECS developer guide, "Balancing an Amazon ECS service across Availability Zones" (a service created with it
    DISABLED keeps its tasks in the AZ they moved to); enabled, it passes."""
    hand_built(box, dynamic_revision(box), rule=True, availabilityZoneRebalancing="DISABLED")
    found = audit(box, tmp_path)
    check = found["service.az-rebalancing"]
    assert check["verdict"] == "warn" and "AZ rebalancing DISABLED" in check["evidence"]
    assert "--availability-zone-rebalancing ENABLED" in check["fix"]
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", availabilityZoneRebalancing="ENABLED")
    assert audit(box, tmp_path)["service.az-rebalancing"]["verdict"] == "pass"


def test_service_role(box: Sandbox, tmp_path: Path) -> None:
    found = audit(box, tmp_path, **{"service.role": "ecsServiceRole"})
    assert found["service.role"]["verdict"] == "fail"
    assert found["service.role"]["evidence"] == "service.role ecsServiceRole does not exist"
    iam = box.client("iam")
    trust = json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    )
    iam.create_role(RoleName="ecsServiceRole", AssumeRolePolicyDocument=trust)
    assert audit(box, tmp_path, **{"service.role": "ecsServiceRole"})["service.role"]["verdict"] == "pass"
    iam.create_role(
        RoleName="AWSServiceRoleForECS", Path="/aws-service-role/ecs.amazonaws.com/", AssumeRolePolicyDocument=trust
    )
    found = audit(box, tmp_path, **{"service.role": "ecsServiceRole"})
    assert found["service.role"]["verdict"] == "warn" and found["service.role"]["fix"] == "set service.role: null"
    assert audit(box, tmp_path)["service.role"]["verdict"] == "pass"


def test_config_grace_shorter_than_the_checks_warns(box: Sandbox, tmp_path: Path) -> None:
    found = audit(box, tmp_path, **{"service.health_check_grace_seconds": 10})
    assert found["service.grace-period"]["verdict"] == "warn"


# --- instances ------------------------------------------------------------------------------------------------


def test_amazon_linux_2_ami_warns(box: Sandbox, tmp_path: Path) -> None:
    images = box.client("ec2").describe_images(Filters=[{"Name": "name", "Values": ["amzn2-ami-ecs-hvm-*"]}])
    al2 = images["Images"][0]["ImageId"]
    found = audit(box, tmp_path, **{"cluster.ami": al2})
    assert found["instances.ami"]["verdict"] == "warn"
    assert "end of life on 2026-06-30" in found["instances.ami"]["evidence"]
    assert audit(box, tmp_path)["instances.ami"]["verdict"] == "pass"


@pytest.mark.parametrize("hops", [1, 2])
def test_imds_hop_limit_1_passes_2_warns(box: Sandbox, tmp_path: Path, hops: int) -> None:
    assert box.seeded is not None
    ec2, auto = box.client("ec2"), box.client("autoscaling")
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    data = {
        "ImageId": "ami-12c6146b",
        "InstanceType": "t3.small",
        "UserData": user_data("ghost-ha"),
        "IamInstanceProfile": {"Name": "ecsInstanceRole"},
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": hops},
    }
    ec2.create_launch_template(LaunchTemplateName="strict", LaunchTemplateData=data)
    auto.create_auto_scaling_group(
        AutoScalingGroupName="strict",
        LaunchTemplate={"LaunchTemplateName": "strict"},
        MinSize=2,
        MaxSize=2,
        DesiredCapacity=2,
        VPCZoneIdentifier=",".join(box.seeded.subnets),
    )
    settle(box, 35)
    check = audit(box, tmp_path)["instances.imds"]
    if hops == 1:
        assert check["verdict"] == "pass"
        assert check["evidence"] == "2 running instances: IMDSv2 required, hop limit 1"
    else:
        assert (
            check["verdict"] == "warn"
            and "hop limit above 1 lets bridge-mode containers reach IMDS" in check["evidence"]
        )


def test_imds_v1_warns(box: Sandbox, tmp_path: Path) -> None:
    capacity(box)  # the console's way: no metadata options, IMDSv1 allowed
    settle(box, 35)
    found = audit(box, tmp_path)
    assert found["instances.imds"]["verdict"] == "warn" and "IMDSv1 allowed" in found["instances.imds"]["evidence"]


def _profile(box: Sandbox, name: str, service: str, policy: bool) -> None:
    iam = box.client("iam")
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
    if policy:
        arn = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)
    iam.create_instance_profile(InstanceProfileName=name)
    iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=name)


def test_instance_role_without_the_ecs_policy_or_trust_fails(box: Sandbox, tmp_path: Path) -> None:
    _profile(box, "bare", "ec2.amazonaws.com", policy=False)
    check = audit(box, tmp_path, **{"cluster.instance_profile": "bare"})["instances.profile"]
    assert check["verdict"] == "fail" and "role bare holds no AmazonEC2ContainerServiceforEC2Role" in check["evidence"]
    assert check["fix"].startswith("aws iam attach-role-policy --role-name bare --policy-arn arn:aws:iam::aws:")
    _profile(box, "lambdaish", "lambda.amazonaws.com", policy=True)
    check = audit(box, tmp_path, **{"cluster.instance_profile": "lambdaish"})["instances.profile"]
    assert check["verdict"] == "fail" and "does not trust ec2.amazonaws.com" in check["evidence"]
    assert audit(box, tmp_path, **{"cluster.instance_profile": "nope"})["instances.profile"]["verdict"] == "fail"


def test_launch_template_without_ecs_cluster_fails(box: Sandbox, tmp_path: Path) -> None:
    data = {"ImageId": "ami-12c6146b", "InstanceType": "t3.small", "UserData": user_data(None)}
    box.client("ec2").create_launch_template(LaunchTemplateName="ghost-ha-ecs", LaunchTemplateData=data)
    check = audit(box, tmp_path)["instances.cluster"]
    assert check["verdict"] == "fail" and "does not set ECS_CLUSTER=ghost-ha" in check["evidence"]


# --- Ghost ----------------------------------------------------------------------------------------------------


def test_ghost_shared_site_passes(box: Sandbox, tmp_path: Path) -> None:
    revision(
        box,
        env={"database__client": "mysql", "database__connection__host": "db", "storage__active": "s3"},
    )
    found = audit(box, tmp_path)
    for cid in ("ghost.database", "ghost.storage", "ghost.clustering", "ghost.url", "ghost.image", "ghost.memory"):
        assert found[cid]["verdict"] == "pass", found[cid]


def test_ghost_efs_content_passes_storage(box: Sandbox, tmp_path: Path) -> None:
    volume = {"name": "content", "efsVolumeConfiguration": {"fileSystemId": "fs-12345678"}}
    mount = [{"sourceVolume": "content", "containerPath": "/var/lib/ghost/content"}]
    revision(box, mountPoints=mount, _task={"volumes": [volume]})
    check = audit(box, tmp_path)["ghost.storage"]
    assert check["verdict"] == "pass" and check["evidence"] == "EFS volume at /var/lib/ghost/content"


def test_ghost_findings(box: Sandbox, tmp_path: Path) -> None:
    revision(box, env={"url": "http://localhost:2368"}, image="ghost:latest")
    found = audit(box, tmp_path)
    assert found["ghost.url"]["verdict"] == "warn"
    assert found["ghost.image"]["verdict"] == "warn" and "ghost:latest" in found["ghost.image"]["evidence"]
    found = audit(box, tmp_path, **{"service.desired_count": 1})
    assert found["ghost.database"]["verdict"] == "warn", "one SQLite task is one blog: a warning, not a failure"
    assert found["ghost.clustering"]["verdict"] == "pass"
    revision(box, image="ghost", memoryReservation=None)
    found = audit(box, tmp_path)
    assert found["ghost.image"]["verdict"] == "warn"
    assert found["ghost.memory"]["verdict"] == "warn"


# --- preflight is the blocking subset -----------------------------------------------------------------------


CASES: dict[str, Callable[[Sandbox], dict[str, Any]]] = {
    "seed": lambda box: {},
    "static": lambda box: {"service.desired_count": 7},
    "https health": lambda box: _tg(box, "tg-strict", 16, HealthCheckPort="8080"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_preflight_is_the_blocking_subset_of_doctor(box: Sandbox, tmp_path: Path, case: str) -> None:
    from ghostha.aws import Aws
    from ghostha.config import load
    from ghostha.observe import observe

    cfg = load(str(write_config(box, tmp_path / "g.yaml", **CASES[case](box))))
    aws = Aws(endpoint_url=box.endpoint, region="us-east-1")
    problems, warnings = checks.preflight(cfg, observe(aws, cfg, "up"))
    report = checks.audit(cfg, observe(aws, cfg, "doctor"))
    blocking = [c.message for c in report.checks if c.gate == "block" and c.verdict == "fail"]
    assert problems == blocking
    shown = {c.message for c in report.checks if c.gate and c.verdict != "pass"}
    assert set(warnings) <= shown


def test_iam_reads_aws_refuses_are_reported_not_raised(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botocore.exceptions import ClientError

    from ghostha import observe

    def refused(*_args: Any) -> Any:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "GetRole")

    monkeypatch.setattr(observe, "_role", refused)
    monkeypatch.setattr(observe, "_role_policies", refused)
    found = audit(box, tmp_path)
    assert found["service.role"]["verdict"] == "warn"
    assert "could not read iam:GetRole AWSServiceRoleForECS: AccessDenied" in found["service.role"]["evidence"]
    assert found["instances.profile"]["verdict"] == "warn"
    assert "iam:ListAttachedRolePolicies ecsInstanceRole: AccessDenied" in found["instances.profile"]["evidence"]
