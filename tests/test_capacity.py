"""`up` and `teardown` with the Auto Scaling behaviour AWS has (issue #8): instances replaced one at a time
when the launch template changes, failed launches reported at once with their cause, a group being deleted,
busy groups retried, the AMI from SSM at launch, and teardown touching only its own instances."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ghostha.aws import Aws
from ghostha.sandbox.server import Sandbox
from tests.conftest import container_instances, describe_service, mutating, run_cli, targets, user_data, write_config


def up(box: Sandbox, cfg: Path, *extra: str, **kw: Any) -> Any:
    return run_cli(box, ["--config", str(cfg), "up", "--yes", *extra], **kw)


def group_instances(box: Sandbox, name: str = "ghost-ha-ecs") -> list[dict[str, Any]]:
    groups = box.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    return list(groups["AutoScalingGroups"][0]["Instances"]) if groups["AutoScalingGroups"] else []


def ec2_instances(box: Sandbox, ids: list[str]) -> list[dict[str, Any]]:
    found = box.client("ec2").describe_instances(InstanceIds=ids)["Reservations"]
    return [i for r in found for i in r["Instances"]]


def healthy_targets(box: Sandbox) -> int:
    return sum(1 for t in targets(box) if t["TargetHealth"]["State"] == "healthy")


class HealthyWatch:
    """The runtime's sleep: lets simulated time pass, keeping the fewest healthy targets seen at any poll."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.lowest = healthy_targets(box)

    def __call__(self, seconds: float) -> None:
        self.lowest = min(self.lowest, healthy_targets(self.box))
        self.box.advance(seconds)


def test_instance_type_change_replaces_instances_one_at_a_time_keeping_the_service(
    box: Sandbox, deployed: Path, tmp_path: Path
) -> None:
    """ECS developer guide, "Container instance draining": tasks of a DRAINING instance are replaced within the
    service's minimum healthy / maximum percent, so the blog keeps at least 3 of 6 healthy targets throughout."""
    before = {i["InstanceId"] for i in group_instances(box)}
    cfg = write_config(box, tmp_path / "medium.yaml", **{"cluster.instance_type": "t3.medium"})
    watch = HealthyWatch(box)
    ran = up(box, cfg, sleep=watch)
    assert ran.exit_code == 0, ran.out + ran.err
    assert "instance type t3.small → t3.medium" in ran.out and "replace-instances" in ran.out
    after = group_instances(box)
    assert len(after) == 2 and not {i["InstanceId"] for i in after} & before, "both old instances replaced"
    assert {i["InstanceType"] for i in ec2_instances(box, [i["InstanceId"] for i in after])} == {"t3.medium"}
    assert len(container_instances(box)) == 2
    assert watch.lowest >= 3, f"healthy targets fell to {watch.lowest} (minimum healthy is 3 of 6)"
    svc = describe_service(box)
    assert svc["runningCount"] == 6
    groups = box.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["ghost-ha-ecs"])
    g = groups["AutoScalingGroups"][0]
    assert (g["MinSize"], g["MaxSize"], g["DesiredCapacity"]) == (2, 2, 2)
    again = up(box, cfg)
    assert again.exit_code == 0 and "nothing to change" in again.out


def _hook(monkeypatch: pytest.MonkeyPatch, service: str, operation: str, action: Callable[[], None]) -> None:
    """Run `action` just before ghostha's `operation` call goes out (as if someone acted at that moment)."""
    original = Aws.client

    def client(self: Aws, name: str) -> Any:
        c = original(self, name)
        if name == service and not getattr(c, "_test_hooked", False):
            c.meta.events.register(f"before-call.{service}.{operation}", lambda **_: action())
            c._test_hooked = True
        return c

    monkeypatch.setattr(Aws, "client", client)


