"""Crash at every step: the k-th mutating AWS call of `up` / `teardown` fails, for every k, three ways —

- `error`: AWS answers it with an error (a `before-call` hook answers in AWS's place; nothing reached AWS),
- `died`: AWS applied it, then the process died before hearing back (an `after-call` hook raises),
- `ctrl-c`: AWS applied it, then the user pressed Ctrl-C (exit 130, one line saying how to resume) —

then a clean run must converge: `up` to exactly one of each resource, healthy; `teardown` to the seeded account.
Simulated time runs in 60-second polls (the simulation acting every 30 s) so each case is short: 36 cases, about
50 s of CPU in all (measured: 108 s wall time on two cores shared with other work).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ghostha.sandbox.server import Sandbox
from tests.conftest import aws_error, ctrl_c_on_sleep, is_mutating, mutating, on_sessions, run_cli, write_config
from tests.test_teardown import inventory
from tests.test_up import assert_story_done

UP_CALLS = 6  # CreateCluster, CreateLaunchTemplate, CreateAutoScalingGroup, RegisterTaskDefinition, rule, service
TEARDOWN_CALLS = 8  # UpdateService, DeleteService, DeleteAutoScalingGroup, DeleteCluster, DeleteLaunchTemplate,
# RevokeSecurityGroupIngress, DeregisterTaskDefinition, DeleteTaskDefinitions
MODES = ("error", "died", "ctrl-c")
POLL = 60


class Died(BaseException):
    """The process is gone: nothing of ghostha's runs after this (not even its error handling)."""


def fail_kth_mutating_call(monkeypatch: pytest.MonkeyPatch, k: int, mode: str) -> list[str]:
    """Make the k-th mutating call of the next run fail in `mode`; returns the calls seen (names)."""
    seen: list[str] = []

    def count(model: Any, **_: Any) -> bool:
        if not is_mutating(model.name):
            return False
        seen.append(model.name)
        return len(seen) == k

    if mode == "error":

        def before(model: Any, **kw: Any) -> Any:
            return aws_error("InternalFailure", "injected failure") if count(model) else None

        on_sessions(monkeypatch, "before-call", before)
    else:

        def after(model: Any, **kw: Any) -> None:
            if count(model):
                raise Died() if mode == "died" else KeyboardInterrupt()

        on_sessions(monkeypatch, "after-call", after)
    return seen


def run(box: Sandbox, cfg: Path, command: str) -> Any:
    """The command with long polls, the simulation acting every 30 simulated seconds: few AWS calls per case."""
    return run_cli(box, ["--config", str(cfg), command, "--yes"], sleep=lambda s: box.advance(s, step=30))


def interrupted_run(box: Sandbox, cfg: Path, command: str, mode: str) -> None:
    """The run that fails: how it ends must match the mode."""
    if mode == "died":
        with pytest.raises(Died):
            run(box, cfg, command)
        return
    ran = run(box, cfg, command)
    assert "Traceback" not in ran.err
    if mode == "ctrl-c":
        assert ran.exit_code == 130
        assert ran.err.strip() == f"error: interrupted: run `ghostha {command}` again to resume where it stopped"
    else:
        assert ran.exit_code == 1
        assert ran.err.splitlines()[0].endswith("failed: InternalFailure: injected failure"), ran.err


def one_of_each(box: Sandbox) -> None:
    ecs, auto, ec2 = box.client("ecs"), box.client("autoscaling"), box.client("ec2")
    clusters = ecs.describe_clusters(clusters=ecs.list_clusters()["clusterArns"])["clusters"]
    assert [c["clusterName"] for c in clusters if c["status"] == "ACTIVE"] == ["ghost-ha"]
    services = ecs.describe_services(cluster="ghost-ha", services=ecs.list_services(cluster="ghost-ha")["serviceArns"])
    assert [s["serviceName"] for s in services["services"] if s["status"] == "ACTIVE"] == ["ghost"]
    assert [g["AutoScalingGroupName"] for g in auto.describe_auto_scaling_groups()["AutoScalingGroups"]] == [
        "ghost-ha-ecs"
    ]
    assert [t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]] == ["ghost-ha-ecs"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("k", range(1, UP_CALLS + 1))
def test_up_failing_at_any_call_then_up_converges(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int, mode: str
) -> None:
    cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=POLL)
    with monkeypatch.context() as patch:
        seen = fail_kth_mutating_call(patch, k, mode)
        interrupted_run(box, cfg, "up", mode)
    assert len(seen) == k, f"the run stopped at call {k} ({seen})"
    ran = run(box, cfg, "up")
    assert ran.exit_code == 0, ran.err
    assert_story_done(box)
    one_of_each(box)


def test_up_makes_the_counted_number_of_mutating_calls(box: Sandbox, tmp_path: Path) -> None:
    """The matrix above covers every k only while this count is right."""
    cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=POLL)
    before = len(box.requests)
    assert run(box, cfg, "up").exit_code == 0
    assert len(mutating(box.requests[before:])) == UP_CALLS
    before = len(box.requests)
    assert run(box, cfg, "teardown").exit_code == 0
    assert len(mutating(box.requests[before:])) == TEARDOWN_CALLS


# For teardown, Ctrl-C after a call leaves AWS exactly as a death after it does (only the exit differs, and that
# is the same code as up's): every k for `error` and `died`, one k for `ctrl-c`.
TEARDOWN_CASES = [(k, mode) for mode in ("error", "died") for k in range(1, TEARDOWN_CALLS + 1)] + [(4, "ctrl-c")]


@pytest.mark.parametrize(("k", "mode"), TEARDOWN_CASES)
def test_teardown_failing_at_any_call_then_teardown_ends_as_seeded(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int, mode: str
) -> None:
    seeded = inventory(box)
    cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=POLL)
    assert run(box, cfg, "up").exit_code == 0
    with monkeypatch.context() as patch:
        seen = fail_kth_mutating_call(patch, k, mode)
        interrupted_run(box, cfg, "teardown", mode)
    assert len(seen) == k, f"the run stopped at call {k} ({seen})"
    ran = run(box, cfg, "teardown")
    assert ran.exit_code == 0, ran.err
    assert inventory(box) == seeded


def test_ctrl_c_at_every_wait_of_up_then_up_converges(box: Sandbox, tmp_path: Path) -> None:
    """Ctrl-C while `up` waits (its n-th sleep, for every n a clean run sleeps): exit 130, one line, no traceback;
    the next `up` finishes the job."""
    sleeps = 0

    def counting(seconds: float) -> None:
        nonlocal sleeps
        sleeps += 1
        box.advance(seconds, step=30)

    cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=POLL)
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=counting).exit_code == 0
    assert sleeps >= 2
    for n in range(1, sleeps + 1):
        box.reset()
        cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=POLL)
        ran = run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=ctrl_c_on_sleep(box, n))
        assert ran.exit_code == 130, (n, ran.err)
        assert ran.err.strip() == "error: interrupted: run `ghostha up` again to resume where it stopped"
        assert run(box, cfg, "up").exit_code == 0
        assert_story_done(box)
