"""The everyday conveniences: -v/-vv on stderr, colour only where wanted, shell completion, py.typed."""

from __future__ import annotations

import http.client
import json
import os
import pty
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path

import pytest
from click.testing import CliRunner

from ghostha.aws import Aws, AwsCall, key_params
from ghostha.cli import cli
from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, write_config

# --- -v / -vv ----------------------------------------------------------------------------------------------


def test_verbose_shows_every_call_on_stderr_and_json_stays_clean(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    start = len(box.requests)
    ran = run_cli(box, ["--config", str(cfg), "-v", "status", "--json"])
    assert ran.exit_code == 1, ran.err  # not deployed
    assert json.loads(ran.out)["verdict"] == "NOT DEPLOYED", "stdout holds the JSON alone"
    lines = ran.err.strip().splitlines()
    assert len(lines) == len(box.requests[start:]), "one line per AWS call, each as it completes"
    assert all(re.search(r"\[\d+ ms, request \S+\]$", line) for line in lines), lines
    assert any(line.startswith("aws: ecs DescribeClusters clusters=[ghost-ha] include=[TAGS] [") for line in lines)
    assert any("ecs DescribeServices" in line and "→ ClusterNotFoundException" in line for line in lines)
    assert any("TargetGroupArn=targetgroup/ghost-tg/" in line for line in lines), "ARNs by their resource part"
    quiet = run_cli(box, ["--config", str(cfg), "status", "--json"])
    assert "aws:" not in quiet.err


def test_a_traced_call_carries_aws_request_id_and_time(box: Sandbox) -> None:
    calls: list[AwsCall] = []
    aws = Aws(region="us-east-1", endpoint_url=box.endpoint, trace=calls.append)
    resp = aws.client("ecs").list_task_definition_families(status="ACTIVE")
    assert len(calls) == 1
    call = calls[0]
    assert (call.service, call.operation, call.params) == ("ecs", "ListTaskDefinitionFamilies", "status=ACTIVE")
    assert call.request_id == resp["ResponseMetadata"]["RequestId"]
    assert 0 < call.seconds < 30 and call.error is None and call.retries == 0


def test_key_params_hide_structures_and_cut_long_values() -> None:
    text = key_params(
        {
            "family": "ghost",
            "containerDefinitions": [{"environment": [{"name": "database__connection__password", "value": "x"}]}],
            "desiredCount": 6,
            "enable": True,
            "ids": ["a", "b", "c", "d", "e"],
            "UserData": "x" * 500,
        }
    )
    assert text.startswith("family=ghost containerDefinitions=… desiredCount=6 enable=true ids=[a, b, c, +2] ")
    assert "password" not in text and len(text) < 200


class _Flaky:
    """A loopback proxy in front of the sandbox that answers the first `failures` requests with 503."""

    def __init__(self, target: str, failures: int) -> None:
        self.failures = failures
        host, port = target.removeprefix("http://").split(":")
        flaky = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if flaky.failures > 0:
                    flaky.failures -= 1
                    # the error in the protocol of whichever service's call comes first: JSON (ECS) or XML
                    # (the query services), so botocore parses it and retries whatever the order of the calls
                    if self.headers.get("X-Amz-Target"):
                        payload = b'{"__type": "ServerException", "message": "try again"}'
                    else:
                        payload = (
                            b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServerException</Code>"
                            b"<Message>try again</Message></Error><RequestId>r-1</RequestId></ErrorResponse>"
                        )
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(host, int(port), timeout=30)
                conn.request("POST", self.path, body, {k: v for k, v in self.headers.items() if k != "Host"})
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def flaky(box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Flaky]:
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)  # no real waits
    proxy = _Flaky(box.endpoint, failures=1)
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()


def test_vv_shows_botocore_retries_and_v_does_not(box: Sandbox, tmp_path: Path, flaky: _Flaky) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", endpoint_url=flaky.endpoint)
    ran = run_cli(box, ["--config", str(cfg), "-vv", "status", "--json"])
    assert json.loads(ran.out)["verdict"] == "NOT DEPLOYED"
    retries = [line for line in ran.err.splitlines() if line.startswith("aws retry: ")]
    assert len(retries) == 1, ran.err
    assert re.match(r"aws retry: \S+ \S+ attempt 2 of \d+ after HTTP 503 ServerException \(waited", retries[0])
    assert sum("after 1 retries, request" in line for line in ran.err.splitlines()) == 1, "the call that retried"

    flaky.failures = 1
    once = run_cli(box, ["--config", str(cfg), "-v", "status", "--json"])
    assert "aws retry:" not in once.err and "after 1 retries" in once.err, "-v counts retries, -vv shows each"


# --- colour -------------------------------------------------------------------------------------------------

_COLOUR = re.compile(r"\x1b\[(?:\d+;)*(?:3[0-8]|9[0-7])(?:;\d+)*m")


def _stderr_on_a_terminal(args: list[str], tmp_path: Path, **env: str) -> str:
    """`ghostha ARGS` with stderr on a pseudo-terminal; what it wrote there."""
    clean = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE")}
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "ghostha", *args],
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=follower,
            env={**clean, "TERM": "xterm-256color", **env},
            timeout=60,
        )
        assert proc.returncode == 2
    finally:
        os.close(follower)
    out = b""
    try:
        while chunk := os.read(leader, 4096):
            out += chunk
    except OSError:  # the terminal closed
        pass
    finally:
        os.close(leader)
    return out.decode("utf-8", "replace")


def test_colour_only_on_a_terminal_and_never_with_no_color(tmp_path: Path) -> None:
    args = ["--config", "missing.yaml", "status"]
    assert _COLOUR.search(_stderr_on_a_terminal(args, tmp_path)), "a terminal gets colour"
    no_env = _stderr_on_a_terminal(args, tmp_path, NO_COLOR="1")
    assert "error:" in no_env and not _COLOUR.search(no_env)
    no_flag = _stderr_on_a_terminal(["--no-color", *args], tmp_path)
    assert "error:" in no_flag and not _COLOUR.search(no_flag)
    piped = subprocess.run([sys.executable, "-m", "ghostha", *args], cwd=tmp_path, capture_output=True, text=True)
    assert "error:" in piped.stderr and "\x1b[" not in piped.stderr, "a pipe gets no escape codes at all"


# --- shell completion and typing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "needle"),
    [("bash", "complete -o nosort"), ("zsh", "#compdef ghostha"), ("fish", "complete --no-files --command ghostha")],
)
def test_shell_completion_scripts_as_the_readme_enables_them(shell: str, needle: str) -> None:
    ran = CliRunner().invoke(cli, [], prog_name="ghostha", env={"_GHOSTHA_COMPLETE": f"{shell}_source"})
    assert ran.exit_code == 0 and needle in ran.output


def test_completion_completes_commands_and_options() -> None:
    env = {"_GHOSTHA_COMPLETE": "bash_complete", "COMP_WORDS": "ghostha in", "COMP_CWORD": "1"}
    ran = CliRunner().invoke(cli, [], prog_name="ghostha", env=env)
    assert ran.output.split() == ["plain,init"]
    env |= {"COMP_WORDS": "ghostha init --fr", "COMP_CWORD": "2"}
    assert CliRunner().invoke(cli, [], prog_name="ghostha", env=env).output.split() == ["plain,--from-service"]


def test_py_typed_marks_the_package_typed() -> None:
    assert resources.files("ghostha").joinpath("py.typed").is_file()
