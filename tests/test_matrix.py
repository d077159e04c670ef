"""The bad-input matrix: config files, environment and arguments a user gets wrong.

Each case asserts the documented exit code, one `error:` line (a preflight may list its problems below it, one
indented line each; then at most one `hint:` line), the problem named, no traceback, and no mutating AWS call
reaching the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ghostha.sandbox.server import Sandbox
from tests.conftest import aws_error, mutating, on_sessions, run_cli, write_config

EXIT_FAILED, EXIT_USAGE = 1, 2


@dataclass
class World:
    box: Sandbox
    tmp: Path
    monkeypatch: pytest.MonkeyPatch

    def config(self, **overrides: Any) -> str:
        return str(write_config(self.box, self.tmp / "g.yaml", **overrides))

    def raw(self, data: bytes) -> str:
        path = self.tmp / "raw.yaml"
        path.write_bytes(data)
        return str(path)

    def good_yaml(self) -> bytes:
        return Path(self.config()).read_bytes()


Case = tuple[Callable[[World], list[str]], int, str]


def cfg(**overrides: Any) -> Callable[[World], list[str]]:
    """`status` with the sandbox's config, some keys overridden (dotted paths)."""
    return lambda w: ["--config", w.config(**overrides), "status"]


def up_with(**overrides: Any) -> Callable[[World], list[str]]:
    return lambda w: ["--config", w.config(**overrides), "up", "--yes"]


def args(*extra: str, command: tuple[str, ...] = ("status",)) -> Callable[[World], list[str]]:
    return lambda w: ["--config", w.config(), *extra, *command]


def env(name: str, value: str, **overrides: Any) -> Callable[[World], list[str]]:
    def make(w: World) -> list[str]:
        w.monkeypatch.setenv(name, value)
        return ["--config", w.config(**overrides), "status"]

    return make


def raw(text: bytes) -> Callable[[World], list[str]]:
    return lambda w: ["--config", w.raw(text), "status"]


def duplicate_key(w: World) -> list[str]:
    return ["--config", w.raw(w.good_yaml() + b"stack: other\n"), "status"]


def two_vpcs(w: World) -> list[str]:
    ec2 = w.box.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    other = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24", AvailabilityZone="us-east-1c")["Subnet"]["SubnetId"]
    assert w.box.seeded is not None
    return ["--config", w.config(**{"network.subnets": [w.box.seeded.subnets[0], other]}), "up", "--yes"]


def access_denied_on_create_cluster(w: World) -> list[str]:
    deny = aws_error("AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized")
    on_sessions(w.monkeypatch, "before-call.ecs.CreateCluster", lambda **_: deny)
    return ["--config", w.config(), "up", "--yes"]


def no_credentials(w: World) -> list[str]:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        w.monkeypatch.delenv(key)
    return ["--config", w.config(endpoint_url=None), "status"]  # AWS itself: signing fails before any request


def no_terminal(w: World) -> list[str]:
    return ["--config", w.config(), "up"]


def directory(w: World) -> list[str]:
    return ["--config", str(w.tmp), "status"]


