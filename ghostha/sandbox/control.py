"""Starting and stopping sandboxes from the command line: detached processes, state files, config files.

Each sandbox has a name (default `default`) and a state file `<state dir>/sandbox-<name>.json` holding its pid
and endpoint; it listens on a free loopback port, so two sandboxes never collide.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ghostha.errors import GhosthaError

DEFAULT_STATE_DIR = Path(".ghostha")
DEFAULT_CONFIG_OUT = Path("ghostha-sandbox.yaml")


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    endpoint: str
    seeded: dict[str, Any] | None
    state_file: Path


def state_file(state_dir: Path, name: str) -> Path:
    return state_dir / f"sandbox-{name}.json"


def _alive(pid: int) -> bool:
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False  # our own child, now reaped
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def find(state_dir: Path, name: str) -> Running | None:
    """The running sandbox of that name, or None (a stale state file is removed)."""
    path = state_file(state_dir, name)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not _alive(int(data["pid"])):
        path.unlink(missing_ok=True)
        return None
    return Running(name, int(data["pid"]), str(data["endpoint"]), data.get("seeded"), path)


def write_config(path: Path, seeded: dict[str, Any], endpoint: str, poll_seconds: float) -> None:
    from ghostha.sandbox.seed import Seeded

    s = Seeded(**{**seeded, "subnets": tuple(seeded["subnets"]), "azs": tuple(seeded["azs"])})
    header = (
        "# ghostha config for the local sandbox (written by `ghostha sandbox start`).\n"
        "# The seeded story: VPC, two subnets in two AZs, ALB ghost-elb -> ghost-tg, family ghost (host port 80).\n"
    )
    path.write_text(header + yaml.safe_dump(s.config(endpoint, poll_seconds), sort_keys=False))


def start_detached(state_dir: Path, name: str, scale: float, port: int, timeout: float = 60.0) -> Running:
    if (running := find(state_dir, name)) is not None:
        raise GhosthaError(
            f"sandbox '{name}' is already running at {running.endpoint} (pid {running.pid})",
            hint=f"stop it with `ghostha sandbox stop --name {name}`, or start another with --name",
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_file(state_dir, name)
    log = (state_dir / f"sandbox-{name}.log").open("w")
    cmd = [sys.executable, "-m", "ghostha.sandbox.server", "--scale", str(scale), "--port", str(port)]
    proc = subprocess.Popen(
        [*cmd, "--state-file", str(path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise GhosthaError(
                f"the sandbox exited at start (code {proc.returncode})",
                hint=f"see {state_dir / f'sandbox-{name}.log'}",
            )
        if (running := find(state_dir, name)) is not None:
            return running
        time.sleep(0.1)
    proc.terminate()
    raise GhosthaError(f"the sandbox did not become ready in {timeout:.0f} s", hint=f"see {state_dir}")


def stop(state_dir: Path, name: str, timeout: float = 15.0) -> Running | None:
    running = find(state_dir, name)
    if running is None:
        return None
    os.kill(running.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _alive(running.pid):
        time.sleep(0.1)
    if _alive(running.pid):
        os.kill(running.pid, signal.SIGKILL)
    running.state_file.unlink(missing_ok=True)
    return running
