"""The sandbox's simulation rules, each checked through boto3's public API against the sandbox."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
from botocore.exceptions import ClientError

from ghostha.sandbox import hooks
from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    capacity,
    container_instances,
    copy_revision,
    describe_service,
    dynamic_ports_rule,
    dynamic_revision,
    open_dynamic_ports,
    running_tasks,
    service,
    settle,
    short_draining,
    targets,
    user_data,
)


def stack(box: Sandbox, count: int = 6, rule: bool = True, instance_type: str = "t3.small", **kw: object) -> str:
    """Two instances, the host-port-0 revision, optionally the SG rule, and a service; returns the revision."""
    capacity(box, instance_type=instance_type)
    settle(box, 30)
    td = dynamic_revision(box)
    if rule:
        open_dynamic_ports(box)
    service(box, td, count=count, **kw)  # type: ignore[arg-type]
    return td


def test_moto_hooks_are_intact() -> None:
    problems = hooks.check()
    assert problems == [], (
        "a moto upgrade broke the sandbox's hooks into moto (pin moto to the tested range "
        f"{hooks.TESTED_MOTO} or update ghostha/sandbox/hooks.py): {problems}"
    )


# --- 9. seed --------------------------------------------------------------------------------------------


def test_seed_is_the_story_starting_point(box: Sandbox) -> None:
    s = box.seeded
    assert s is not None
    ec2, elbv2, ecs, iam = box.client("ec2"), box.client("elbv2"), box.client("ecs"), box.client("iam")
    subnets = ec2.describe_subnets(SubnetIds=list(s.subnets))["Subnets"]
    assert {sn["VpcId"] for sn in subnets} == {s.vpc_id}
    assert len({sn["AvailabilityZone"] for sn in subnets}) == 2
    alb_sg, inst_sg = (
        ec2.describe_security_groups(GroupIds=[g])["SecurityGroups"][0] for g in (s.alb_sg, s.instance_sg)
    )
    assert [(p["FromPort"], p["IpRanges"][0]["CidrIp"]) for p in alb_sg["IpPermissions"]] == [(80, "0.0.0.0/0")]
    assert [(p["FromPort"], p["ToPort"], p["UserIdGroupPairs"][0]["GroupId"]) for p in inst_sg["IpPermissions"]] == [
        (80, 80, s.alb_sg)
    ]
    lb = elbv2.describe_load_balancers(Names=["ghost-elb"])["LoadBalancers"][0]
    assert lb["SecurityGroups"] == [s.alb_sg]
    tg = elbv2.describe_target_groups(Names=["ghost-tg"])["TargetGroups"][0]
    assert (tg["Protocol"], tg["TargetType"], tg["HealthCheckPort"]) == ("HTTP", "instance", "traffic-port")
    listener = elbv2.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"][0]
    assert (listener["Port"], listener["DefaultActions"][0]["TargetGroupArn"]) == (80, tg["TargetGroupArn"])
    assert iam.get_instance_profile(InstanceProfileName="ecsInstanceRole")["InstanceProfile"]["Roles"]
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    c = td["containerDefinitions"][0]
    assert td["networkMode"] == "bridge"
    assert c["image"] == "ghost:5" and c["memoryReservation"] == 512
    assert c["portMappings"][0] == {"containerPort": 2368, "hostPort": 80, "protocol": "tcp"}
    assert {"name": "url", "value": f"http://{lb['DNSName']}"} in c["environment"]


# --- 1. agent -------------------------------------------------------------------------------------------


def test_agent_registers_instances_into_their_cluster_sized_by_type(box: Sandbox) -> None:
    capacity(box)
    box.advance(5)
    assert container_instances(box) == [], "the agent needs the instance to boot first"
    settle(box, 30)
    cis = container_instances(box)
    assert len(cis) == 2
    for ci in cis:
        res = {r["name"]: r.get("integerValue") for r in ci["registeredResources"]}
        assert (res["CPU"], res["MEMORY"]) == (2048, 1900)
        assert ci["status"] == "ACTIVE" and ci["agentConnected"]


def test_registering_an_instance_twice_does_not_duplicate_it(box: Sandbox) -> None:
    capacity(box)
    settle(box, 30)
    ci = container_instances(box)[0]
    doc = json.dumps({"instanceId": ci["ec2InstanceId"]})
    again = box.client("ecs").register_container_instance(cluster="ghost-ha", instanceIdentityDocument=doc)
    assert again["containerInstance"]["containerInstanceArn"] == ci["containerInstanceArn"]
    assert len(container_instances(box)) == 2


def test_instance_without_ecs_cluster_joins_default(box: Sandbox) -> None:
    assert box.seeded is not None
    box.client("ec2").run_instances(
        ImageId="ami-12c6146b",
        MinCount=1,
        MaxCount=1,
        UserData=user_data(None),
        SubnetId=box.seeded.subnets[0],
        IamInstanceProfile={"Name": "ecsInstanceRole"},
    )
    settle(box, 30)
    assert len(container_instances(box, "default")) == 1


def test_instance_without_profile_never_registers(box: Sandbox) -> None:
    capacity(box, profile=None)
    settle(box, 300, step=30)
    assert container_instances(box) == []


def test_terminated_instance_is_deregistered_and_its_tasks_replaced(box: Sandbox) -> None:
    stack(box, instance_type="t3.medium")  # room for all six on one instance
    settle(box, 40)
    victim = container_instances(box)[0]
    doomed = {t["taskArn"] for t in running_tasks(box) if t["containerInstanceArn"] == victim["containerInstanceArn"]}
    assert len(doomed) == 3
    box.client("ec2").terminate_instances(InstanceIds=[victim["ec2InstanceId"]])
    box.advance(1)
    ecs = box.client("ecs")
    stopped = ecs.describe_tasks(cluster="ghost-ha", tasks=list(doomed))["tasks"]
    assert {t["lastStatus"] for t in stopped} == {"STOPPED"}
    assert all("terminated" in t["stoppedReason"] for t in stopped)
    arns = [c["containerInstanceArn"] for c in container_instances(box)]
    assert victim["containerInstanceArn"] not in arns
    # the service keeps six tasks on what is left, before the group's new instance has even booted
    settle(box, 15)
    tasks = running_tasks(box)
    assert len(tasks) == 6
    assert {t["containerInstanceArn"] for t in tasks} == set(arns)


# --- 2. Auto Scaling ------------------------------------------------------------------------------------


def test_asg_spreads_over_subnets_with_the_template_profile(box: Sandbox) -> None:
    group = capacity(box)
    asg = box.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[group])
    ids = [i["InstanceId"] for i in asg["AutoScalingGroups"][0]["Instances"]]
    ec2 = box.client("ec2")
    insts = [i for r in ec2.describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
    assert box.seeded is not None
    assert sorted(i["SubnetId"] for i in insts) == sorted(box.seeded.subnets)
    assert len({i["Placement"]["AvailabilityZone"] for i in insts}) == 2
    assocs = ec2.describe_iam_instance_profile_associations()["IamInstanceProfileAssociations"]
    assert {a["InstanceId"] for a in assocs} == set(ids)
    assert all(a["IamInstanceProfile"]["Arn"].endswith("/ecsInstanceRole") for a in assocs)


def test_asg_instances_carry_the_template_metadata_options(box: Sandbox) -> None:
    """Instances an Auto Scaling group launches from a template get its instance metadata options.

    AWS, EC2 API Reference, "LaunchTemplateInstanceMetadataOptionsRequest"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html):
    "The metadata options for the instance."; HttpTokens "If the parameter is not specified in the request, the
    default state is optional"; HttpPutResponseHopLimit "Default: 1". moto dropped them for ASG launches."""
    assert box.seeded is not None
    ec2, auto = box.client("ec2"), box.client("autoscaling")
    for name, options in (("imds-v2", {"HttpTokens": "required", "HttpPutResponseHopLimit": 2}), ("imds-none", {})):
        data: dict[str, object] = {"ImageId": "ami-12c6146b", "InstanceType": "t3.small"}
        if options:
            data["MetadataOptions"] = options
        ec2.create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
        auto.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name},
            MinSize=1,
            MaxSize=1,
            DesiredCapacity=1,
            VPCZoneIdentifier=box.seeded.subnets[0],
        )
        group = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        iid = group["Instances"][0]["InstanceId"]
        inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        got = inst["MetadataOptions"]
        assert (got["HttpTokens"], got["HttpPutResponseHopLimit"]) == (("required", 2) if options else ("optional", 1))


