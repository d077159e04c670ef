"""The ALB's side of the network path: its security group must let traffic out to the instances on the dynamic
host ports, or every target times out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    capacity,
    dynamic_revision,
    mutating,
    open_dynamic_ports,
    run_cli,
    service,
    settle,
    targets,
    write_config,
)


def _allow_egress(box: Sandbox, low: int, high: int) -> None:
    """An egress rule from the ALB's group to the instances' group on TCP low-high."""
    assert box.seeded is not None
    box.client("ec2").authorize_security_group_egress(
        GroupId=box.seeded.alb_sg,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": low,
                "ToPort": high,
                "UserIdGroupPairs": [{"GroupId": box.seeded.instance_sg}],
            }
        ],
    )


def _alb_egress_only_port_80(box: Sandbox) -> None:
    """Replace the ALB group's default allow-all egress with HTTP 80 to the instances' group only."""
    assert box.seeded is not None
    box.client("ec2").revoke_security_group_egress(
        GroupId=box.seeded.alb_sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    )
    _allow_egress(box, 80, 80)


def two_tasks_checked(box: Sandbox) -> list[dict[str, Any]]:
    """Instances admitting the ALB on the dynamic ports, two tasks on them, health-checked for 200 s: the targets."""
    open_dynamic_ports(box)
    capacity(box)
    settle(box, 40)
    service(box, dynamic_revision(box), count=2, breaker=False, grace=600)
    settle(box, 200)
    return targets(box)


def test_targets_time_out_when_the_alb_group_allows_no_egress_to_them(box: Sandbox) -> None:
    """ "You must ensure that your load balancer can communicate with registered targets on both the listener port
    and the health check port ... the security groups associated with the load balancer allow traffic on the new
    port in both directions." (ELB User Guide for Application Load Balancers, "Security groups for your
    Application Load Balancer",
    https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-update-security-groups.html)
    The instances admit the ALB on the dynamic ports, but the ALB's group lets only port 80 out: Target.Timeout."""
    _alb_egress_only_port_80(box)
    health = two_tasks_checked(box)
    assert health and {h["TargetHealth"]["State"] for h in health} == {"unhealthy"}
    assert {h["TargetHealth"]["Reason"] for h in health} == {"Target.Timeout"}


def test_targets_healthy_with_egress_on_the_dynamic_range(box: Sandbox) -> None:
    """The same, with an egress rule from the ALB's group to the instances' group on 32768-65535: healthy."""
    assert box.seeded is not None
    _alb_egress_only_port_80(box)
    _allow_egress(box, 32768, 65535)
    health = two_tasks_checked(box)
    assert health and {h["TargetHealth"]["State"] for h in health} == {"healthy"}


def test_up_stops_and_names_the_egress_rule_to_add(box: Sandbox, tmp_path: Path) -> None:
    """Preflight: exit 2 before anything is created, the exact rule to add; the ALB's group (not ghostha's) is
    left as it was."""
    assert box.seeded is not None
    _alb_egress_only_port_80(box)
    ec2 = box.client("ec2")
    before = ec2.describe_security_groups(GroupIds=[box.seeded.alb_sg])["SecurityGroups"][0]["IpPermissionsEgress"]
    cfg = write_config(box, tmp_path / "g.yaml")
    box.requests.clear()
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 2, ran.err
    assert f"security group {box.seeded.alb_sg} allows no outbound TCP 32768-60999" in ran.err
    assert (
        f"authorize-security-group-egress --group-id {box.seeded.alb_sg} --ip-permissions "
        f"'IpProtocol=tcp,FromPort=32768,ToPort=65535,UserIdGroupPairs=[{{GroupId={box.seeded.instance_sg}}}]'"
    ) in ran.err.replace("\n", "")
    assert mutating(box.requests) == []
    after = ec2.describe_security_groups(GroupIds=[box.seeded.alb_sg])["SecurityGroups"][0]["IpPermissionsEgress"]
    assert after == before


def test_up_accepts_egress_to_a_cidr_covering_the_subnets(box: Sandbox, tmp_path: Path) -> None:
    """An egress rule to the VPC's CIDR on the dynamic range reaches the instances as well: no preflight problem
    (the default allow-all egress is covered by every other `up` test)."""
    from ghostha.aws import Aws
    from ghostha.checks import run
    from ghostha.config import load
    from ghostha.observe import observe

    def egress(obs: object) -> str:
        return next(c.verdict for c in run(cfg, obs, "up") if c.id == "network.alb-egress")  # type: ignore[arg-type]

    assert box.seeded is not None
    _alb_egress_only_port_80(box)
    path = write_config(box, tmp_path / "g.yaml")
    cfg = load(str(path))
    aws = Aws(region=box.region, endpoint_url=box.endpoint)
    assert egress(observe(aws, cfg)) == "fail"
    box.client("ec2").authorize_security_group_egress(
        GroupId=box.seeded.alb_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1024, "ToPort": 65535, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}
        ],
    )
    assert egress(observe(aws, cfg)) == "pass"


def test_doctor_names_the_missing_egress_rule_too(box: Sandbox, tmp_path: Path) -> None:
    """One module of checks, two callers: doctor reports the ALB's egress as `up`'s preflight does."""
    import json

    assert box.seeded is not None
    _alb_egress_only_port_80(box)
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "doctor", "--json"])
    assert ran.exit_code == 1
    check = next(c for c in json.loads(ran.out)["checks"] if c["id"] == "network.alb-egress")
    assert check["verdict"] == "fail" and "authorize-security-group-egress" in check["fix"]