CASES: dict[str, Case] = {
    # --- config file ------------------------------------------------------------------------------------------
    "endpoint port out of range": (cfg(endpoint_url="http://127.0.0.1:99999"), EXIT_USAGE, "'endpoint_url'"),
    "endpoint without host": (cfg(endpoint_url="http://"), EXIT_USAGE, "has no host name"),
    "endpoint not a URL": (cfg(endpoint_url="notaurl"), EXIT_USAGE, "must start with http://"),
    "endpoint broken IPv6": (cfg(endpoint_url="http://[::1"), EXIT_USAGE, "Invalid IPv6 URL"),
    "endpoint with a space": (cfg(endpoint_url="http://local host:1"), EXIT_USAGE, "'endpoint_url'"),
    "not UTF-8": (raw(b"stack: caf\xe9\n"), EXIT_USAGE, "not UTF-8 text (byte 0xe9"),
    "key given twice": (duplicate_key, EXIT_USAGE, "the key 'stack' is given twice"),
    "empty file": (raw(b""), EXIT_USAGE, "missing required key 'stack'"),
    "a list, not a mapping": (raw(b"- stack\n"), EXIT_USAGE, "must hold a mapping"),
    "YAML syntax": (raw(b"stack: [unclosed\n"), EXIT_USAGE, "line 2"),
    "binary junk": (raw(b"\x00\x01\x02"), EXIT_USAGE, "raw.yaml"),
    "huge stack name": (cfg(stack="a" * 10000), EXIT_USAGE, "'stack' must start with a letter"),
    "stack name AWS rejects": (cfg(stack="ghost_ha"), EXIT_USAGE, "'stack' must start with a letter"),
    "empty stack name": (cfg(stack=""), EXIT_USAGE, "'stack'"),
    "boolean as a count": (cfg(**{"cluster.instance_count": True}), EXIT_USAGE, "must be a whole number"),
    "string as a count": (cfg(**{"service.desired_count": "6"}), EXIT_USAGE, "must be a whole number"),
    "zero tasks": (cfg(**{"service.desired_count": 0}), EXIT_USAGE, "between 1 and 1000"),
    "NaN poll": (cfg(poll_seconds=float("nan")), EXIT_USAGE, "'poll_seconds' must be a finite number"),
    "infinite poll": (cfg(poll_seconds=float("inf")), EXIT_USAGE, "'poll_seconds' must be a finite number"),
    "max_attempts zero": (cfg(max_attempts=0), EXIT_USAGE, "'max_attempts' must be between 1 and 50"),
    "unknown key": (cfg(colour="blue"), EXIT_USAGE, "unknown key 'colour'"),
    "region misspelt in config": (cfg(region="us-easy-1"), EXIT_USAGE, "unknown AWS region 'us-easy-1'"),
    "region not region-shaped": (cfg(region="Virginia"), EXIT_USAGE, "'region' must be an AWS region"),
    "empty instance type": (cfg(**{"cluster.instance_type": " "}), EXIT_USAGE, "'cluster.instance_type'"),
    "control character in a name": (cfg(**{"service.name": "gh\x1bost"}), EXIT_USAGE, "control characters"),
    "no subnets": (cfg(**{"network.subnets": []}), EXIT_USAGE, "'network.subnets' must list"),
    "not a subnet id": (cfg(**{"network.subnets": ["vpc-1"]}), EXIT_USAGE, "must be subnet ids"),
    "AMI not an id": (cfg(**{"cluster.ami": "ubuntu"}), EXIT_USAGE, "'cluster.ami'"),
    "config path is a directory": (directory, EXIT_USAGE, "is a directory"),
    "config file missing": (lambda w: ["--config", str(w.tmp / "nope.yaml"), "status"], EXIT_USAGE, "not found"),
    "markup in the config path": (
        lambda w: ["--config", str(w.tmp / "[bold]x[/].yaml"), "status"],
        EXIT_USAGE,
        "[bold]x[/].yaml not found",
    ),
    # --- the account (preflight: read-only, exit 2) -----------------------------------------------------------
    "subnets from two VPCs": (two_vpcs, EXIT_USAGE, "VPC"),
    "subnet that does not exist": (up_with(**{"network.subnets": ["subnet-0000000a"]}), EXIT_USAGE, "subnet"),
    "security group that does not exist": (
        up_with(**{"network.security_group": "sg-00000000"}),
        EXIT_USAGE,
        "sg-00000000",
    ),
    "load balancer that does not exist": (up_with(**{"load_balancer.name": "nope-elb"}), EXIT_USAGE, "nope-elb"),
    "target group that does not exist": (
        up_with(**{"load_balancer.target_group": "nope-tg"}),
        EXIT_USAGE,
        "nope-tg",
    ),
    "AccessDenied on one action": (access_denied_on_create_cluster, EXIT_FAILED, "CreateCluster failed"),
    # --- environment ------------------------------------------------------------------------------------------
    "AWS_ENDPOINT_URL not a URL": (env("AWS_ENDPOINT_URL", "notaurl", endpoint_url=None), EXIT_USAGE, "endpoint"),
    "AWS_DEFAULT_REGION misspelt": (
        env("AWS_DEFAULT_REGION", "us-easy-1", region=None),
        EXIT_USAGE,
        "unknown AWS region 'us-easy-1'",
    ),
    "AWS_PROFILE unknown": (env("AWS_PROFILE", "nope"), EXIT_USAGE, "AWS profile 'nope' not found"),
    "GHOSTHA_CONFIG missing": (
        lambda w: (w.monkeypatch.setenv("GHOSTHA_CONFIG", str(w.tmp / "x.yaml")), ["status"])[1],
        EXIT_USAGE,
        "x.yaml not found",
    ),
    "no credentials for AWS": (no_credentials, EXIT_USAGE, "no AWS credentials found"),
    # --- arguments --------------------------------------------------------------------------------------------
    "--endpoint-url without scheme": (args("--endpoint-url", "localhost:4566"), EXIT_USAGE, "'--endpoint-url'"),
    "--endpoint-url port out of range": (
        args("--endpoint-url", "http://127.0.0.1:99999"),
        EXIT_USAGE,
        "Port out of range",
    ),
    "--region empty": (args("--region", ""), EXIT_USAGE, "'--region': must not be empty"),
    "--region misspelt": (args("--region", "us-easy-1"), EXIT_USAGE, "did you mean"),
    "--profile unknown": (args("--profile", "nope"), EXIT_USAGE, "AWS profile 'nope' not found"),
    "--timeout zero": (args(command=("up", "--yes", "--timeout", "0")), EXIT_USAGE, "'--timeout'"),
    "--timeout not a number": (args(command=("up", "--timeout", "soon")), EXIT_USAGE, "'soon' is not a valid"),
    "--events negative": (args(command=("status", "--events", "-1")), EXIT_USAGE, "'--events'"),
    "unknown command": (args(command=("deploy",)), EXIT_USAGE, "No such command 'deploy'"),
    "unknown option": (args(command=("status", "--colour")), EXIT_USAGE, "No such option '--colour'"),
    "missing option value": (args(command=("status", "--events")), EXIT_USAGE, "requires an argument"),
    "no terminal and no --yes": (no_terminal, EXIT_USAGE, "there is no terminal to ask on"),
    "sandbox name with a slash": (lambda w: ["sandbox", "stop", "--name", "../x"], EXIT_USAGE, "'--name'"),
    "sandbox config in a missing directory": (
        lambda w: ["sandbox", "start", "--detach", "--write-config", str(w.tmp / "no" / "x.yaml")],
        EXIT_USAGE,
        "does not exist",
    ),
}


