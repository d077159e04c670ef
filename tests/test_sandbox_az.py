"""The sandbox's Availability Zone rebalancing, checked through boto3 against the sandbox.

AWS's pages: ECS API Reference, CreateService / UpdateService `availabilityZoneRebalancing`
(https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html); ECS developer guide, "Balancing
an Amazon ECS service across Availability Zones"
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-rebalancing.html) and "Track Amazon ECS
Availability Zone rebalancing" (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/track-service-rebalancing.html).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    capacity,
    container_instances,
    describe_service,
    dynamic_revision,
    open_dynamic_ports,
    running_tasks,
    service,
    settle,
    targets,
)


def _stack(box: Sandbox, **kw: Any) -> str:
    """Two t3.medium instances in two AZs (room for all six tasks on one), the host-port-0 revision, the rule,
    and the six-task service."""
    capacity(box, instance_type="t3.medium")
    settle(box, 30)
    td = dynamic_revision(box)
    open_dynamic_ports(box)
    service(box, td, **kw)
    settle(box, 60)
    return td


def _per_az(box: Sandbox) -> Counter[str]:
    return Counter(t["availabilityZone"] for t in running_tasks(box) if t["lastStatus"] == "RUNNING")


def _lose_an_az(box: Sandbox) -> tuple[str, str]:
    """Terminate the instance in the second AZ; the service moves all six tasks to the survivor, and the group
    launches a replacement in the lost AZ. Returns (surviving AZ, lost AZ)."""
    cis = container_instances(box)
    az = {
        c["ec2InstanceId"]: next(a["value"] for a in c["attributes"] if a["name"] == "ecs.availability-zone")
        for c in cis
    }
    victim = max(az, key=lambda i: az[i])
    lost = az[victim]
    kept = next(a for i, a in az.items() if i != victim)
    box.client("ec2").terminate_instances(InstanceIds=[victim])
    settle(box, 20)
    assert _per_az(box) == {kept: 6}, "six tasks on the survivor before the replacement instance registers"
    return kept, lost


def _messages(box: Sandbox) -> list[str]:
    return [e["message"] for e in reversed(describe_service(box)["events"])]


def test_rebalancing_defaults_to_enabled_and_update_keeps_or_changes_it(box: Sandbox) -> None:
    """CreateService / UpdateService, availabilityZoneRebalancing (ECS API Reference): "For create service requests,
    when no value is specified for AvailabilityZoneRebalancing, Amazon ECS defaults the value to ENABLED. For update
    service requests, when no value is specified for AvailabilityZoneRebalancing, Amazon ECS defaults to the
    existing service's AvailabilityZoneRebalancing value." DescribeServices returns it ("Track Amazon ECS
    Availability Zone rebalancing": "The response will be either ENABLED or DISABLED.")."""
    _stack(box)
    assert describe_service(box)["availabilityZoneRebalancing"] == "ENABLED"
    ecs = box.client("ecs")
    ecs.update_service(cluster="ghost-ha", service="ghost", desiredCount=6)
    assert describe_service(box)["availabilityZoneRebalancing"] == "ENABLED"
    answer = ecs.update_service(cluster="ghost-ha", service="ghost", availabilityZoneRebalancing="DISABLED")
    assert answer["service"]["availabilityZoneRebalancing"] == "DISABLED"
    assert describe_service(box)["availabilityZoneRebalancing"] == "DISABLED"
    assert len(describe_service(box)["deployments"]) == 1, "the change does not start a deployment"


def test_binpack_service_defaults_to_disabled_and_an_explicit_value_is_kept(box: Sandbox) -> None:
    """AWS's notice of the ENABLED default (quoted in DistributedScience/Distributed-CellProfiler#198): "Services
    that are not compatible — such as those using the binpack placement strategy — will default to false";
    CreateService keeps an explicit value."""
    capacity(box)
    settle(box, 30)
    td = dynamic_revision(box)
    binpack = [{"type": "binpack", "field": "memory"}]
    created = service(box, td, placementStrategy=binpack)
    assert created["availabilityZoneRebalancing"] == "DISABLED"
    box.client("ecs").delete_service(cluster="ghost-ha", service="ghost", force=True)
    settle(box, 400)
    created = service(box, td, availabilityZoneRebalancing="DISABLED")
    assert created["availabilityZoneRebalancing"] == "DISABLED"