def test_asg_replaces_a_terminated_instance(box: Sandbox) -> None:
    group = capacity(box)
    auto = box.client("autoscaling")
    first = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    box.client("ec2").terminate_instances(InstanceIds=[first[0]["InstanceId"]])
    box.advance(5)
    now = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    assert len(now) == 2 and first[0]["InstanceId"] not in {i["InstanceId"] for i in now}
    settle(box, 35)
    assert len(container_instances(box)) == 2


# --- 3 + 4. scheduler and dynamic ports -----------------------------------------------------------------


def test_static_port_80_runs_two_and_reports_the_port_event(box: Sandbox) -> None:
    capacity(box)
    settle(box, 30)
    assert box.seeded is not None
    open_dynamic_ports(box)
    service(box, box.seeded.task_definition_arn)
    settle(box, 60)
    assert len(running_tasks(box)) == 2
    svc = describe_service(box)
    assert svc["runningCount"] == 2 and svc["desiredCount"] == 6
    messages = [e["message"] for e in svc["events"]]
    assert any(
        "was unable to place a task because no container instance met all of its requirements" in m
        and "is already using a port required by your task" in m
        for m in messages
    )


def test_host_port_zero_runs_three_plus_three_on_distinct_dynamic_ports(box: Sandbox) -> None:
    stack(box)
    settle(box, 30)
    tasks = running_tasks(box)
    assert len(tasks) == 6 and {t["lastStatus"] for t in tasks} == {"RUNNING"}
    per_instance = Counter(t["containerInstanceArn"] for t in tasks)
    assert sorted(per_instance.values()) == [3, 3]
    bindings = [(t["containerInstanceArn"], t["containers"][0]["networkBindings"][0]) for t in tasks]
    ports = [(ci, b["hostPort"]) for ci, b in bindings]
    assert len(set(ports)) == 6
    assert all(32768 <= b["hostPort"] <= 60999 and b["containerPort"] == 2368 for _, b in bindings)