# cases that read the account (preflight) or change it in their setup: on a freshly seeded sandbox; the others
# are refused before any AWS call, so the session's sandbox serves them as it is (a reset costs more than the case)
FRESH = {
    "subnets from two VPCs",
    "subnet that does not exist",
    "security group that does not exist",
    "load balancer that does not exist",
    "target group that does not exist",
    "AccessDenied on one action",
    "no terminal and no --yes",
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_with_the_documented_exit_code(
    name: str, sandbox_server: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    box = sandbox_server
    if name in FRESH or box.seeded is None:
        box.reset()
    make, code, needle = CASES[name]
    argv = make(World(box, tmp_path, monkeypatch))
    before = len(box.requests)
    ran = run_cli(box, argv)
    assert isinstance(ran.exception, SystemExit), ran.exception
    assert ran.exit_code == code, ran.err
    assert "Traceback" not in ran.err + ran.out
    lines = ran.err.strip().splitlines()
    assert lines and lines[0].startswith("error: ") and needle in ran.err, ran.err
    details = [line for line in lines[1:] if line.startswith("  ")]
    hints = lines[1 + len(details) :]
    assert len(hints) <= 1 and all(h.startswith("hint: ") for h in hints), ran.err
    assert mutating(box.requests[before:]) == [], "bad input changes nothing"


def test_the_matrix_is_at_least_forty_cases() -> None:
    assert len(CASES) >= 40
