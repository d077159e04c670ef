"""`ghostha init` against the sandbox: the config written from the account, its comments, TODOs and refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from ghostha import config
from ghostha.errors import ConfigError
from ghostha.sandbox import control
from ghostha.sandbox.server import Sandbox
from tests.conftest import capacity, mutating, run_cli, settle


def init(box: Sandbox, out: Path, *extra: str) -> Any:
    return run_cli(box, ["--endpoint-url", box.endpoint, "init", "--output", str(out), *extra])


def values(path: Path) -> config.Config:
    return dataclasses.replace(config.load(str(path)), source="")


def sandbox_config(box: Sandbox, path: Path) -> config.Config:
    """The config `ghostha sandbox start` writes for this sandbox."""
    assert box.seeded is not None
    control.write_config(path, box.seeded.to_dict(), box.endpoint)
    return values(path)


def second_instance_group(box: Sandbox, name: str = "ghost-instances-2") -> str:
    """Another group in the VPC whose ingress admits the ALB's group: a second candidate for the instances."""
    assert box.seeded is not None
    ec2 = box.client("ec2")
    gid = str(ec2.create_security_group(GroupName=name, Description="other", VpcId=box.seeded.vpc_id)["GroupId"])
    ec2.authorize_security_group_ingress(
        GroupId=gid,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": box.seeded.alb_sg}]}
        ],
    )
    return gid