def test_memory_limits_placement(box: Sandbox) -> None:
    capacity(box, instance_type="t3.micro")  # ~950 MiB each: one 512 MiB task per instance
    settle(box, 30)
    td = dynamic_revision(box)
    open_dynamic_ports(box)
    service(box, td)
    settle(box, 30)
    assert len(running_tasks(box)) == 2
    assert any("insufficient memory" in e["message"] for e in describe_service(box)["events"])


# --- 5. targets -----------------------------------------------------------------------------------------


def test_targets_register_per_task_and_turn_healthy_with_the_rule(box: Sandbox) -> None:
    stack(box)
    settle(box, 15)
    states = {t["TargetHealth"]["State"] for t in targets(box)}
    assert states == {"initial"}
    settle(box, 30)
    th = targets(box)
    assert len(th) == 6 and {t["TargetHealth"]["State"] for t in th} == {"healthy"}
    tasks = running_tasks(box)
    ci_to_instance = {c["containerInstanceArn"]: c["ec2InstanceId"] for c in container_instances(box)}
    expected = {
        (ci_to_instance[t["containerInstanceArn"]], t["containers"][0]["networkBindings"][0]["hostPort"]) for t in tasks
    }
    assert {(t["Target"]["Id"], t["Target"]["Port"]) for t in th} == expected
    svc = describe_service(box)
    assert svc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert svc["events"][0]["message"] == "(service ghost) has reached a steady state."


