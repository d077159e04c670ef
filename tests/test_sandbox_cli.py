"""`ghostha sandbox start/stop` as a user runs them: detached processes, state files, config files."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner

from ghostha import advice, config
from ghostha.cli import cli
from ghostha.errors import GhosthaError
from ghostha.sandbox import control


def ghostha(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghostha", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_detached_sandboxes_start_side_by_side_and_stop(tmp_path: Path, _own_state_dir: Path) -> None:
    (tmp_path / "one.yaml").write_text(f"{control.HEADER_FIRST}\nservice:\n  desired_count: 4\n")  # an earlier one's
    one = ghostha("sandbox", "start", "--detach", "--name", "one", "--write-config", "one.yaml", cwd=tmp_path)
    try:
        assert one.returncode == 0, one.stderr
        assert "one.yaml had your values for service.desired_count: kept" in one.stdout
        assert config.load(str(tmp_path / "one.yaml")).service.desired_count == 4
        two = ghostha("sandbox", "start", "--detach", "--name", "two", cwd=tmp_path)
        try:
            assert two.returncode == 0, two.stderr
            assert "ghostha-two.yaml" in two.stdout, "a named sandbox gets a config of its own name"
            cfg1, cfg2 = config.load(str(tmp_path / "one.yaml")), config.load(str(tmp_path / "ghostha-two.yaml"))
            assert cfg1.endpoint_url != cfg2.endpoint_url, "two sandboxes never share a port"
            assert cfg1.endpoint_url and cfg1.endpoint_url.startswith("http://127.0.0.1:")
            again = ghostha("sandbox", "start", "--detach", "--name", "one", cwd=tmp_path)
            assert again.returncode == 2
            assert "already running" in again.stderr and str((tmp_path / "one.yaml").resolve()) in again.stderr
            assert "Traceback" not in again.stderr
            # the written config points at a seeded sandbox
            elbv2 = boto3.client("elbv2", endpoint_url=cfg1.endpoint_url, region_name="us-east-1")
            assert elbv2.describe_load_balancers(Names=["ghost-elb"])["LoadBalancers"]
            raw = yaml.safe_load((tmp_path / "one.yaml").read_text())
            assert raw["network"]["subnets"] == list(cfg1.network.subnets)
            # what no account can tell is left out of the file and advised by the sandbox (default --scale 30)
            assert "poll_seconds" not in raw and "site_url" not in raw
            told = advice.fetch(str(cfg1.endpoint_url))
            assert told["poll_seconds"] == 0.5 and told["site_url"].startswith("http://127.0.0.1:")
            shown = ghostha("--config", "one.yaml", "status", "--json", cwd=tmp_path)
            assert json.loads(shown.stdout)["site_url"] == told["site_url"], shown.stderr
            # state is per user, not per directory: stop works from anywhere
            assert not (tmp_path / ".ghostha").exists()
            assert sorted(p.name for p in (_own_state_dir / "sandboxes").glob("*.json")) == [
                "sandbox-one.json",
                "sandbox-two.json",
            ]
            elsewhere = tmp_path / "elsewhere"
            elsewhere.mkdir()
            started = time.monotonic()
            assert control.stop(_own_state_dir / "sandboxes", "two") is not None
            assert time.monotonic() - started < 1.0, "sandbox stop takes well under a second"
        finally:
            ghostha("sandbox", "stop", "--name", "two", cwd=tmp_path)
    finally:
        stopped = ghostha("sandbox", "stop", "--name", "one", cwd=tmp_path / "elsewhere")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not list((_own_state_dir / "sandboxes").glob("*.json")), "state files are removed"
    assert "no sandbox" in ghostha("sandbox", "stop", "--name", "one", cwd=tmp_path).stdout


def test_printed_next_step_runs_as_printed(tmp_path: Path) -> None:
    started = ghostha("sandbox", "start", "--detach", cwd=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        lines = started.stdout.splitlines()
        step = lines[lines.index("config written to ghostha-sandbox.yaml; next:") + 1].strip()
        argv = shlex.split(step)
        assert argv[-3:] == ["--config", "ghostha-sandbox.yaml", "up"]
        ran = subprocess.run([*argv[:-1], "status"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert ran.returncode == 1 and "NOT DEPLOYED" in ran.stdout, ran.stderr
    finally:
        ghostha("sandbox", "stop", cwd=tmp_path)


def test_unwritable_config_path_refuses_before_starting_anything(tmp_path: Path, _own_state_dir: Path) -> None:
    ran = ghostha("sandbox", "start", "--detach", "--write-config", str(tmp_path / "no" / "x.yaml"), cwd=tmp_path)
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.splitlines()[0].startswith("error: cannot write the config to ")
    assert "Traceback" not in ran.stderr
    assert not list(_own_state_dir.glob("**/*.json")), "no sandbox left running"


def test_sandbox_without_moto_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # as after `pip install ghostha` without the extra
    result = CliRunner().invoke(cli, ["sandbox", "start"])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: the sandbox needs moto, which is not installed",
        "hint: install ghostha with its sandbox extra: `pip install 'ghostha[sandbox]'` "
        "(or `pipx install 'ghostha[sandbox]'`)",
    ]


@pytest.mark.parametrize("stop_by", ["ctrl-c", "sandbox stop"])
def test_a_foreground_sandbox_is_seen_as_running_and_stops_cleanly(
    tmp_path: Path, _own_state_dir: Path, stop_by: str
) -> None:
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "ghostha", "sandbox", "start", "--write-config", "fg.yaml"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "sandbox running at http://127.0.0.1:" in first
        assert "config written to fg.yaml" in proc.stdout.readline()
        cfg = config.load(str(tmp_path / "fg.yaml"))
        assert cfg.endpoint_url and cfg.endpoint_url in first
        again = ghostha("sandbox", "start", "--detach", cwd=tmp_path)
        assert again.returncode == 2 and "already running" in again.stderr, again.stderr
        assert f"pid {proc.pid}" in again.stderr and str((tmp_path / "fg.yaml").resolve()) in again.stderr
        if stop_by == "ctrl-c":
            proc.send_signal(signal.SIGINT)
        else:  # from another shell: SIGTERM to the foreground process, as for a detached one
            stopped = ghostha("sandbox", "stop", cwd=tmp_path)
            assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping the sandbox" in out and "Traceback" not in err
    assert not list((_own_state_dir / "sandboxes").glob("*.json")), "its state file is removed"


def test_a_restarted_sandbox_keeps_the_users_edits_and_never_writes_over_another_file(tmp_path: Path) -> None:
    first = {"endpoint": "http://127.0.0.1:1111", "subnets": ["subnet-a"], "sg": "sg-a"}
    second = {"endpoint": "http://127.0.0.1:2222", "subnets": ["subnet-b"], "sg": "sg-b"}

    def write(where: dict[str, Any]) -> list[str]:
        seeded = {
            "region": "us-east-1", "vpc_id": "vpc-1", "subnets": where["subnets"], "azs": ["us-east-1a"],
            "alb_sg": "sg-alb", "instance_sg": where["sg"], "alb_arn": "a", "alb_dns": "d", "target_group_arn": "t",
            "listener_arn": "l", "instance_profile": "ecsInstanceRole", "task_definition_arn": "td",
        }  # fmt: skip
        return control.write_config(path, seeded, where["endpoint"])

    path = tmp_path / "ghostha-sandbox.yaml"
    assert write(first) == []
    assert write(second) == [], "nothing edited: the new sandbox's config, nothing kept"
    raw = yaml.safe_load(path.read_text())
    raw["service"]["desired_count"] = 4
    raw["cluster"]["key_name"] = "mine"
    raw["poll_seconds"] = 2  # set here, over the advice, as the file's header says one may
    path.write_text(path.read_text() + yaml.safe_dump({"poll_seconds": 2}))
    assert write(second) == ["poll_seconds"], "a value the user set over the advice stays"
    raw["site_url"] = "http://127.0.0.1:9/"  # an older ghostha wrote the stand-in's URL: the sandbox's, not kept
    path.write_text(control.HEADER_FIRST + "\n" + yaml.safe_dump(raw))  # that older ghostha's header
    assert write(first) == ["cluster.key_name", "service.desired_count"]
    cfg = config.load(str(path))
    assert (cfg.service.desired_count, cfg.cluster.key_name) == (4, "mine"), "the user's values stay"
    assert (cfg.endpoint_url, cfg.network.subnets, cfg.network.security_group) == (
        "http://127.0.0.1:1111",
        ("subnet-a",),
        "sg-a",
    ), "the endpoint and ids are the new sandbox's"
    assert cfg.site_url is None
    other = tmp_path / "ghostha.yaml"
    other.write_text("stack: mine\n")
    with pytest.raises(GhosthaError, match="was not written by `ghostha sandbox start`"):
        control.check_config_target(other)
    assert other.read_text() == "stack: mine\n"
