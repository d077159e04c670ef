"""The sandbox's tasks that fail to start (an image no registry has) and ECS's service throttle logic, checked
through boto3 against the sandbox.

AWS's page: ECS developer guide, "Amazon ECS service throttle logic"
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html).
"""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from ghostha.sandbox.server import Sandbox
from ghostha.sandbox.sim import THROTTLE_MAX_SECONDS
from tests.conftest import (
    capacity,
    copy_revision,
    describe_service,
    dynamic_revision,
    open_dynamic_ports,
    running_tasks,
    service,
    settle,
)

THROTTLED = "(service ghost) is unable to consistently start tasks successfully."


def bad_revision(box: Sandbox, host_port: int = 0, image: str = "ghost:no-such-tag") -> str:
    """The family's next revision, as its latest but with `host_port` and an image the sandbox's registry does not
    have."""
    box.unpullable_images.add(image)
    ecs = box.client("ecs")
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    td["containerDefinitions"][0]["image"] = image
    td["containerDefinitions"][0]["portMappings"][0]["hostPort"] = host_port
    return str(
        ecs.register_task_definition(
            family="ghost",
            networkMode="bridge",
            requiresCompatibilities=["EC2"],
            containerDefinitions=td["containerDefinitions"],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def _stopped(box: Sandbox) -> list[dict[str, Any]]:
    ecs = box.client("ecs")
    arns = ecs.list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"]
    return list(ecs.describe_tasks(cluster="ghost-ha", tasks=arns)["tasks"]) if arns else []


def _launches(box: Sandbox) -> list[datetime]:
    """When the service started tasks, oldest first."""
    events = describe_service(box)["events"]
    return sorted(e["createdAt"] for e in events if "has started" in e["message"])


def test_a_task_whose_image_cannot_be_pulled_goes_from_pending_to_stopped(box: Sandbox) -> None:
    """ "Amazon ECS service throttle logic": tasks that "fail to enter the RUNNING state (progressing directly from a
    PENDING to a STOPPED status)"; a common cause: "The Amazon ECS container agent is unable to pull your task
    Docker image ... you also see CannotPullContainerError in your stopped task errors." The stop code is
    TaskFailedToStart (ECS API Reference, Task.stopCode)."""
    capacity(box)
    settle(box, 30)
    service(box, bad_revision(box), count=2, breaker=False)
    seen = set()
    for _ in range(6):
        box.advance(5)
        seen |= {t["lastStatus"] for t in running_tasks(box)}
    assert "RUNNING" not in seen
    stopped = _stopped(box)
    assert stopped
    for t in stopped:
        assert t["stopCode"] == "TaskFailedToStart"
        assert t["stoppedReason"] == (
            "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
            "docker.io/library/ghost:no-such-tag: docker.io/library/ghost:no-such-tag: not found"
        )
        assert "startedAt" not in t
        assert t["containers"][0]["reason"] == t["stoppedReason"]


def test_a_service_whose_tasks_keep_failing_to_start_is_throttled_up_to_27_minutes(box: Sandbox) -> None:
    """ "Amazon ECS service throttle logic": "If tasks for a service repeatedly fail to enter the RUNNING state ...,
    then the time between subsequent restart attempts is incrementally increased up to a maximum of 27 minutes ...
    If your service initiates the throttle logic, you receive the following service event message: (service
    service-name) is unable to consistently start tasks successfully." "Amazon ECS doesn't ever stop a failing
    service from retrying." """
    capacity(box)
    settle(box, 30)
    service(box, bad_revision(box), count=2, breaker=False)
    settle(box, 2 * 3600, step=10)
    messages = [e["message"] for e in describe_service(box)["events"]]
    assert THROTTLED in messages
    launches = _launches(box)
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(launches)]
    assert len(gaps) >= 6, f"it keeps retrying: {gaps}"
    assert gaps[-1] > gaps[1], f"the time between attempts grows: {gaps}"
    assert max(gaps) <= THROTTLE_MAX_SECONDS + 20, f"at most 27 minutes (plus the pull) apart: {gaps}"
    assert max(gaps) >= THROTTLE_MAX_SECONDS, f"up to 27 minutes apart: {gaps}"


def test_a_new_task_definition_ends_the_throttle_at_once(box: Sandbox) -> None:
    """ "Amazon ECS service throttle logic": "If you update your service to use a new task definition, your service
    returns to a normal, non-throttled state immediately." """
    capacity(box)
    settle(box, 30)
    open_dynamic_ports(box)
    good = dynamic_revision(box)  # ghost:5, which the registry has
    service(box, bad_revision(box), count=2, breaker=False)
    settle(box, 600, step=10)
    assert THROTTLED in [e["message"] for e in describe_service(box)["events"]]
    good = copy_revision(box, good)
    ecs = box.client("ecs")
    ecs.update_service(cluster="ghost-ha", service="ghost", taskDefinition=good)
    settle(box, 15)
    running = [t for t in running_tasks(box) if t["lastStatus"] == "RUNNING"]
    assert len(running) == 2
    assert {t["taskDefinitionArn"] for t in running} == {good}


def test_tasks_stopped_after_running_do_not_throttle(box: Sandbox) -> None:
    """ "Amazon ECS service throttle logic": "Tasks that are stopped after they reach the RUNNING state don't start
    the throttle logic or the associated service event message. For example, ... failed Elastic Load Balancing
    health checks". Here the targets never turn healthy (no rule for the dynamic ports)."""
    capacity(box)
    settle(box, 30)
    service(box, dynamic_revision(box), count=2, breaker=False, grace=0)
    settle(box, 900, step=10)
    messages = [e["message"] for e in describe_service(box)["events"]]
    assert any("is unhealthy in (target-group" in m for m in messages)
    assert THROTTLED not in messages


def test_the_circuit_breaker_counts_tasks_that_fail_to_start_and_rolls_back(box: Sandbox) -> None:
    """ECS developer guide, "How the Amazon ECS deployment circuit breaker detects failures": the first stage
    "monitors tasks that fail to reach the RUNNING state"; a failed deployment with rollback on returns to the
    last completed one. The event: "(service ghost) (deployment …) deployment failed: tasks failed to start." """
    capacity(box)
    settle(box, 30)
    open_dynamic_ports(box)
    good = dynamic_revision(box)
    service(box, good, count=4)
    settle(box, 120)
    bad = bad_revision(box)
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", taskDefinition=bad)
    settle(box, 600)
    svc = describe_service(box)
    messages = [e["message"] for e in svc["events"]]
    assert any(m.endswith("deployment failed: tasks failed to start.") for m in messages)
    assert svc["taskDefinition"] == good
    running = [t for t in running_tasks(box) if t["lastStatus"] == "RUNNING"]
    assert len(running) == 4 and {t["taskDefinitionArn"] for t in running} == {good}