def test_targets_without_the_rule_turn_unhealthy(box: Sandbox) -> None:
    stack(box, rule=False, breaker=False, grace=300)
    settle(box, 45)
    th = targets(box)
    assert len(th) == 6
    assert {(t["TargetHealth"]["State"], t["TargetHealth"]["Reason"]) for t in th} == {("unhealthy", "Target.Timeout")}


def test_stopped_task_target_drains_for_the_delay_then_goes(box: Sandbox) -> None:
    stack(box)
    settle(box, 45)
    task = running_tasks(box)[0]
    port = task["containers"][0]["networkBindings"][0]["hostPort"]
    box.client("ecs").stop_task(cluster="ghost-ha", task=task["taskArn"], reason="drill")
    box.advance(1)
    draining = [t for t in targets(box) if t["TargetHealth"]["State"] == "draining"]
    assert len(draining) == 1 and draining[0]["Target"]["Port"] == port
    settle(box, 295)  # the seeded group keeps AWS's default deregistration delay, 300 s
    assert any(t["TargetHealth"]["State"] == "draining" for t in targets(box))
    settle(box, 10)
    assert not any(t["TargetHealth"]["State"] == "draining" for t in targets(box))


# --- 6. lifecycle ---------------------------------------------------------------------------------------


def test_tasks_go_pending_then_running(box: Sandbox) -> None:
    stack(box)
    box.advance(1)
    assert {t["lastStatus"] for t in running_tasks(box)} == {"PENDING"}
    assert describe_service(box)["pendingCount"] == 6
    settle(box, 10)
    assert {t["lastStatus"] for t in running_tasks(box)} == {"RUNNING"}
    svc = describe_service(box)
    assert (svc["runningCount"], svc["pendingCount"]) == (6, 0)


def test_a_stopped_task_is_replaced(box: Sandbox) -> None:
    stack(box)
    settle(box, 45)
    victim = running_tasks(box)[0]["taskArn"]
    box.client("ecs").stop_task(cluster="ghost-ha", task=victim, reason="drill")
    box.advance(1)
    assert describe_service(box)["runningCount"] == 5
    stopping = box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[victim])["tasks"][0]
    assert (stopping["desiredStatus"], stopping["lastStatus"]) == ("STOPPED", "STOPPING")
    settle(box, 45)  # the stopping task holds its memory for 30 s; then the replacement fits
    tasks = running_tasks(box)
    assert len(tasks) == 6 and victim not in {t["taskArn"] for t in tasks}
    stopped = box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[victim])["tasks"][0]
    assert (stopped["lastStatus"], stopped["stoppedReason"]) == ("STOPPED", "drill")


def test_new_revision_rolls_out_within_min_and_max_percent(box: Sandbox) -> None:
    short_draining(box)  # old tasks drain 30 s each before they stop and free their instance
    old = stack(box)
    settle(box, 45)
    ecs = box.client("ecs")
    new = copy_revision(box, old)
    ecs.update_service(cluster="ghost-ha", service="ghost", taskDefinition=new)
    seen_max = 0
    for _ in range(40):
        box.advance(5)
        tasks = running_tasks(box)
        seen_max = max(seen_max, len(tasks))
        healthy = {
            (t["Target"]["Id"], t["Target"]["Port"]) for t in targets(box) if t["TargetHealth"]["State"] == "healthy"
        }
        assert len(healthy) >= 3, "minimum healthy 50% of 6"
    assert seen_max <= 12, "maximum 200% of 6"
    tasks = running_tasks(box)
    assert len(tasks) == 6 and {t["taskDefinitionArn"] for t in tasks} == {new}
    svc = describe_service(box)
    assert len(svc["deployments"]) == 1 and svc["deployments"][0]["rolloutState"] == "COMPLETED"
    assert svc["taskDefinition"] == new


