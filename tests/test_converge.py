"""`up` converges on every setting it owns (issue #8): each config key, changed after the first `up`, yields a
step or a line saying why it is not applied; in-place service updates; replacements only on purpose; a failed
rollout is retried with a fresh deployment; teardown of a renamed service; only this run's events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ghostha import config as config_module
from ghostha.resources import auto_scaling_group, cluster, ingress_rule, launch_template, service, task_revision
from ghostha.sandbox.server import Sandbox
from tests.conftest import describe_service, mutating, run_cli, settle, write_config

RUNTIME_KEYS = {
    # how ghostha reaches and watches AWS, not what it builds: nothing in AWS to converge
    "region",
    "endpoint_url",
    "poll_seconds",
    "max_attempts",
    "site_url",  # where status and drill reach the blog
}


def leaf_keys(schema: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, spec in schema.items():
        out |= leaf_keys(spec, f"{prefix}{key}.") if isinstance(spec, dict) else {f"{prefix}{key}"}
    return out


def test_every_config_key_belongs_to_a_resource_or_is_declared_runtime() -> None:
    """A key added to the config later must name the resource that applies it, or it fails here."""
    owned = {"stack"}  # names and tags every resource: changing it makes another stack
    for module in (cluster, launch_template, auto_scaling_group, task_revision, ingress_rule, service):
        owned |= set(module.KEYS)
    keys = leaf_keys(config_module.SCHEMA)
    assert keys - owned - RUNTIME_KEYS == set(), "config keys no resource applies"
    assert (owned | RUNTIME_KEYS) - keys == set(), "resources read keys the config does not have"


@pytest.fixture
def converged(deployed: Path) -> Path:
    return deployed


def _subnet_in_a(box: Sandbox) -> Any:
    assert box.seeded is not None
    sub = box.client("ec2").create_subnet(
        VpcId=box.seeded.vpc_id, CidrBlock="10.0.9.0/24", AvailabilityZone="us-east-1a"
    )
    return [box.seeded.subnets[1], sub["Subnet"]["SubnetId"]]


def _other_sg(box: Sandbox) -> Any:
    assert box.seeded is not None
    return box.client("ec2").create_security_group(GroupName="more", Description="more", VpcId=box.seeded.vpc_id)[
        "GroupId"
    ]


def _other_profile(box: Sandbox) -> Any:
    box.client("iam").create_instance_profile(InstanceProfileName="ghostInstances")
    return "ghostInstances"


def _key_pair(box: Sandbox) -> Any:
    box.client("ec2").create_key_pair(KeyName="ops")
    return "ops"


def _family(box: Sandbox, family: str, container: str = "ghost", port: int = 2368) -> None:
    box.client("ecs").register_task_definition(
        family=family,
        networkMode="bridge",
        containerDefinitions=[
            {
                "name": container,
                "image": "ghost:5",
                "memoryReservation": 512,
                "memory": 1024,
                "portMappings": [{"containerPort": port, "hostPort": 80}],
            }
        ],
    )


def _second_alb(box: Sandbox) -> Any:
    assert box.seeded is not None
    ec2, elbv2 = box.client("ec2"), box.client("elbv2")
    sg = ec2.create_security_group(GroupName="alb2", Description="alb2", VpcId=box.seeded.vpc_id)["GroupId"]
    lb = elbv2.create_load_balancer(Name="ghost-elb2", Subnets=list(box.seeded.subnets), SecurityGroups=[sg])
    elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": box.seeded.target_group_arn}],
    )
    return "ghost-elb2"


def _second_tg(box: Sandbox) -> Any:
    assert box.seeded is not None
    elbv2 = box.client("elbv2")
    tg = elbv2.create_target_group(Name="ghost-tg2", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id)
    elbv2.create_rule(
        ListenerArn=box.seeded.listener_arn,
        Priority=20,
        Conditions=[{"Field": "path-pattern", "Values": ["/two/*"]}],
        Actions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroups"][0]["TargetGroupArn"]}],
    )
    return "ghost-tg2"


# key → (make the new value, exit code of `up --dry-run`, what the output must say)
Change = tuple[Callable[[Sandbox], Any], int, str]
KEY_CHANGES: dict[str, Change] = {
    # the sandbox config names the cluster: a new stack name alone would take over the old stack's cluster
    "stack": (lambda box: "ghost-two", 2, "cluster ghost-ha exists but belongs to ghostha stack ghost-ha"),
    "network.subnets": (_subnet_in_a, 0, "update-auto-scaling-group"),
    "network.security_group": (_other_sg, 0, "security groups"),
    "cluster.name": (lambda box: "ghost-b", 2, "does not move a stack to another cluster"),
    "cluster.instance_count": (lambda box: 3, 0, "desired capacity 2 → 3"),
    "cluster.instance_type": (lambda box: "t3.medium", 0, "instance type t3.small → t3.medium"),
    "cluster.ami": (lambda box: "ami-12c6146b", 0, "→ ami-12c6146b"),
    "cluster.instance_profile": (_other_profile, 0, "instance profile ecsInstanceRole → ghostInstances"),
    "cluster.key_name": (_key_pair, 0, "key pair none → ops"),
    "task.family": (lambda box: _family(box, "ghost-blue") or "ghost-blue", 0, "register-task-definition"),
    "task.container": (lambda box: _family(box, "ghost", "blog") or "blog", 0, "register-task-definition"),
    "task.container_port": (lambda box: _family(box, "ghost", "ghost", 2369) or 2369, 0, "ghost, 2368 → "),
    "service.name": (lambda box: "blog", 2, "does not rename a service in place"),
    "service.desired_count": (lambda box: 4, 0, "desired count 6 → 4"),
    "service.role": (lambda box: "ecsServiceRole", 2, "service role none → ecsServiceRole"),
    "service.health_check_grace_seconds": (lambda box: 300, 0, "health-check grace period 120 → 300"),
    "service.minimum_healthy_percent": (lambda box: 100, 0, "minimum healthy percent 50 → 100"),
    "service.maximum_percent": (lambda box: 150, 0, "maximum percent 200 → 150"),
    "load_balancer.name": (_second_alb, 0, "authorize-ingress"),
    "load_balancer.target_group": (_second_tg, 0, "ghost-tg, ghost, 2368 → ghost-tg2, ghost, 2368"),
}


def test_the_key_walk_covers_every_stack_key() -> None:
    assert set(KEY_CHANGES) == leaf_keys(config_module.SCHEMA) - RUNTIME_KEYS


@pytest.mark.parametrize("key", sorted(KEY_CHANGES))
def test_changing_a_key_after_up_yields_a_step_or_says_why_not(
    box: Sandbox, converged: Path, tmp_path: Path, key: str
) -> None:
    make, code, needle = KEY_CHANGES[key]
    cfg = write_config(box, tmp_path / "changed.yaml", **{key: make(box)})
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    assert ran.exit_code == code, ran.out + ran.err
    assert needle in ran.out + ran.err
    assert "nothing to change" not in ran.out
    assert mutating(box.requests[start:]) == []


def test_a_dry_run_says_each_change_once_and_which_revision_it_waits_for(
    box: Sandbox, converged: Path, tmp_path: Path
) -> None:
    cfg = write_config(box, tmp_path / "four.yaml", **{"service.desired_count": 4})
    ran = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    assert ran.exit_code == 0, ran.err
    assert ran.out.count("desired count 6 → 4") == 1, ran.out
    assert "would do (dry run: nothing was changed)" in ran.out
    assert "4 tasks running on ghost:2, their targets healthy" in ran.out, "no new revision: it names the one kept"
    ecs = box.client("ecs")
    latest = ecs.describe_task_definition(taskDefinition="ghost:1")["taskDefinition"]
    ecs.register_task_definition(family="ghost", containerDefinitions=latest["containerDefinitions"])
    ran = run_cli(box, ["--config", str(cfg), "up", "--dry-run"])
    assert "4 tasks running on the new revision" in ran.out, ran.out


@pytest.mark.parametrize(
    ("key", "value", "field", "expected"),
    [
        ("service.health_check_grace_seconds", 300, "healthCheckGracePeriodSeconds", 300),
        ("service.minimum_healthy_percent", 100, "deploymentConfiguration", ("minimumHealthyPercent", 100)),
        ("service.maximum_percent", 150, "deploymentConfiguration", ("maximumPercent", 150)),
    ],
)
def test_service_settings_are_updated_in_place_and_then_converged(
    box: Sandbox, converged: Path, tmp_path: Path, key: str, value: int, field: str, expected: Any
) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{key: value})
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    assert mutating(box.requests[start:]) == [("ecs", "UpdateService")]
    got = describe_service(box)[field]
    assert (got[expected[0]] == expected[1]) if isinstance(expected, tuple) else got == expected
    again = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert again.exit_code == 0 and "nothing to change" in again.out


def test_az_rebalancing_is_created_enabled_and_converged_when_turned_off(box: Sandbox, converged: Path) -> None:
    """ghostha sets availabilityZoneRebalancing explicitly (ECS API Reference, UpdateService: "If the service never
    had an AvailabilityZoneRebalancing value set, Amazon ECS treats this as DISABLED"), and `up` turns it back on
    in place: "This parameter doesn't trigger a new service deployment." """
    assert describe_service(box)["availabilityZoneRebalancing"] == "ENABLED"
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", availabilityZoneRebalancing="DISABLED")
    dry = run_cli(box, ["--config", str(converged), "up", "--dry-run"])
    assert dry.exit_code == 0, dry.err
    assert "AZ rebalancing DISABLED → ENABLED" in dry.out
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(converged), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    assert mutating(box.requests[start:]) == [("ecs", "UpdateService")]
    svc = describe_service(box)
    assert svc["availabilityZoneRebalancing"] == "ENABLED"
    assert len(svc["deployments"]) == 1
    again = run_cli(box, ["--config", str(converged), "up", "--yes"])
    assert again.exit_code == 0 and "nothing to change" in again.out


def test_a_new_target_group_moves_the_tasks_there(box: Sandbox, converged: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{"load_balancer.target_group": _second_tg(box)})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    lbs = describe_service(box)["loadBalancers"]
    assert [lb["targetGroupArn"].split("/")[1] for lb in lbs] == ["ghost-tg2"]
    tg2 = box.client("elbv2").describe_target_groups(Names=["ghost-tg2"])["TargetGroups"][0]["TargetGroupArn"]
    health = box.client("elbv2").describe_target_health(TargetGroupArn=tg2)["TargetHealthDescriptions"]
    assert len(health) == 6 and {h["TargetHealth"]["State"] for h in health} == {"healthy"}


def test_role_change_replaces_the_service_only_when_asked(box: Sandbox, converged: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{"service.role": "ecsServiceRole"})
    start = len(box.requests)
    refused = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert refused.exit_code == 2 and "--replace-service" in refused.err
    assert mutating(box.requests[start:]) == []
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes", "--replace-service"])
    assert ran.exit_code == 0, ran.err + ran.out
    actions = [a for _, a in mutating(box.requests[start:])]
    assert actions.index("DeleteService") < actions.index("CreateService")
    assert describe_service(box)["status"] == "ACTIVE"


def test_renamed_service_is_created_then_the_old_one_deleted(box: Sandbox, converged: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{"service.name": "blog"})
    refused = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert refused.exit_code == 2 and "ghost" in refused.err
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes", "--replace-service"])
    assert ran.exit_code == 0, ran.err + ran.out
    ecs = box.client("ecs")
    blog = ecs.describe_services(cluster="ghost-ha", services=["blog", "ghost"])["services"]
    assert {s["serviceName"]: s["status"] for s in blog} == {"blog": "ACTIVE", "ghost": "INACTIVE"}
    assert describe_service(box, name="blog")["runningCount"] == 6
    status = run_cli(box, ["--config", str(cfg), "status"])
    assert status.exit_code == 0, status.out


def test_teardown_after_a_rename_waits_on_each_service_by_its_own_name(
    box: Sandbox, converged: Path, tmp_path: Path
) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{"service.name": "blog"})
    ran = run_cli(box, ["--config", str(cfg), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.err + ran.out
    svc = box.client("ecs").describe_services(cluster="ghost-ha", services=["ghost"])["services"]
    assert [s["status"] for s in svc] in ([], ["INACTIVE"])
    assert box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"] == []


def test_after_a_failed_rollout_a_right_config_starts_a_fresh_deployment(box: Sandbox, tmp_path: Path) -> None:
    assert box.seeded is not None
    cfg = write_config(box, tmp_path / "g.yaml")
    revoked = False

    def sleep(seconds: float) -> None:  # the rule goes, behind ghostha's back, once it is in place
        nonlocal revoked
        ec2 = box.client("ec2")
        rules = ec2.describe_security_group_rules(
            Filters=[{"Name": "group-id", "Values": [box.seeded.instance_sg]}]  # type: ignore[union-attr]
        )["SecurityGroupRules"]
        ours = [r["SecurityGroupRuleId"] for r in rules if r.get("FromPort") == 32768 and not r["IsEgress"]]
        if ours and not revoked:
            ec2.revoke_security_group_ingress(GroupId=box.seeded.instance_sg, SecurityGroupRuleIds=ours)  # type: ignore[union-attr]
            revoked = True
        box.advance(seconds)

    failed = run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=sleep)
    assert failed.exit_code == 1, failed.out + failed.err
    settle(box, 120)  # ghostha stopped waiting; ECS goes on stopping the unhealthy tasks until its breaker trips
    assert [d["rolloutState"] for d in describe_service(box)["deployments"]] == ["FAILED"]
    again = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert again.exit_code == 0, again.out + again.err
    assert "the last rollout of service ghost" in again.out and "FAILED" in again.out
    assert "Task failed ELB health checks" in again.out, "what failed last time is shown"
    assert "a fresh deployment" in again.out
    deps = describe_service(box)["deployments"]
    assert [d["rolloutState"] for d in deps] == ["COMPLETED"]


def test_scaled_to_zero_by_hand_is_degraded(box: Sandbox, converged: Path) -> None:
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", desiredCount=0)
    box.advance(60)
    ran = run_cli(box, ["--config", str(converged), "status"])
    assert ran.exit_code == 1
    assert "DEGRADED" in ran.out and "desired count is 0, configured 6" in ran.out


def test_missing_target_group_is_degraded(box: Sandbox, converged: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "changed.yaml", **{"load_balancer.target_group": "nope"})
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 1 and "target group nope not found" in ran.out


def test_scaling_without_a_new_deployment_shows_no_old_events(box: Sandbox, converged: Path, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "four.yaml", **{"service.desired_count": 4})
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    events = [line for line in ran.out.splitlines() if line.startswith("  event: ")]
    assert any("has stopped 2 running tasks" in e for e in events), events
    assert not any("deployment completed" in e for e in events), "the first up's rollout is history"


def test_tasks_that_cannot_be_placed_fail_fast_with_the_numbers(box: Sandbox, tmp_path: Path) -> None:
    """ECS service events: "was unable to place a task because no container instance met all of its requirements"
    (ECS developer guide, "Amazon ECS service event messages")."""
    cfg = write_config(box, tmp_path / "g.yaml", **{"service.desired_count": 4})
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    ecs = box.client("ecs")
    ecs.register_task_definition(
        family="hog", containerDefinitions=[{"name": "hog", "image": "busybox", "memory": 800}]
    )
    ecs.run_task(cluster="ghost-ha", taskDefinition="hog", count=2)  # a foreign task takes memory on each instance
    box.advance(20)
    hogs = ecs.describe_tasks(cluster="ghost-ha", tasks=ecs.list_tasks(cluster="ghost-ha", family="hog")["taskArns"])
    assert len({t["containerInstanceArn"] for t in hogs["tasks"]}) == 2
    six = write_config(box, tmp_path / "six.yaml", **{"service.desired_count": 6})
    start = box.clock.seconds()
    ran = run_cli(box, ["--config", str(six), "up", "--yes", "--timeout", "900"])
    assert ran.exit_code == 1, ran.out + ran.err
    assert "cannot place all its tasks" in ran.err and "MiB free" in ran.err and "reserves 512 MiB" in ran.err
    assert box.clock.seconds() - start < 120, "fails within a few polls, not at the timeout"


def test_a_target_unhealthy_past_the_grace_period_fails_the_wait_with_its_reason(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECS replaces a task whose target stays unhealthy only after its own health-check cycles ("Amazon ECS
    service load balancing", health-check grace period), so ghostha does not wait for ECS to find out: a target
    of this run's tasks unhealthy past the grace period ends the wait with the target's reason. Here ECS's
    reaction is held back, and the rule goes behind ghostha's back once it is in place."""
    from ghostha.sandbox.sim import Simulator

    assert box.seeded is not None
    sg = box.seeded.instance_sg
    monkeypatch.setattr(Simulator, "_target_unhealthy", lambda *a, **k: None)
    cfg = write_config(box, tmp_path / "grace.yaml", **{"service.health_check_grace_seconds": 30})
    ec2 = box.client("ec2")

    def sleep(seconds: float) -> None:
        rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [sg]}])
        ours = [r["SecurityGroupRuleId"] for r in rules["SecurityGroupRules"] if r.get("FromPort") == 32768]
        if ours:
            ec2.revoke_security_group_ingress(GroupId=sg, SecurityGroupRuleIds=ours)
        box.advance(seconds)

    start = box.clock.seconds()
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=sleep)
    assert ran.exit_code == 1, ran.out + ran.err
    assert "unhealthy past the 30 s grace period" in ran.err and "Target.Timeout" in ran.err
    assert box.clock.seconds() - start < 200, "long before the timeout"
