"""Shared fixtures: one sandbox for the whole session, its state reset (and re-seeded) for each test."""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console

from ghostha.cli import Runtime, cli
from ghostha.sandbox.server import Sandbox


@pytest.fixture(autouse=True)
def _no_real_aws(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Placeholder credentials and no profile or config files: nothing can reach a real account (except the
    opt-in smoke run marked `aws`, skipped unless GHOSTHA_REAL_AWS=1)."""
    if request.node.get_closest_marker("aws") is not None:
        return
    empty = tmp_path_factory.getbasetemp() / "no-aws"
    empty.mkdir(exist_ok=True)
    for key in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "GHOSTHA_CONFIG",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def _own_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Per-user state (sandboxes, stack locks) in a directory of this test's own: parallel runs never collide."""
    state = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    return state / "ghostha"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    box = Sandbox().start(seed_story=False)
    yield box
    box.stop()


@pytest.fixture
def box(sandbox_server: Sandbox) -> Sandbox:
    """The session's sandbox, reset to the story's starting point."""
    sandbox_server.reset()
    return sandbox_server


# the ECS-optimized AMI as EC2 resolves it at each launch (moto bundles the parameter)
ECS_AMI = "resolve:ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"


def short_draining(box: Sandbox, seconds: int = 30) -> None:
    """The target group's deregistration delay set as `ghostha doctor` recommends for Ghost (AWS's default: 300 s)."""
    assert box.seeded is not None
    box.client("elbv2").modify_target_group_attributes(
        TargetGroupArn=box.seeded.target_group_arn,
        Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": str(seconds)}],
    )


@pytest.fixture
def live(box: Sandbox) -> Iterator[Sandbox]:
    """The session's sandbox with its data plane on (tasks serve HTTP, the ALB stand-in, real health checks)."""
    box.start_dataplane()
    try:
        yield box
    finally:
        box.stop_dataplane()


def user_data(cluster: str | None) -> str:
    text = "#!/bin/bash\n" + (f"echo ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n" if cluster else "")
    return base64.b64encode(text.encode()).decode()


def capacity(
    box: Sandbox,
    cluster: str = "ghost-ha",
    count: int = 2,
    profile: str | None = "ecsInstanceRole",
    instance_type: str = "t3.small",
    create_cluster: bool = True,
) -> str:
    """A cluster and an Auto Scaling group of `count` instances for it; returns the group's name."""
    assert box.seeded is not None
    if create_cluster:
        box.client("ecs").create_cluster(clusterName=cluster)
    data: dict[str, Any] = {
        "ImageId": ECS_AMI,
        "InstanceType": instance_type,
        "UserData": user_data(cluster),
        "SecurityGroupIds": [box.seeded.instance_sg],
    }
    if profile:
        data["IamInstanceProfile"] = {"Name": profile}
    name = f"{cluster}-asg"
    box.client("ec2").create_launch_template(LaunchTemplateName=name, LaunchTemplateData=data)
    box.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name},
        MinSize=count,
        MaxSize=count,
        DesiredCapacity=count,
        VPCZoneIdentifier=",".join(box.seeded.subnets),
    )
    return name


def dynamic_revision(box: Sandbox) -> str:
    """Register the story's new revision: the latest ghost revision with host port 0."""
    ecs = box.client("ecs")
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    containers = td["containerDefinitions"]
    containers[0]["portMappings"][0]["hostPort"] = 0
    return str(
        ecs.register_task_definition(
            family="ghost",
            networkMode="bridge",
            requiresCompatibilities=["EC2"],
            containerDefinitions=containers,
        )["taskDefinition"]["taskDefinitionArn"]
    )