def test_circuit_breaker_fails_and_rolls_back_an_unhealthy_rollout(box: Sandbox) -> None:
    old = stack(box)
    settle(box, 45)
    assert box.seeded is not None
    ec2, ecs = box.client("ec2"), box.client("ecs")
    # the rule goes away behind the service's back, then a new revision rolls out: it can never be healthy
    ec2.revoke_security_group_ingress(GroupId=box.seeded.instance_sg, IpPermissions=dynamic_ports_rule(box))
    new = copy_revision(box, old)
    dep = ecs.update_service(cluster="ghost-ha", service="ghost", taskDefinition=new)["service"]["deployments"][0]
    failed = None
    for _ in range(120):
        box.advance(5)
        deps = {d["id"]: d for d in describe_service(box)["deployments"]}
        if deps.get(dep["id"], {}).get("rolloutState") == "FAILED":
            failed = deps[dep["id"]]
            break
    assert failed is not None, "the circuit breaker never tripped"
    svc = describe_service(box)
    assert svc["taskDefinition"] == old, "rolled back to the last good revision"
    assert svc["deployments"][0]["taskDefinition"] == old
    assert any("deployment failed" in e["message"] for e in svc["events"])


def test_scaling_desired_count_down_stops_tasks(box: Sandbox) -> None:
    stack(box)
    settle(box, 45)
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", desiredCount=2)
    box.advance(1)
    assert len(running_tasks(box)) == 2
    assert describe_service(box)["runningCount"] == 2


# --- 7. guard rails -------------------------------------------------------------------------------------


def test_duplicate_active_service_is_rejected(box: Sandbox) -> None:
    td = stack(box)
    with pytest.raises(ClientError, match="not idempotent"):
        service(box, td)


def test_service_needs_a_target_group_on_a_load_balancer(box: Sandbox) -> None:
    assert box.seeded is not None
    capacity(box)
    tg = box.client("elbv2").create_target_group(
        Name="lonely", Protocol="HTTP", Port=80, VpcId=box.seeded.vpc_id, TargetType="instance"
    )["TargetGroups"][0]["TargetGroupArn"]
    with pytest.raises(ClientError, match="does not have an associated load balancer"):
        box.client("ecs").create_service(
            cluster="ghost-ha",
            serviceName="ghost",
            taskDefinition="ghost",
            desiredCount=1,
            loadBalancers=[{"targetGroupArn": tg, "containerName": "ghost", "containerPort": 2368}],
        )


def test_delete_cluster_refused_while_services_or_instances_remain(box: Sandbox) -> None:
    stack(box)
    ecs = box.client("ecs")
    with pytest.raises(ClientError) as err:
        ecs.delete_cluster(cluster="ghost-ha")
    assert err.value.response["Error"]["Code"] == "ClusterContainsServicesException"
    ecs.delete_service(cluster="ghost-ha", service="ghost", force=True)
    box.advance(1)
    assert describe_service(box)["status"] == "INACTIVE"
    with pytest.raises(ClientError) as err:
        ecs.delete_cluster(cluster="ghost-ha")
    assert err.value.response["Error"]["Code"] == "ClusterContainsContainerInstancesException"


def test_list_tasks_honours_service_name_and_defaults_to_running(box: Sandbox) -> None:
    stack(box)
    settle(box, 15)
    ecs = box.client("ecs")
    ecs.register_task_definition(
        family="other",
        networkMode="bridge",
        containerDefinitions=[{"name": "x", "image": "busybox", "memory": 64}],
    )
    ecs.create_service(cluster="ghost-ha", serviceName="other", taskDefinition="other", desiredCount=1)
    settle(box, 15)
    assert len(ecs.list_tasks(cluster="ghost-ha", serviceName="ghost")["taskArns"]) == 6
    assert len(ecs.list_tasks(cluster="ghost-ha", serviceName="other")["taskArns"]) == 1
    first = ecs.list_tasks(cluster="ghost-ha", serviceName="ghost", maxResults=4)
    assert len(first["taskArns"]) == 4 and first["nextToken"], "answers come in pages"
    pages = ecs.get_paginator("list_tasks").paginate(cluster="ghost-ha", serviceName="ghost", maxResults=4)
    assert sum(len(p["taskArns"]) for p in pages) == 6
    victim = ecs.list_tasks(cluster="ghost-ha", serviceName="other")["taskArns"][0]
    ecs.stop_task(cluster="ghost-ha", task=victim)
    assert victim not in ecs.list_tasks(cluster="ghost-ha")["taskArns"]
    assert victim in ecs.list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"]


