"""Tasks that never start (an image no registry has): `up` fails fast saying so, whether ECS's circuit breaker
fails the rollout first or ECS throttles the service ("Amazon ECS service throttle logic",
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/service-throttle-logic.html), and `status` says the
service is throttled."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostha import config
from ghostha.aws import Aws
from ghostha.errors import RolloutFailed
from ghostha.sandbox.server import Sandbox
from ghostha.waiting import Deadline, NoProgress, wait_service
from tests.conftest import describe_service, run_cli, settle, write_config
from tests.test_sandbox_throttle import bad_revision

BAD_IMAGE = "ghost:no-such-tag"  # bad_revision's
PULL_HINT = "the instances cannot pull the task's image"


def test_up_with_an_image_that_cannot_be_pulled_fails_on_the_breaker_with_the_pull_error(
    box: Sandbox, tmp_path: Path
) -> None:
    """The circuit breaker counts tasks that never reach RUNNING (ECS developer guide, "How the Amazon ECS deployment
    circuit breaker detects failures"): the rollout FAILs; `up` says so with the stopped tasks' CannotPullContainerError
    and a hint about the image, not about security groups."""
    bad_revision(box, host_port=80)
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 1, ran.out + ran.err
    assert "failed: ECS deployment circuit breaker: tasks failed to start." in ran.err
    assert (
        f"CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref "
        f"docker.io/library/{BAD_IMAGE}" in ran.err
    )
    assert PULL_HINT in ran.err
    assert "security group" not in ran.err


def test_the_wait_fails_fast_on_the_throttle_event(box: Sandbox, deployed: Path) -> None:
    """A service whose tasks keep failing to start (here its circuit breaker is off) is throttled by ECS, which
    "doesn't ever stop a failing service from retrying": the wait ends at the event, with its words, the stopped
    tasks' reason and the hint, well before its deadline."""
    bad = bad_revision(box)
    ecs = box.client("ecs")
    answer = ecs.update_service(
        cluster="ghost-ha",
        service="ghost",
        taskDefinition=bad,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": False, "rollback": False}},
    )
    dep = next(d for d in answer["service"]["deployments"] if d["status"] == "PRIMARY")
    cfg = config.load(str(deployed))
    aws = Aws(region="us-east-1", endpoint_url=box.endpoint, max_attempts=2)
    deadline = Deadline(clock=box.clock.seconds, sleep=box.advance, seconds=3600, interval=5)
    tg = box.client("elbv2").describe_target_groups(Names=["ghost-tg"])["TargetGroups"][0]["TargetGroupArn"]
    with pytest.raises(RolloutFailed) as failed:
        wait_service(aws, cfg, dep["id"], bad, tg, deadline, NoProgress(), events_since=box.clock.now())
    err = failed.value
    assert str(err.args[0]) == (
        "service ghost cannot start its tasks: (service ghost) is unable to consistently start tasks successfully."
    )
    assert any("CannotPullContainerError" in d for d in err.details)
    assert err.hint is not None and PULL_HINT in err.hint
    assert deadline.remaining > 3000, "fails fast, not at the deadline"


def test_status_says_the_service_is_throttled_with_the_stopped_reason(box: Sandbox, deployed: Path) -> None:
    bad = bad_revision(box)
    box.client("ecs").update_service(
        cluster="ghost-ha",
        service="ghost",
        taskDefinition=bad,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": False, "rollback": False}},
    )
    settle(box, 600)  # the old tasks drain for 300 s before their memory is free for the new ones
    assert any("is unable to consistently" in e["message"] for e in describe_service(box)["events"])
    ran = run_cli(box, ["--config", str(deployed), "status", "--json"])
    assert ran.exit_code == 1
    report = json.loads(ran.out)
    assert report["service"]["throttled"] == "(service ghost) is unable to consistently start tasks successfully."
    assert (
        "tasks keep failing to start, and ECS throttles their launches (newest stopped task: "
        "CannotPullContainerError" in report["reason"]
    )
    table = run_cli(box, ["--config", str(deployed), "status"])
    assert "tasks keep failing to start" in table.out


def test_the_pull_hint_also_reads_the_containers_reasons() -> None:
    """On the EC2 launch type the pull error can be a container's reason while the task's says only that an
    essential container stopped: the hint is about the image either way."""
    from ghostha.waiting import failure_hint

    task = {"stoppedReason": "Essential container in task exited", "stopCode": "TaskFailedToStart"}
    pulled = {**task, "containers": [{"reason": "CannotPullContainerError: pull image manifest has been retried"}]}
    assert PULL_HINT in failure_hint([pulled])
    assert PULL_HINT not in failure_hint([task])
