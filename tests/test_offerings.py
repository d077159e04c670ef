"""Instance types offered only in some AZs, and AMI architecture against the instance type's."""

from __future__ import annotations

from pathlib import Path

from ghostha.sandbox.server import Sandbox
from tests.conftest import capacity, mutating, run_cli, settle, write_config


def test_offerings_switch_answers_per_az_and_limits_launches(box: Sandbox) -> None:
    """ "Instance types offered in an Availability Zone": DescribeInstanceTypeOfferings with LocationType
    availability-zone lists, per AZ, the types one can launch there (Amazon EC2 API Reference,
    DescribeInstanceTypeOfferings,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_DescribeInstanceTypeOfferings.html); an Auto Scaling
    group cannot launch an instance type into an AZ that does not offer it."""
    assert box.seeded is not None
    a, b = box.seeded.azs
    box.instance_type_offerings = {a: {"t3.small", "t3.medium"}, b: {"t3.medium"}}
    ec2 = box.client("ec2")
    got = ec2.describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.small"]}]
    )["InstanceTypeOfferings"]
    assert [o["Location"] for o in got] == [a]
    capacity(box, count=2)
    settle(box, 10)
    group = box.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["ghost-ha-asg"])
    ids = [i["InstanceId"] for i in group["AutoScalingGroups"][0]["Instances"]]
    assert ids
    zones = {
        i["Placement"]["AvailabilityZone"]
        for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
        for i in r["Instances"]
    }
    assert zones == {a}


def test_offerings_default_is_moto_data(box: Sandbox) -> None:
    assert box.seeded is not None
    got = box.client("ec2").describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t3.small"]}]
    )["InstanceTypeOfferings"]
    assert set(box.seeded.azs) <= {o["Location"] for o in got}


def test_up_names_the_subnet_whose_az_lacks_the_instance_type(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    a, b = box.seeded.azs
    box.instance_type_offerings = {a: {"t3.small"}, b: {"t3.medium"}}
    cfg = write_config(box, tmp_path / "g.yaml")
    box.requests.clear()
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2, ran.err
    err = ran.err.replace("\n", " ")
    assert f"instance type t3.small is not offered in {b} (subnet {box.seeded.subnets[1]})" in err
    assert f"t3.small is offered in {a}" in err
    assert mutating(box.requests) == []


def test_up_refuses_an_ami_of_another_architecture(box: Sandbox, tmp_path: Path) -> None:
    """The default ECS-optimized AMI is x86_64; a Graviton type (t4g) runs arm64 only."""
    cfg = write_config(box, tmp_path / "g.yaml", **{"cluster.instance_type": "t4g.small"})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2, ran.err
    err = ran.err.replace("\n", " ")
    assert "is x86_64, but t4g.small runs arm64" in err


def test_up_refuses_an_unknown_instance_type(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", **{"cluster.instance_type": "t3.nonesuch"})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2, ran.err
    assert "instance type t3.nonesuch not offered" in ran.err