def test_init_writes_the_sandbox_config_and_up_reaches_healthy(box: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "ghostha.yaml"
    start = len(box.requests)
    ran = init(box, out, "--load-balancer", "ghost-elb")
    assert ran.exit_code == 0, ran.err
    assert mutating(box.requests[start:]) == [], "init only reads"
    assert values(out) == sandbox_config(box, tmp_path / "sandbox.yaml"), "equal in every value"
    raw = yaml.safe_load((tmp_path / "sandbox.yaml").read_text())
    written = yaml.safe_load(out.read_text())
    for section, keys in raw.items():
        if isinstance(keys, dict):
            assert {k: written[section][k] for k in keys} == keys, section
        else:
            assert written[section] == keys, section
    assert f"config written to {out}" in ran.out and "up --dry-run" in ran.out

    text = out.read_text()
    assert "ghost-elb's subnets, one per AZ (us-east-1a, us-east-1b)" in text
    assert "its ingress admits the ALB's security group" in text
    assert "the instance profile ecsInstanceRole exists" in text
    assert "maps host port 80 (the target group's port)" in text
    assert "the only target group attached to ghost-elb" in text
    assert "TODO" not in text
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#") and not line.endswith(":"):
            assert "  # " in line or len(line) > 38, f"a value without its source: {line!r}"

    up = run_cli(box, ["--config", str(out), "up", "--yes"])
    assert up.exit_code == 0, up.err + up.out
    assert "HEALTHY" in up.out

    # after up the family's latest revision maps host port 0: init still finds the same container and port
    again = init(box, out, "--force")
    assert again.exit_code == 0, again.err
    assert values(out) == sandbox_config(box, tmp_path / "sandbox.yaml")
    assert "the only port mapping of revision ghost:2" in out.read_text()


def test_init_never_overwrites_without_force(box: Sandbox, tmp_path: Path) -> None:
    out = tmp_path / "ghostha.yaml"
    out.write_text("# mine\n")
    start = len(box.requests)
    ran = init(box, out)
    assert ran.exit_code == 2 and "already exists" in ran.err and "--force" in ran.err
    assert out.read_text() == "# mine\n"
    assert box.requests[start:] == [], "refused before reading the account"
    forced = init(box, out, "--force")
    assert forced.exit_code == 0, forced.err
    assert values(out).load_balancer.name == "ghost-elb"


def test_init_defaults_to_the_config_path_and_writes_to_stdout_on_dash(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ran = run_cli(box, ["--endpoint-url", box.endpoint, "init"])
    assert ran.exit_code == 0, ran.err
    assert "the only application load balancer in us-east-1" in (tmp_path / "ghostha.yaml").read_text()
    from ghostha.cli import _self_command

    assert f"next: {_self_command()} up --dry-run" in ran.out, "the next step as it runs from this shell"
    piped = run_cli(box, ["--endpoint-url", box.endpoint, "init", "--output", "-"])
    assert piped.exit_code == 0, piped.err
    assert yaml.safe_load(piped.out)["load_balancer"]["name"] == "ghost-elb", "stdout holds the YAML alone"
    assert "config written" in piped.err


def test_two_candidate_security_groups_are_a_todo_and_exit_1(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    other = second_instance_group(box)
    out = tmp_path / "ghostha.yaml"
    ran = init(box, out)
    assert ran.exit_code == 1
    assert "error:" in ran.err and "1 value(s) marked TODO" in ran.err
    assert "network.security_group: choose the instances' security group: " in ran.err
    text = out.read_text()
    todo = next(line for line in text.splitlines() if "# TODO:" in line)
    assert f"{box.seeded.instance_sg} (ghost-instances)" in todo and f"{other} (ghost-instances-2)" in todo
    assert yaml.safe_load(text)["network"]["security_group"] == "TODO"
    with pytest.raises(ConfigError, match=r"network\.security_group"):
        config.load(str(out))


def test_from_service_takes_the_old_instances_group_type_and_profile(box: Sandbox, tmp_path: Path) -> None:
    """The old service's instances decide what the account alone cannot: which of two groups, and the
    instance profile when ecsInstanceRole does not exist."""
    assert box.seeded is not None
    iam = box.client("iam")
    iam.create_instance_profile(InstanceProfileName="legacy-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="legacy-profile", RoleName="ecsInstanceRole")
    capacity(box, cluster="legacy", profile="legacy-profile", instance_type="t3.medium")
    settle(box, 60)
    box.client("ecs").create_service(
        cluster="legacy", serviceName="blog", taskDefinition=box.seeded.task_definition_arn, desiredCount=2
    )
    settle(box, 30)
    iam.remove_role_from_instance_profile(InstanceProfileName="ecsInstanceRole", RoleName="ecsInstanceRole")
    iam.delete_instance_profile(InstanceProfileName="ecsInstanceRole")
    second_instance_group(box)

    out = tmp_path / "ghostha.yaml"
    ran = init(box, out, "--from-service", "legacy/blog")
    assert ran.exit_code == 0, ran.err
    cfg = values(out)
    assert cfg.network.security_group == box.seeded.instance_sg
    assert cfg.cluster.instance_profile == "legacy-profile"
    assert cfg.cluster.instance_type == "t3.medium"
    assert (cfg.task.family, cfg.task.container, cfg.task.container_port) == ("ghost", "ghost", 2368)
    assert "used by the instances running legacy/blog's tasks" in out.read_text()

    # without the old service, the same account leaves two choices open
    ambiguous = init(box, tmp_path / "other.yaml")
    assert ambiguous.exit_code == 1
    assert "network.security_group" in ambiguous.err and "cluster.instance_profile" in ambiguous.err


def test_several_target_groups_on_the_alb_are_a_todo(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    elbv2 = box.client("elbv2")
    tg = elbv2.create_target_group(
        Name="admin-tg", Protocol="HTTP", Port=8080, VpcId=box.seeded.vpc_id, TargetType="instance"
    )["TargetGroups"][0]
    elbv2.create_listener(
        LoadBalancerArn=box.seeded.alb_arn,
        Protocol="HTTP",
        Port=8080,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}],
    )
    ran = init(box, tmp_path / "a.yaml")
    assert ran.exit_code == 1
    assert "load_balancer.target_group: choose the blog's target group on ghost-elb:" in ran.err
    assert "admin-tg (port 8080" in ran.err and "ghost-tg (port 80" in ran.err
    chosen = init(box, tmp_path / "b.yaml", "--target-group", "ghost-tg")
    assert chosen.exit_code == 0, chosen.err
    assert values(tmp_path / "b.yaml").load_balancer.target_group == "ghost-tg"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--load-balancer", "nope"], "load balancer nope not found in us-east-1"),
        (["--target-group", "loose-tg"], "target group loose-tg is not attached to load balancer ghost-elb"),
        (["--target-group", "missing-tg"], "target group missing-tg not found"),
        (["--family", "wordpress"], "task definition family wordpress has no ACTIVE revision"),
        (["--from-service", "ghost"], "must be CLUSTER/SERVICE"),
        (["--from-service", "legacy/blog"], "service blog not found in cluster legacy"),
        (["--stack", "9lives"], "'stack' must start with a letter"),
    ],
)
def test_names_that_do_not_fit_exit_2_and_write_nothing(
    box: Sandbox, tmp_path: Path, args: list[str], needle: str
) -> None:
    assert box.seeded is not None
    box.client("elbv2").create_target_group(
        Name="loose-tg", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id, TargetType="instance"
    )
    out = tmp_path / "ghostha.yaml"
    ran = init(box, out, *args)
    assert ran.exit_code == 2, ran.err
    assert needle in ran.err and "Traceback" not in ran.err
    assert len(ran.err.strip().splitlines()) <= 2, "one error line, and a hint"
    assert not out.exists()


def test_init_names_the_load_balancers_when_it_cannot_pick(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    box.client("elbv2").create_load_balancer(
        Name="other-elb", Subnets=list(box.seeded.subnets), SecurityGroups=[box.seeded.alb_sg]
    )
    ran = init(box, tmp_path / "ghostha.yaml")
    assert ran.exit_code == 2
    assert "2 application load balancers in us-east-1" in ran.err
    assert "--load-balancer NAME, one of: ghost-elb, other-elb" in ran.err


def test_verbose_init_lists_its_reads_on_stderr(box: Sandbox, tmp_path: Path) -> None:
    start = len(box.requests)
    ran = run_cli(box, ["-v", "--endpoint-url", box.endpoint, "init", "--output", "-"])
    assert ran.exit_code == 0, ran.err
    calls = [line for line in ran.err.splitlines() if line.startswith("aws: ")]
    assert len(calls) == len(box.requests[start:])
    assert any(line.startswith("aws: iam GetInstanceProfile InstanceProfileName=ecsInstanceRole") for line in calls)
    assert "aws:" not in ran.out, "stdout is still only the YAML"
    assert yaml.safe_load(ran.out)["load_balancer"]["name"] == "ghost-elb"