def test_an_unbalanced_service_rebalances_when_the_lost_az_has_an_instance_again(box: Sandbox) -> None:
    """ "Balancing an Amazon ECS service across Availability Zones": "Amazon ECS starts monitoring a service after it
    reaches the steady state ... when it detects an imbalance ...: Sends a service event indicating that Availability
    Zone rebalancing is starting. Starts tasks in Availability Zones with the fewest number of running tasks. Stops
    the tasks in Availability Zones with the largest number of running tasks." Event words from "Track Amazon ECS
    Availability Zone rebalancing": "service (service-name) is not AZ balanced with number-tasks tasks in
    Availability Zone 1, number-tasks in Availability Zone 2 ... AZ Rebalancing in progress.", "service-name has
    started number-tasks tasks in Availability Zone to AZ Rebalance: task-ids.", "service-name has stopped
    number-tasks running tasks in Availability Zone due to AZ rebalancing: task-id.", "service (service-name) is AZ
    balanced with number-tasks tasks in Availability Zone 1, number-tasks tasks in Availability Zone 2"."""
    _stack(box)
    kept, lost = _lose_an_az(box)
    healthy_during: list[int] = []
    rebalancing = False
    for _ in range(80):
        box.advance(5)
        messages = _messages(box)
        rebalancing = rebalancing or any("is not AZ balanced" in m for m in messages)
        if rebalancing:
            healthy_during.append(sum(1 for t in targets(box) if t["TargetHealth"]["State"] == "healthy"))
        if any("is AZ balanced" in m for m in messages):
            break
    messages = _messages(box)
    start = next(i for i, m in enumerate(messages) if "is not AZ balanced" in m)
    assert messages[start] == (
        f"service (ghost) is not AZ balanced with 6 tasks in {kept} and 0 in {lost}. AZ Rebalancing in progress."
    ) or messages[start] == (
        f"service (ghost) is not AZ balanced with 0 tasks in {lost} and 6 in {kept}. AZ Rebalancing in progress."
    )
    started = next(i for i, m in enumerate(messages) if m.startswith(f"ghost has started 3 tasks in {lost} to AZ"))
    stopped = next(i for i, m in enumerate(messages) if "due to AZ rebalancing" in m)
    assert messages[stopped].startswith(f"ghost has stopped 3 running tasks in {kept} due to AZ rebalancing: ")
    done = next(i for i, m in enumerate(messages) if "is AZ balanced" in m)
    assert start < started < stopped < done
    assert set(messages[done].removeprefix("service (ghost) is AZ balanced with ").rstrip(".").split(" and ")) == {
        f"3 tasks in {kept}",
        f"3 tasks in {lost}",
    }
    assert min(healthy_during) >= 6, f"never fewer than six healthy targets while rebalancing: {healthy_during}"
    settle(box, 60)
    assert _per_az(box) == {kept: 3, lost: 3}
    stopped_tasks = box.client("ecs").list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"]
    reasons = {
        t["stoppedReason"]
        for t in box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=stopped_tasks)["tasks"]
        if "AZ rebalancing" in t["stoppedReason"]
    }
    assert reasons == {f"Task stopped due to AZ rebalancing ({kept})"}


def test_with_rebalancing_disabled_nothing_moves(box: Sandbox) -> None:
    """ "Balancing an Amazon ECS service across Availability Zones": rebalancing is a feature "you can enable";
    with availabilityZoneRebalancing DISABLED the scheduler leaves the tasks where they run (new tasks are still
    placed by the placement strategy)."""
    _stack(box, availabilityZoneRebalancing="DISABLED")
    kept, _lost = _lose_an_az(box)
    settle(box, 400)
    assert _per_az(box) == {kept: 6}
    assert not [m for m in _messages(box) if "AZ balanced" in m or "AZ Rebalance" in m]
    assert len(container_instances(box)) == 2, "the replacement instance in the lost AZ is there, and unused"


def test_no_rebalancing_during_a_deployment(box: Sandbox) -> None:
    """ "Balancing an Amazon ECS service across Availability Zones": "Amazon ECS starts monitoring a service after it
    reaches the steady state": while a deployment rolls out (no steady state) no rebalancing starts."""
    td = _stack(box)
    _lose_an_az(box)
    ecs = box.client("ecs")
    ecs.update_service(cluster="ghost-ha", service="ghost", taskDefinition=td, forceNewDeployment=True)
    for _ in range(40):
        box.advance(5)
        svc = describe_service(box)
        if len(svc["deployments"]) > 1:
            assert not [m for m in _messages(box) if "is not AZ balanced" in m]
        else:
            break
    assert len(describe_service(box)["deployments"]) == 1
