"""Starting and stopping sandboxes from the command line: detached processes, state files, config files.

Each sandbox has a name (default `default`) and a state file `<state dir>/sandbox-<name>.json` holding its pid,
endpoint and the config written for it. The state directory is per user (`$XDG_STATE_HOME/ghostha/sandboxes`, else
`~/.local/state/ghostha/sandboxes`), so `ghostha sandbox stop` works from any directory. Each listens on a free
loopback port, so two sandboxes never collide.
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

from ghostha.errors import GhosthaError, UsageError

DEFAULT_CONFIG_OUT = Path("ghostha-sandbox.yaml")


def default_state_dir() -> Path:
    from ghostha.config import state_dir

    return state_dir() / "sandboxes"


def default_config_path(name: str) -> Path:
    """`ghostha-sandbox.yaml` for the default sandbox, `ghostha-<name>.yaml` for a named one."""
    return DEFAULT_CONFIG_OUT if name == "default" else Path(f"ghostha-{name}.yaml")


def check_config_target(path: Path) -> None:
    """Refuse (before starting anything) a config path that cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise UsageError(f"cannot write the config to {path}: it is a directory", hint="pass a file path")
    if not parent.is_dir():
        raise UsageError(
            f"cannot write the config to {path}: directory {parent} does not exist",
            hint="create the directory first, or pass another --write-config path",
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"cannot write the config to {path}: permission denied", hint="pass another --write-config")
    if path.is_file() and not path.read_text(encoding="utf-8", errors="replace").startswith(HEADER_FIRST):
        raise UsageError(
            f"{path} exists and was not written by `ghostha sandbox start`: it is left as it is",
            hint="pass another --write-config path, or move that file away",
        )


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    endpoint: str
    seeded: dict[str, Any] | None
    state_file: Path
    config: str | None = None
    site_url: str | None = None  # the ALB stand-in's URL


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
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Exited but not yet reaped by its parent (init may take a second): as good as gone. Linux only."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def find(state_dir: Path, name: str) -> Running | None:
    """The running sandbox of that name, or None (a stale state file is removed)."""
    path = state_file(state_dir, name)
    try:
        data = json.loads(path.read_text())
        pid = int(data["pid"])
        str(data["endpoint"])
    except (OSError, ValueError, TypeError, KeyError):
        return None  # not a state file of ours (a hand-edited or foreign one): no sandbox
    if not _alive(pid):
        path.unlink(missing_ok=True)
        return None
    config = data.get("config")
    return Running(name, pid, str(data["endpoint"]), data.get("seeded"), path, config, data.get("site_url"))


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Write a state file whole or not at all: a reader never sees half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(path)


def running(state_dir: Path) -> list[Running]:
    """Every sandbox of this user that is running now."""
    names = sorted(p.name[len("sandbox-") : -len(".json")] for p in state_dir.glob("sandbox-*.json"))
    return [r for name in names if (r := find(state_dir, name)) is not None]


def remember_config(running: Running, config: Path) -> None:
    """Note in the state file where the sandbox's config was written (for "already running" messages)."""
    try:
        data = json.loads(running.state_file.read_text())
    except (OSError, ValueError):
        return
    write_state(running.state_file, {**data, "config": str(config.resolve())})


def already_running(running: Running) -> GhosthaError:
    where = f"; its config is {running.config}" if running.config else ""
    return UsageError(
        f"sandbox '{running.name}' is already running at {running.endpoint} (pid {running.pid}){where}",
        hint=f"stop it with `ghostha sandbox stop --name {running.name}`, or start another with --name",
    )


HEADER_FIRST = "# ghostha config for the local sandbox (written by `ghostha sandbox start`)."
# what differs from one sandbox to the next: a config's other values are the user's to keep
_PER_SANDBOX = (("endpoint_url",), ("network", "subnets"), ("network", "security_group"))
# a ghostha before the sandbox advised them wrote these itself: in such a file they are the old sandbox's
_ADVISED = (("poll_seconds",), ("site_url",))
_ADVICE_LINE = "# poll_seconds and site_url are left out: the sandbox advises them"


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {}
    out: dict[str, Any] = {}
    for k, v in data.items():
        out |= _flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v}
    return out


def _keep_edits(path: Path, fresh: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A config this sandbox start writes over one an earlier start wrote: the values the user changed or added
    there stay (all but the endpoint and the network ids, which belong to the new sandbox). (data, kept keys)."""
    try:
        text = path.read_text(encoding="utf-8")
        old = yaml.safe_load(text)
    except (OSError, ValueError, yaml.YAMLError):
        return fresh, []
    if not isinstance(old, dict):
        return fresh, []
    for keys in _PER_SANDBOX + (() if _ADVICE_LINE in text else _ADVISED):  # the new sandbox's own
        node: Any = old
        for k in keys[:-1]:
            node = node.get(k) if isinstance(node.get(k), dict) else {}
        node.pop(keys[-1], None)
    before, now = _flat(fresh), _flat(old)
    kept = sorted(k for k, v in now.items() if before.get(k, object()) != v)
    if not kept:
        return fresh, []
    merged = dict(fresh)
    for key in kept:
        *parents, leaf = key.split(".")
        node = merged
        for p in parents:
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node[leaf] = now[key]
    return merged, kept


def write_config(path: Path, seeded: dict[str, Any], endpoint: str) -> list[str]:
    """The seeded stack's config; the keys kept from an edited earlier one (`_keep_edits`). No `poll_seconds` and
    no `site_url`: neither can be read from an account (so `ghostha init` cannot write them either), and the
    sandbox advises both at its endpoint (ghostha/advice.py)."""
    from ghostha.sandbox.seed import Seeded

    s = Seeded(**{**seeded, "subnets": tuple(seeded["subnets"]), "azs": tuple(seeded["azs"])})
    header = (
        f"{HEADER_FIRST}\n"
        "# The seeded story: VPC, two subnets in two AZs, ALB ghost-elb -> ghost-tg, family ghost (host port 80).\n"
        f"{_ADVICE_LINE} (its clock runs faster than AWS's,\n"
        "# and the blog answers at its ALB stand-in on loopback); set either here to override.\n"
    )
    data, kept = _keep_edits(path, s.config(endpoint)) if path.is_file() else (s.config(endpoint), [])
    path.write_text(header + yaml.safe_dump(data, sort_keys=False))
    return kept


def start_detached(state_dir: Path, name: str, scale: float, port: int, timeout: float = 60.0) -> Running:
    if (running := find(state_dir, name)) is not None:
        raise already_running(running)
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
        time.sleep(0.01)
    if _alive(running.pid):
        os.kill(running.pid, signal.SIGKILL)
    running.state_file.unlink(missing_ok=True)
    return running
