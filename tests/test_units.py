"""Pure parts without the sandbox: the AWS client factory, error translation, retries, task revisions, verdicts."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ghostha import taskdef
from ghostha.aws import Aws, is_loopback
from ghostha.config import parse
from ghostha.errors import AwsError, from_boto
from ghostha.execute import _call
from ghostha.observe import Observed
from ghostha.plan import Step
from ghostha.status import ago, report

CFG = parse({"stack": "ghost-ha", "network": {"subnets": ["subnet-a", "subnet-b"], "security_group": "sg-1"}})


def client_error(code: str, message: str, op: str = "CreateService") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, op)


def test_clients_use_standard_retries_user_agent_and_the_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
    ecs = Aws(region="eu-west-1").client("ecs")
    assert ecs.meta.endpoint_url == "http://127.0.0.1:4566"
    assert ecs.meta.region_name == "eu-west-1"
    assert ecs.meta.config.retries["mode"] == "standard"
    assert "ghostha/" in ecs.meta.config.user_agent_extra
    explicit = Aws(region="eu-west-1", endpoint_url="http://localhost:9").client("ecs")
    assert explicit.meta.endpoint_url == "http://localhost:9", "the config/flag wins over the variable"


def test_loopback_endpoints_get_placeholder_credentials_others_do_not(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    assert is_loopback("http://127.0.0.1:5000") and is_loopback("http://localhost:1") and is_loopback("http://[::1]:1")
    assert not is_loopback("https://ecs.us-east-1.amazonaws.com") and not is_loopback(None)
    local = Aws(region="us-east-1", endpoint_url="http://127.0.0.1:1").session().get_credentials()
    assert local is not None and local.access_key == "ghostha-local"
    assert Aws(region="us-east-1").session().get_credentials() is None


@pytest.mark.parametrize(
    ("code", "message", "hint"),
    [
        ("AccessDeniedException", "not authorized to perform: ecs:CreateService", "IAM permission"),
        (
            "InvalidParameterException",
            "You cannot specify an IAM role for services that require a service linked role.",
            "service.role to null",
        ),
        ("InvalidParameterException", "Unable to assume the service linked role.", "create-service-linked-role"),
        ("ValidationError", "Invalid IAM Instance Profile name", "takes a few seconds"),
    ],
)
def test_known_aws_errors_get_a_hint(code: str, message: str, hint: str) -> None:
    err = from_boto(client_error(code, message))
    assert isinstance(err, AwsError)
    assert err.message.startswith("CreateService failed: ") and message in err.message
    assert err.hint is not None and hint in err.hint


def test_unusable_instance_profile_is_retried_then_succeeds() -> None:
    attempts: list[float] = []

    class Fake:
        calls = 0

        def create_auto_scaling_group(self, **kw: Any) -> dict[str, Any]:
            Fake.calls += 1
            if Fake.calls < 3:
                raise client_error("ValidationError", "Invalid IAM Instance Profile name", "CreateAutoScalingGroup")
            return {"ok": kw}

    class FakeAws:
        def client(self, name: str) -> Any:
            return Fake()

    step = Step("create-auto-scaling-group", "group", service="autoscaling", operation="create_auto_scaling_group")
    result = _call(FakeAws(), step, {"AutoScalingGroupName": "g"}, attempts.append)  # type: ignore[arg-type]
    assert result == {"ok": {"AutoScalingGroupName": "g"}} and len(attempts) == 2


def test_other_errors_are_not_retried() -> None:
    class Fake:
        def create_service(self, **kw: Any) -> None:
            raise client_error("AccessDeniedException", "no")

    class FakeAws:
        def client(self, name: str) -> Any:
            return Fake()

    step = Step("create-service", "service", service="ecs", operation="create_service")
    slept: list[float] = []
    with pytest.raises(AwsError):
        _call(FakeAws(), step, {}, slept.append)  # type: ignore[arg-type]
    assert slept == []


TD = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:1:task-definition/ghost:3",
    "family": "ghost",
    "revision": 3,
    "status": "ACTIVE",
    "registeredAt": "2026-01-01",
    "requiresAttributes": [{"name": "x"}],
    "compatibilities": ["EC2"],
    "networkMode": "bridge",
    "containerDefinitions": [
        {"name": "sidecar", "image": "x", "portMappings": [{"containerPort": 2368, "hostPort": 9000}]},
        {"name": "ghost", "image": "ghost:5", "portMappings": [{"containerPort": 2368, "hostPort": 80}]},
    ],
}


def test_dynamic_revision_changes_only_the_configured_mapping() -> None:
    kwargs = taskdef.dynamic_revision(TD, {"team": "blog"}, "ghost", 2368)
    assert not set(kwargs) & taskdef.READ_ONLY
    assert kwargs["containerDefinitions"][1]["portMappings"][0]["hostPort"] == 0
    assert kwargs["containerDefinitions"][0]["portMappings"][0]["hostPort"] == 9000
    assert kwargs["tags"] == [{"key": "team", "value": "blog"}]
    assert TD["containerDefinitions"][1]["portMappings"][0]["hostPort"] == 80, "the input is not modified"
    with pytest.raises(ValueError):
        taskdef.dynamic_revision(TD, {}, "ghost", 8080)


def _task(i: int, instance: str, port: int, revision: str = "ghost:2") -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:r:1:task/c/t{i}",
        "taskDefinitionArn": f"arn:aws:ecs:r:1:task-definition/{revision}",
        "containerInstanceArn": f"ci-{instance}",
        "lastStatus": "RUNNING",
        "availabilityZone": "us-east-1a" if instance == "i-1" else "us-east-1b",
        "containers": [{"name": "ghost", "networkBindings": [{"containerPort": 2368, "hostPort": port}]}],
    }


def _observed(tasks: list[dict[str, Any]], deployments: list[dict[str, Any]], desired: int = 4) -> Observed:
    cis = [
        {"containerInstanceArn": f"ci-{i}", "ec2InstanceId": i, "status": "ACTIVE", "agentConnected": True}
        for i in ("i-1", "i-2")
    ]
    health = [
        {
            "Target": {
                "Id": t["containerInstanceArn"][3:],
                "Port": t["containers"][0]["networkBindings"][0]["hostPort"],
            },
            "TargetHealth": {"State": "healthy"},
        }
        for t in tasks
    ]
    service = {
        "serviceName": "ghost",
        "status": "ACTIVE",
        "desiredCount": desired,
        "runningCount": len(tasks),
        "taskDefinition": "arn:aws:ecs:r:1:task-definition/ghost:2",
        "deployments": deployments,
    }
    return Observed(
        stack="ghost-ha",
        region="us-east-1",
        cluster={
            "clusterName": "ghost-ha",
            "status": "ACTIVE",
            "tags": [{"key": "ghostha:stack", "value": "ghost-ha"}],
        },
        container_instances=tuple(cis),
        service=service,
        tasks=tuple(tasks),
        target_health=tuple(health),
        load_balancer={"LoadBalancerName": "ghost-elb", "DNSName": "ghost-elb.example"},
        target_group={"TargetGroupName": "ghost-tg", "TargetGroupArn": "arn:tg"},
    )


CFG4 = dataclasses.replace(CFG, service=dataclasses.replace(CFG.service, desired_count=4))


def test_verdict_names_a_failed_rollout_and_the_revision_rolled_back_to() -> None:
    tasks = [_task(i, "i-1" if i % 2 else "i-2", 32768 + i) for i in range(4)]
    deps = [
        {"id": "d2", "status": "PRIMARY", "rolloutState": "IN_PROGRESS", "taskDefinition": "arn:x/ghost:2"},
        {"id": "d3", "status": "ACTIVE", "rolloutState": "FAILED", "taskDefinition": "arn:x/ghost:3"},
    ]
    r = report(CFG4, _observed(tasks, deps))
    assert r["verdict"] == "DEGRADED" and "rollout FAILED, rolled back to ghost:2" in r["reason"]
    assert r["healthy"] is False


def test_spread_warns_when_one_instance_holds_more_than_its_share() -> None:
    tasks = [_task(i, "i-1", 32768 + i) for i in range(3)] + [_task(9, "i-2", 32768)]
    deps = [{"id": "d2", "status": "PRIMARY", "rolloutState": "COMPLETED", "taskDefinition": "arn:x/ghost:2"}]
    r = report(CFG4, _observed(tasks, deps))
    assert r["verdict"] == "HEALTHY"
    assert r["spread"]["warning"] and "i-1 runs 3 tasks" in r["spread"]["warning"]


def test_ago_reads_like_a_person() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert ago(now - timedelta(seconds=42), now) == "42s"
    assert ago(now - timedelta(seconds=200), now) == "3m 20s"
    assert ago(now - timedelta(hours=2, minutes=5), now) == "2h 05m"
    assert ago(None, now) is None