def dynamic_ports_rule(box: Sandbox) -> list[dict[str, Any]]:
    """The ingress rule from the ALB's group to the dynamic host ports, as IpPermissions."""
    assert box.seeded is not None
    return [
        {"IpProtocol": "tcp", "FromPort": 32768, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": box.seeded.alb_sg}]}
    ]


def open_dynamic_ports(box: Sandbox) -> None:
    assert box.seeded is not None
    box.client("ec2").authorize_security_group_ingress(
        GroupId=box.seeded.instance_sg, IpPermissions=dynamic_ports_rule(box)
    )


def copy_revision(box: Sandbox, task_definition: str) -> str:
    """Register the same containers again as the family's next revision; returns its ARN."""
    ecs = box.client("ecs")
    td = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    return str(
        ecs.register_task_definition(
            family=td["family"],
            networkMode="bridge",
            requiresCompatibilities=["EC2"],
            containerDefinitions=td["containerDefinitions"],
        )["taskDefinition"]["taskDefinitionArn"]
    )


SPREAD = [
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
]


def service(
    box: Sandbox,
    task_definition: str,
    cluster: str = "ghost-ha",
    count: int = 6,
    breaker: bool = True,
    grace: int = 60,
    **extra: Any,
) -> dict[str, Any]:
    assert box.seeded is not None
    params: dict[str, Any] = {
        "cluster": cluster,
        "serviceName": "ghost",
        "taskDefinition": task_definition,
        "desiredCount": count,
        "launchType": "EC2",
        "loadBalancers": [
            {"targetGroupArn": box.seeded.target_group_arn, "containerName": "ghost", "containerPort": 2368}
        ],
        "placementStrategy": SPREAD,
        "deploymentConfiguration": {
            "maximumPercent": 200,
            "minimumHealthyPercent": 50,
            "deploymentCircuitBreaker": {"enable": breaker, "rollback": breaker},
        },
        "healthCheckGracePeriodSeconds": grace,
    }
    return dict(box.client("ecs").create_service(**(params | extra))["service"])


def describe_service(box: Sandbox, cluster: str = "ghost-ha", name: str = "ghost") -> dict[str, Any]:
    return dict(box.client("ecs").describe_services(cluster=cluster, services=[name])["services"][0])


def container_instances(box: Sandbox, cluster: str = "ghost-ha") -> list[dict[str, Any]]:
    ecs = box.client("ecs")
    arns = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    if not arns:
        return []
    return list(ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"])


def running_tasks(box: Sandbox, cluster: str = "ghost-ha") -> list[dict[str, Any]]:
    ecs = box.client("ecs")
    arns = ecs.list_tasks(cluster=cluster)["taskArns"]
    if not arns:
        return []
    return list(ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"])


def targets(box: Sandbox) -> list[dict[str, Any]]:
    assert box.seeded is not None
    return list(
        box.client("elbv2").describe_target_health(TargetGroupArn=box.seeded.target_group_arn)[
            "TargetHealthDescriptions"
        ]
    )


def settle(box: Sandbox, seconds: float, step: float = 5.0) -> None:
    """Let simulated time pass in steps, as a poll loop would."""
    elapsed = 0.0
    while elapsed < seconds:
        box.advance(step)
        elapsed += step


# --- running the command line in-process against the sandbox, on simulated time -----------------------------


@dataclass
class Ran:
    exit_code: int
    out: str
    err: str
    exception: BaseException | None


def write_config(box: Sandbox, path: Path, **overrides: Any) -> Path:
    """The sandbox's config for the seeded stack, with `section.key` overrides (None deletes a key)."""
    assert box.seeded is not None
    data = box.seeded.config(box.endpoint, poll_seconds=5)
    for dotted, value in overrides.items():
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node.setdefault(p, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture
def deployed(box: Sandbox, tmp_path: Path) -> Path:
    """The story's stack, deployed by `up` from the seed; returns its config file."""
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    return cfg


def run_cli(
    box: Sandbox,
    args: list[str],
    sleep: Callable[[float], None] | None = None,
    answer: str | None = None,
    clock: Callable[[], float] | None = None,
) -> Ran:
    """`ghostha ARGS` in-process: simulated clock and sleep (advancing the sandbox), captured consoles."""
    out, err = io.StringIO(), io.StringIO()
    runtime = Runtime(
        clock=clock or box.clock.seconds,
        sleep=sleep or box.advance,
        out=Console(file=out, width=120, color_system=None),
        err=Console(file=err, width=120, color_system=None),
        confirm=(lambda _prompt: answer) if answer is not None else None,
    )
    result = CliRunner().invoke(cli, args, obj=runtime)
    return Ran(result.exit_code, out.getvalue() + result.stdout, err.getvalue() + result.stderr, result.exception)


def mutating(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [r for r in requests if is_mutating(r[1])]


def ctrl_c_on_sleep(box: Sandbox, n: int) -> Callable[[float], None]:
    """A sleep for the runtime that lets simulated time pass, and is Ctrl-C on its n-th call."""
    calls = 0

    def sleep(seconds: float) -> None:
        nonlocal calls
        calls += 1
        if calls == n:
            raise KeyboardInterrupt
        box.advance(seconds)

    return sleep


# --- fault injection: botocore event handlers on the sessions ghostha builds ----------------------------------


def on_sessions(monkeypatch: pytest.MonkeyPatch, event: str, handler: Callable[..., Any]) -> None:
    """Register `handler` for botocore `event` on every session `ghostha.aws` builds (test-only)."""
    import ghostha.aws as aws

    original = aws._botocore_session

    def with_handler() -> Any:
        session = original()
        session.register(event, handler)
        return session

    monkeypatch.setattr(aws, "_botocore_session", with_handler)


class FakeHttp:
    """What a `before-call` handler returns as the HTTP side of a short-circuited call."""

    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def aws_error(code: str, message: str, status: int = 400) -> tuple[FakeHttp, dict[str, Any]]:
    """A `before-call` handler's answer that makes botocore raise ClientError(code, message)."""
    return FakeHttp(status), {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }


def is_mutating(action: str) -> bool:
    return not action.startswith(("Describe", "List", "Get"))


class Canned:
    """A loopback HTTP server giving every GET and POST one canned answer: `body` (JSON unless bytes), `status`
    and `content_type`, changeable between requests; `paths` records what was asked."""

    def __init__(self, body: Any = None, status: int = 200, content_type: str = "application/json") -> None:
        self.body, self.status, self.content_type = body if body is not None else {}, status, content_type
        self.paths: list[str] = []
        canned = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                canned.paths.append(self.path)
                raw = canned.body if isinstance(canned.body, bytes) else json.dumps(canned.body).encode()
                self.send_response(canned.status)
                self.send_header("Content-Type", canned.content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