def test_tasks_do_not_drift_to_stopped(box: Sandbox) -> None:
    stack(box)
    settle(box, 15)
    ecs = box.client("ecs")
    arns = ecs.list_tasks(cluster="ghost-ha")["taskArns"]
    for _ in range(6):
        tasks = ecs.describe_tasks(cluster="ghost-ha", tasks=arns)["tasks"]
    assert {t["lastStatus"] for t in tasks} == {"RUNNING"}


# --- 8. time --------------------------------------------------------------------------------------------


def test_scaled_clock_runs_faster_than_real_time() -> None:
    from ghostha.sandbox.clock import SimClock

    ticks = iter([100.0, 100.0, 102.0])
    clock = SimClock(scale=30)
    clock._t0 = 100.0
    import ghostha.sandbox.clock as clock_module

    real = clock_module.time.monotonic
    clock_module.time.monotonic = lambda: next(ticks)  # type: ignore[assignment]
    try:
        assert clock.seconds() == 0
        clock.advance(5)
        assert clock.seconds() == 5
        assert clock.seconds() == 65  # 2 real seconds at 30x, plus the 5 advanced
    finally:
        clock_module.time.monotonic = real  # type: ignore[assignment]


# --- 9. IAM ---------------------------------------------------------------------------------------------


def test_ecs_managed_policies_exist_and_the_seeded_instance_role_holds_one(box: Sandbox) -> None:
    """AWS managed policies exist in every account; the story's instance role holds the ECS one.

    AWS, "Amazon ECS container instance IAM role" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/
    instance_IAM_role.html): "Amazon ECS provides the AmazonEC2ContainerServiceforEC2Role managed IAM policy which
    contains the permissions needed to use the full Amazon ECS feature set. This managed policy can be attached to
    an IAM role and associated with your container instances." moto has none unless it loads all of them."""
    iam = box.client("iam")
    attached = iam.list_attached_role_policies(RoleName="ecsInstanceRole")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEC2ContainerServiceforEC2Role"]
    legacy = "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceRole"
    assert iam.get_policy(PolicyArn=legacy)["Policy"]["PolicyName"] == "AmazonEC2ContainerServiceRole"
    with pytest.raises(ClientError, match="NoSuchEntity"):
        iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/NoSuchPolicy")


def test_scale_in_events_say_draining_began_then_the_targets_deregistered_with_counts(box: Sandbox) -> None:
    """ECS service event messages (ECS developer guide, "Amazon ECS service event messages"): a scale-in with a load
    balancer reads "(service s) has begun draining connections on N tasks." and then "(service s) deregistered N
    targets in (target-group …)", with the counts of the whole scale-in, not one event per task."""
    stack(box)
    settle(box, 120)
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", desiredCount=4)
    settle(box, 10)
    messages = [e["message"] for e in describe_service(box)["events"]]
    began = next(i for i, m in enumerate(messages) if "has begun draining connections on" in m)
    dereg = next(i for i, m in enumerate(messages) if " deregistered " in m)
    assert messages[began] == "(service ghost) has begun draining connections on 2 tasks."
    assert messages[dereg].startswith("(service ghost) deregistered 2 targets in (target-group ")
    assert dereg < began, "newest first: the deregistration follows the start of draining"


def test_unhealthy_event_gives_the_targets_own_reason(box: Sandbox) -> None:
    """The service event names the reason ELB gives the target ("is unhealthy in (target-group …) due to (reason
    Request timed out)." for a target that times out: ELB API reference, TargetHealth, Target.Timeout)."""
    stack(box, rule=False, grace=0)
    settle(box, 60)
    messages = [e["message"] for e in describe_service(box)["events"]]
    unhealthy = [m for m in messages if " is unhealthy in " in m]
    assert unhealthy and all(m.endswith("due to (reason Request timed out).") for m in unhealthy)