def test_a_failed_launch_fails_the_wait_at_once_with_its_cause(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EC2 Auto Scaling user guide, "Troubleshoot Amazon EC2 Auto Scaling: EC2 instance launch failures": the
    failed activity's StatusMessage ("Invalid IAM Instance Profile name. Launching EC2 instance failed.") is the
    only place the cause shows."""
    cfg = write_config(box, tmp_path / "g.yaml")
    iam = box.client("iam")

    def drop_profile() -> None:  # the profile goes after preflight saw it, before the group launches
        iam.remove_role_from_instance_profile(InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole")
        iam.delete_instance_profile(InstanceProfileName="ecsInstanceRole")

    _hook(monkeypatch, "autoscaling", "CreateAutoScalingGroup", drop_profile)
    start = box.clock.seconds()
    ran = up(box, cfg)
    assert ran.exit_code == 1, ran.out + ran.err
    assert "could not launch an instance" in ran.err and "Invalid IAM Instance Profile" in ran.err
    assert "cluster.instance_profile" in ran.err, "the hint names the key to fix"
    assert box.clock.seconds() - start < 60, "at once, not at the timeout"


def test_up_waits_for_a_group_being_deleted_then_makes_it_again(box: Sandbox, deployed: Path) -> None:
    """EC2 Auto Scaling API reference, "AutoScalingGroup": Status is "Delete in progress" while a group is being
    deleted; a group of that name cannot be created until it is gone."""
    box.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="ghost-ha-ecs", ForceDelete=True)
    dry = run_cli(box, ["--config", str(deployed), "up", "--dry-run"])
    assert "wait-asg-gone" in dry.out and "create-auto-scaling-group" in dry.out
    ran = up(box, deployed)
    assert ran.exit_code == 0, ran.out + ran.err
    assert len(group_instances(box)) == 2
    assert describe_service(box)["runningCount"] == 6 and healthy_targets(box) == 6


def test_teardown_only_waits_for_a_group_already_being_deleted(box: Sandbox, deployed: Path) -> None:
    box.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName="ghost-ha-ecs", ForceDelete=True)
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.out + ran.err
    assert "already being deleted" in ran.out
    assert ("autoscaling", "DeleteAutoScalingGroup") not in mutating(box.requests[start:])
    assert box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_a_busy_group_is_updated_once_its_activity_ends(box: Sandbox, deployed: Path, tmp_path: Path) -> None:
    """EC2 Auto Scaling API reference, "UpdateAutoScalingGroup", errors: ScalingActivityInProgress."""
    victim = group_instances(box)[0]["InstanceId"]
    box.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )
    cfg = write_config(box, tmp_path / "three.yaml", **{"cluster.instance_count": 3})
    start = len(box.requests)
    ran = up(box, cfg)
    assert ran.exit_code == 0, ran.out + ran.err
    updates = [r for r in box.requests[start:] if r == ("autoscaling", "UpdateAutoScalingGroup")]
    assert len(updates) >= 2, "refused while the replacement launched, then done"
    assert len(group_instances(box)) == 3


def test_the_ami_is_resolved_from_ssm_at_launch_and_a_new_release_is_no_config_change(
    box: Sandbox, tmp_path: Path
) -> None:
    """EC2 user guide, "Use a Systems Manager parameter instead of an AMI ID": a launch template's ImageId may be
    resolve:ssm:<parameter>, resolved at each launch."""
    ssm, ec2 = box.client("ssm"), box.client("ec2")
    official = ssm.get_parameter(Name="/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id")
    first = official["Parameter"]["Value"]
    other = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"] if i["ImageId"] != first)
    ssm.put_parameter(Name="/ghostha/test/ami", Value=first, Type="String")
    cfg = write_config(box, tmp_path / "g.yaml", **{"cluster.ami": "ssm:/ghostha/test/ami"})
    assert up(box, cfg).exit_code == 0
    data = ec2.describe_launch_template_versions(LaunchTemplateName="ghost-ha-ecs", Versions=["$Latest"])
    assert data["LaunchTemplateVersions"][0]["LaunchTemplateData"]["ImageId"] == "resolve:ssm:/ghostha/test/ami"
    ids = [i["InstanceId"] for i in group_instances(box)]
    assert {i["ImageId"] for i in ec2_instances(box, ids)} == {first}
    ssm.put_parameter(Name="/ghostha/test/ami", Value=other, Type="String", Overwrite=True)  # a new AMI release
    start = len(box.requests)
    again = up(box, cfg)
    assert again.exit_code == 0 and "nothing to change" in again.out
    assert mutating(box.requests[start:]) == []
    status = run_cli(box, ["--config", str(cfg), "status", "--json"])
    import json

    report = json.loads(status.out)
    assert {i["ami"] for i in report["instances"]} == {first}
    assert all(i["ami_outdated"] for i in report["instances"])


def test_teardown_leaves_the_cluster_and_instances_it_did_not_make(box: Sandbox, deployed: Path) -> None:
    assert box.seeded is not None
    ec2 = box.client("ec2")
    foreign = ec2.run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        InstanceType="t3.small",
        SubnetId=box.seeded.subnets[0],
        UserData=user_data("ghost-ha"),
        IamInstanceProfile={"Name": "ecsInstanceRole"},
    )["Instances"][0]["InstanceId"]
    box.advance(40)  # its agent registers it in ghost-ha
    assert foreign in {ci["ec2InstanceId"] for ci in container_instances(box)}
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.out + ran.err
    assert "instances ghostha did not launch" in ran.out
    assert box.client("ecs").describe_clusters(clusters=["ghost-ha"])["clusters"][0]["status"] == "ACTIVE"
    assert [ci["ec2InstanceId"] for ci in container_instances(box)] == [foreign], "only its own deregistered"
    assert box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_teardown_keeps_what_a_standalone_task_needs(box: Sandbox, deployed: Path) -> None:
    ecs = box.client("ecs")
    ecs.register_task_definition(family="cron", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 64}])
    ecs.run_task(cluster="ghost-ha", taskDefinition="cron")
    box.advance(20)
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.out + ran.err
    assert "ghostha did not start" in ran.out
    assert len(group_instances(box)) == 2, "the instances it runs on stay"
    assert ecs.describe_clusters(clusters=["ghost-ha"])["clusters"][0]["status"] == "ACTIVE"


def test_teardown_still_shows_and_waits_for_a_service_already_deleted(box: Sandbox, deployed: Path) -> None:
    """A deleted service leaves ListServices at once (ECS API reference, DeleteService) while its tasks drain: a
    teardown interrupted right after DeleteService must still find it (by name) and wait for it."""
    box.client("ecs").delete_service(cluster="ghost-ha", service="ghost", force=True)
    assert box.client("ecs").list_services(cluster="ghost-ha")["serviceArns"] == []
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.out + ran.err
    assert "wait-service-inactive service ghost" in ran.out
    row = next(line for line in ran.out.splitlines() if "ECS service" in line)
    assert "ghost" in row and "delete" in row
    assert box.client("ecs").describe_clusters(clusters=["ghost-ha"])["clusters"][0]["status"] == "INACTIVE"


def stack_rules(box: Sandbox) -> dict[str, list[str]]:
    """The ingress rules tagged with the stack, by security group."""
    rules = box.client("ec2").describe_security_group_rules(
        Filters=[{"Name": "tag:ghostha:stack", "Values": ["ghost-ha"]}]
    )["SecurityGroupRules"]
    by_group: dict[str, list[str]] = {}
    for r in rules:
        by_group.setdefault(r["GroupId"], []).append(r["SecurityGroupRuleId"])
    return by_group


def another_instance_group(box: Sandbox) -> str:
    """A second instance security group in the VPC, admitting the ALB on port 80 as the seeded one does."""
    assert box.seeded is not None
    ec2 = box.client("ec2")
    gid = str(ec2.create_security_group(GroupName="ghost-new", Description="new", VpcId=box.seeded.vpc_id)["GroupId"])
    port80 = {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": box.seeded.alb_sg}]}
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[port80])
    return gid


def test_a_new_security_group_moves_the_rule_once_the_instances_moved(
    box: Sandbox, deployed: Path, tmp_path: Path
) -> None:
    """The rule ghostha added to the old group is revoked after the instances left it, never before (the ALB
    keeps its way to every running task), and a second `up` has nothing to change."""
    assert box.seeded is not None
    old = box.seeded.instance_sg
    assert list(stack_rules(box)) == [old]
    new = another_instance_group(box)
    cfg = write_config(box, tmp_path / "new.yaml", **{"network.security_group": new})
    dry = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    lines = dry.out.splitlines()
    revoke = next(i for i, line in enumerate(lines) if "revoke-ingress" in line)
    assert old in lines[revoke] and "no longer network.security_group" in dry.out
    assert revoke > next(i for i, line in enumerate(lines) if "replace-instances" in line), "revoked last"
    watch = HealthyWatch(box)
    ran = up(box, cfg, sleep=watch)
    assert ran.exit_code == 0, ran.out + ran.err
    assert list(stack_rules(box)) == [new], "the old group keeps none of ghostha's rules"
    assert watch.lowest >= 3, f"healthy targets fell to {watch.lowest}"
    again = up(box, cfg)
    assert again.exit_code == 0 and "nothing to change" in again.out


def test_teardown_revokes_the_stacks_rule_in_a_group_the_config_no_longer_names(
    box: Sandbox, deployed: Path, tmp_path: Path
) -> None:
    assert box.seeded is not None
    cfg = write_config(box, tmp_path / "new.yaml", **{"network.security_group": another_instance_group(box)})
    ran = run_cli(box, ["--config", str(cfg), "teardown", "--yes"], sleep=box.advance)
    assert ran.exit_code == 0, ran.out + ran.err
    assert box.seeded.instance_sg in ran.out
    assert stack_rules(box) == {}, "teardown deletes every rule ghostha added, wherever it is"


def test_a_replacement_that_fails_leaves_the_old_groups_rule_in_place(
    box: Sandbox, deployed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stale rule is revoked only after every instance moved: when the newcomer cannot launch, the old
    instances still serve through the old group, so its rule stays, and the next `up` finishes the move."""
    assert box.seeded is not None
    old = box.seeded.instance_sg
    cfg = write_config(box, tmp_path / "new.yaml", **{"network.security_group": another_instance_group(box)})
    iam = box.client("iam")

    def drop_profile() -> None:  # the newcomer cannot launch: its instance profile is gone
        iam.remove_role_from_instance_profile(InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole")
        iam.delete_instance_profile(InstanceProfileName="ecsInstanceRole")

    _hook(monkeypatch, "autoscaling", "UpdateAutoScalingGroup", drop_profile)
    ran = up(box, cfg)
    assert ran.exit_code == 1 and "Invalid IAM Instance Profile" in ran.err, ran.out + ran.err
    assert old in stack_rules(box), "the ALB keeps its way to the old instances' tasks"
    assert healthy_targets(box) == 6
