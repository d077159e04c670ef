"""`ghostha sandbox start/stop` as a user runs them: detached processes, state files, config files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import boto3
import yaml

from ghostha import config


def ghostha(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ghostha", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_detached_sandboxes_start_side_by_side_and_stop(tmp_path: Path) -> None:
    one = ghostha("sandbox", "start", "--detach", "--name", "one", "--write-config", "one.yaml", cwd=tmp_path)
    try:
        assert one.returncode == 0, one.stderr
        two = ghostha("sandbox", "start", "--detach", "--name", "two", "--write-config", "two.yaml", cwd=tmp_path)
        try:
            assert two.returncode == 0, two.stderr
            cfg1, cfg2 = config.load(str(tmp_path / "one.yaml")), config.load(str(tmp_path / "two.yaml"))
            assert cfg1.endpoint_url != cfg2.endpoint_url, "two sandboxes never share a port"
            assert cfg1.endpoint_url and cfg1.endpoint_url.startswith("http://127.0.0.1:")
            again = ghostha("sandbox", "start", "--detach", "--name", "one", cwd=tmp_path)
            assert again.returncode != 0 and "already running" in again.stderr
            # the written config points at a seeded sandbox
            elbv2 = boto3.client("elbv2", endpoint_url=cfg1.endpoint_url, region_name="us-east-1")
            assert elbv2.describe_load_balancers(Names=["ghost-elb"])["LoadBalancers"]
            raw = yaml.safe_load((tmp_path / "one.yaml").read_text())
            assert raw["network"]["subnets"] == list(cfg1.network.subnets)
        finally:
            assert ghostha("sandbox", "stop", "--name", "two", cwd=tmp_path).returncode == 0
    finally:
        stopped = ghostha("sandbox", "stop", "--name", "one", cwd=tmp_path)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not list((tmp_path / ".ghostha").glob("*.json")), "state files are removed"
    assert "no sandbox" in ghostha("sandbox", "stop", "--name", "one", cwd=tmp_path).stdout


def test_foreground_sandbox_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
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
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping the sandbox" in out and "Traceback" not in err