def _fail_checks_of(monkeypatch: pytest.MonkeyPatch, victims: set[tuple[str, int]] | None) -> None:
    """ELB health checks fail for these (instance, port) targets only (None: for every target)."""
    from ghostha.sandbox.sim import Simulator

    original = Simulator._health_check

    def check(self: Simulator, ec2: object, elbv2: object, tg: object, t: dict[str, object]) -> object:
        if victims is None or (t["Id"], int(t["Port"])) in victims:  # type: ignore[call-overload]
            return "Target.ResponseCodeMismatch", "Health checks failed with these codes: [500]"
        return original(self, ec2, elbv2, tg, t)  # type: ignore[arg-type]

    monkeypatch.setattr(Simulator, "_health_check", check)


def test_an_unhealthy_task_is_replaced_first_and_stopped_once_its_replacement_is_healthy(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECS developer guide, "Deploy Amazon ECS services by replacing tasks": "If tasks become unhealthy, the Amazon
    ECS service scheduler will start replacement tasks first and maintain minimumHealthyPercent tasks until the
    replacement tasks become healthy. As the replacement tasks launch and become healthy, the unhealthy tasks will
    gradually be stopped." (https://docs.aws.amazon.com/AmazonECS/latest/userguide/deployment-type-ecs.html)"""
    stack(box, count=4, instance_type="t3.medium", grace=0)
    settle(box, 120)
    victim = next(t for t in running_tasks(box))
    ci = {c["containerInstanceArn"]: c["ec2InstanceId"] for c in container_instances(box)}
    key = (ci[victim["containerInstanceArn"]], victim["containers"][0]["networkBindings"][0]["hostPort"])
    _fail_checks_of(monkeypatch, {key})
    lowest_running = 4
    stopped_at = None
    for _ in range(30):
        box.advance(5)
        running = [t for t in running_tasks(box) if t["lastStatus"] == "RUNNING"]
        lowest_running = min(lowest_running, len(running))
        if victim["taskArn"] not in {t["taskArn"] for t in running_tasks(box)}:
            stopped_at = box.clock.seconds()
            break
    assert stopped_at is not None, "the unhealthy task is stopped in the end"
    messages = [e["message"] for e in reversed(describe_service(box)["events"])]
    started = next(i for i, m in enumerate(messages) if "has started 1 tasks" in m)
    stopped = next(i for i, m in enumerate(messages) if "has stopped 1 running tasks" in m)
    assert started < stopped, "the replacement starts first"
    assert lowest_running >= 4, "never fewer running tasks than desired while it is replaced"
    healthy = [t for t in targets(box) if t["TargetHealth"]["State"] == "healthy"]
    assert len(healthy) >= 4


def test_without_room_for_replacements_unhealthy_tasks_stop_one_by_one(
    box: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DeploymentConfiguration.minimumHealthyPercent (ECS API reference): "If any tasks are unhealthy and if
    maximumPercent doesn't allow the Amazon ECS scheduler to start replacement tasks, the scheduler stops the
    unhealthy tasks one-by-one — using the minimumHealthyPercent as a constraint — to clear up capacity to launch
    replacement tasks." """
    td = stack(box, count=4, breaker=False, grace=0)
    ecs = box.client("ecs")
    ecs.update_service(
        cluster="ghost-ha",
        service="ghost",
        taskDefinition=td,
        deploymentConfiguration={"maximumPercent": 100, "minimumHealthyPercent": 50},
    )
    settle(box, 120)
    _fail_checks_of(monkeypatch, None)
    counts = []
    for _ in range(20):
        box.advance(5)
        counts.append(sum(1 for t in running_tasks(box) if t["lastStatus"] == "RUNNING"))
    drops = [a - b for a, b in itertools.pairwise(counts)]
    assert min(counts) < 4, "unhealthy tasks are stopped"
    assert max(drops) <= 1, f"one by one, not all at once: running {counts}"
