"""Never a traceback, never a false word: hostile text, Ctrl-C, two runs at once, odd endpoints, piped output."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ghostha import observe
from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    Canned,
    aws_error,
    ctrl_c_on_sleep,
    mutating,
    on_sessions,
    run_cli,
    running_tasks,
    write_config,
)

MARKUP = "[bold red]not bold[/] [/oops] Unable to assume role [arn:aws:iam::123456789012:role/x]"
CONTROL = "bell\x07 escape\x1b[31m cr\r nul\x00 rtl\u202e end"
LONG = "".join(f"{i:05d}" for i in range(1000))  # 5000 characters, no space to wrap at


def up(box: Sandbox, cfg: Path, **kw: Any) -> Any:
    return run_cli(box, ["--config", str(cfg), "up", "--yes"], **kw)


def one_error(err: str) -> list[str]:
    """stderr is one `error:` line and at most one `hint:` line, and no traceback."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, err
    assert len(lines) == 1 or lines[1].startswith("hint: "), err
    return lines


def unbox(text: str) -> str:
    """Table output with borders and whitespace removed (a folded cell's pieces join up again)."""
    return "".join(ch for ch in text if not ch.isspace() and ch not in "│┃─━┏┓┗┛┡┩└┘┌┐├┤┼╇╈╋╭╮╰╯╞╡═╪┬┴")


def inject_hostile_event(box: Sandbox, message: str) -> None:
    from moto.ecs.models import ecs_backends

    for account in ecs_backends.values():
        for backend in account.values():
            for svc in backend.services.values():
                with box.lock:
                    box.sim.event(svc, message)


def test_hostile_text_from_aws_renders_as_plain_text(box: Sandbox, deployed: Path) -> None:
    """Event messages and stop reasons holding rich markup, control characters and 5000 characters print as
    the text they are: in tables (markup literal, controls escaped, nothing cut) and in JSON (exactly)."""
    inject_hostile_event(box, MARKUP)
    inject_hostile_event(box, CONTROL)
    inject_hostile_event(box, LONG)
    task = running_tasks(box)[0]
    box.client("ecs").stop_task(cluster="ghost-ha", task=task["taskArn"], reason=MARKUP + CONTROL)

    tables = run_cli(box, ["--config", str(deployed), "status"])
    assert tables.exception is None or isinstance(tables.exception, SystemExit), tables.exception
    assert "Traceback" not in tables.err
    assert MARKUP in tables.out
    assert "\x07" not in tables.out and "\x1b" not in tables.out and "\x00" not in tables.out
    assert "\u202e" not in tables.out and "\r" not in tables.out
    assert "bell\\x07 escape\\x1b[31m cr\\r nul\\x00 rtl\\u202e end" in tables.out
    assert LONG in unbox(tables.out), "a long message is folded, not cut"
    assert task["taskArn"].rsplit("/", 1)[1] in unbox(tables.out), "task IDs are shown whole"

    as_json = run_cli(box, ["--config", str(deployed), "status", "--json"])
    report = json.loads(as_json.out)
    messages = [e["message"] for e in report["events"]]
    assert {LONG, CONTROL, MARKUP} <= set(messages)
    assert MARKUP + CONTROL in [s["reason"] for s in report["stopped_tasks"]]


def test_hostile_aws_error_message_is_one_plain_line(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    message = f"{MARKUP} {CONTROL}\nsecond line"
    on_sessions(monkeypatch, "before-call.ecs.DescribeClusters", lambda **_: aws_error("AccessDenied", message))
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 1
    lines = one_error(ran.err)
    assert MARKUP in lines[0] and "\\x1b[31m" in lines[0] and "second line" in lines[0]
    assert "\x1b" not in ran.err and "\x07" not in ran.err
    assert lines[1] == "hint: your credentials lack the IAM permission for this action; grant it and run again"


def test_status_watch_json_prints_one_object_per_line_per_refresh(box: Sandbox, deployed: Path) -> None:
    ran = run_cli(box, ["--config", str(deployed), "status", "--watch", "--json"], sleep=ctrl_c_on_sleep(box, 3))
    assert ran.exit_code == 0, ran.err
    lines = ran.out.splitlines()
    assert len(lines) == 3, "one line per refresh: before the 1st, 2nd and 3rd (Ctrl-C) sleep"
    reports = [json.loads(line) for line in lines]
    assert all(r["verdict"] == "HEALTHY" and r["stack"] == "ghost-ha" for r in reports)
    assert len({r["tasks"][0]["started_ago"] for r in reports}) > 1, "each line is a fresh reading"


def test_piped_output_never_cuts_ids(box: Sandbox, deployed: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "ghostha", "--config", str(deployed), "status"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in __import__("os").environ.items() if k != "COLUMNS"},
    )
    assert ran.returncode == 0, ran.stderr
    report = json.loads(run_cli(box, ["--config", str(deployed), "status", "--json"]).out)
    ids = [t["task_id"] for t in report["tasks"]] + [i["instance_id"] for i in report["instances"]]
    for line in ran.stdout.splitlines():
        assert "…" not in line
    for ident in ids:
        assert ident in ran.stdout, f"{ident} is printed whole on one line"
    assert "healthy" in ran.stdout


def test_two_ups_at_once_the_second_is_refused_and_nothing_is_duplicated(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    second: list[Any] = []
    calls_by_second: list[tuple[str, str]] = []

    def sleep(seconds: float) -> None:
        if not second:  # the first run is waiting for AWS: a second `up` for the same stack starts now
            before = len(box.requests)
            second.append(up(box, cfg))
            calls_by_second.extend(box.requests[before:])
        box.advance(seconds)

    first = up(box, cfg, sleep=sleep)
    assert first.exit_code == 0, first.err
    refused = second[0]
    assert refused.exit_code == 1
    lines = one_error(refused.err)
    assert lines[0].startswith("error: stack ghost-ha is busy: `ghostha up` (pid ")
    assert mutating(calls_by_second) == [], "the refused run changed nothing"
    ecs = box.client("ecs")
    assert len(ecs.list_services(cluster="ghost-ha")["serviceArns"]) == 1
    assert len(ecs.list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]) == 2
    assert len(box.client("autoscaling").describe_auto_scaling_groups()["AutoScalingGroups"]) == 1
    again = up(box, cfg)
    assert again.exit_code == 0 and "nothing to change" in again.out, "the lock is released when a run ends"


def test_gather_does_not_wait_for_calls_in_flight_on_ctrl_c() -> None:
    release = threading.Event()

    def ctrl_c() -> None:
        raise KeyboardInterrupt

    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        observe.gather({"ctrl_c": ctrl_c, "slow": lambda: release.wait(10)})
    assert time.monotonic() - started < 2, "Ctrl-C does not wait for the slow call"
    release.set()


@pytest.fixture(params=[404, 200])
def web_page(request: pytest.FixtureRequest) -> Iterator[str]:
    """A plain web server answering every request with an HTML page: an error status, or 200 as a site does
    (the sandbox's ALB stand-in, say, given as the endpoint by mistake)."""
    page = b"<!DOCTYPE html>\n<html><head><title>Not here</title></head>\n<body>" + b"<p>x</p>\n" * 12
    server = Canned(page, status=int(request.param), content_type="text/html")
    yield server.url
    server.close()


def test_a_web_page_at_the_endpoint_is_one_line(box: Sandbox, tmp_path: Path, web_page: str) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    commands = (["status"], ["up", "--yes"], ["teardown", "--yes"], ["doctor"], ["drill", "--yes"], ["init", "-o", "-"])
    for command in commands:
        ran = run_cli(box, ["--config", str(cfg), "--endpoint-url", web_page, *command])
        assert ran.exit_code == 1, (command, ran.err)
        lines = one_error(ran.err)
        assert "failed: the endpoint answered with something that is not an AWS response" in lines[0]
        assert "<" not in ran.err


def test_a_bug_of_ours_is_one_line_not_a_traceback(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ghostha.status

    def broken(*args: Any, **kwargs: Any) -> Any:
        return [][1]

    monkeypatch.setattr(ghostha.status, "report", broken)
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 1
    lines = one_error(ran.err)
    assert lines[0] == "error: internal error: IndexError: list index out of range"
    assert lines[1].startswith("hint: this is a bug in ghostha")


def test_a_timeout_says_it_may_be_too_short(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes", "--timeout", "20"])
    assert ran.exit_code == 3
    lines = one_error(ran.err)
    assert lines[0].startswith("error: timed out waiting for 2 container instances")
    assert lines[1].endswith("; or --timeout 20 s may be too short for AWS: pass a larger one")


def test_ghostha_alone_prints_its_help(box: Sandbox) -> None:
    ran = run_cli(box, [])
    assert ran.exit_code == 0 and ran.out.startswith("Usage: ") and "Commands:" in ran.out and ran.err == ""


def test_the_missing_subnets_hint_shows_its_example(box: Sandbox, tmp_path: Path) -> None:
    """The example is in brackets: printed as markup it vanished."""
    cfg = write_config(box, tmp_path / "g.yaml", **{"network.subnets": None})
    ran = run_cli(box, ["--config", str(cfg), "status"])
    assert ran.exit_code == 2
    assert one_error(ran.err)[1] == "hint: add it, e.g. `subnets: [subnet-0abc…, subnet-0def…]`"


def test_a_port_in_use_is_one_line(box: Sandbox, tmp_path: Path) -> None:
    port = int(box.endpoint.rsplit(":", 1)[1])
    ran = run_cli(box, ["sandbox", "start", "--port", str(port), "--write-config", str(tmp_path / "x.yaml")])
    assert ran.exit_code == 2
    lines = one_error(ran.err)
    assert lines[0] == f"error: the sandbox cannot listen on 127.0.0.1:{port}: Address already in use"


def test_the_machine_refusing_a_write_is_one_line_not_a_bug(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state directory that cannot be made (for the stack lock) is the machine's doing: no 'this is a bug'."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = up(box, cfg)
    assert ran.exit_code == 1
    assert one_error(ran.err) == [f"error: Not a directory: {blocker / 'ghostha' / 'locks'}"]


def test_an_unreachable_endpoint_names_the_sandbox_that_runs_now(box: Sandbox, tmp_path: Path) -> None:
    """A restarted sandbox has a new port, so a config written for the old one points nowhere: say where it is."""
    import os
    import socket

    from ghostha.sandbox import control

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    cfg = write_config(box, tmp_path / "g.yaml", endpoint_url=dead, max_attempts=1)  # no real-time backoff
    alone = run_cli(box, ["--config", str(cfg), "status"])
    assert alone.exit_code == 1 and "cannot reach the AWS endpoint" in alone.err
    assert "is the sandbox running? `ghostha sandbox start`" in alone.err, "no sandbox runs: say how to start one"
    state = control.state_file(control.default_state_dir(), "default")
    control.write_state(state, {"pid": os.getpid(), "endpoint": box.endpoint, "config": "/x/ghostha-sandbox.yaml"})
    told = run_cli(box, ["--config", str(cfg), "status"])
    assert told.exit_code == 1 and "cannot reach the AWS endpoint" in told.err
    assert f"a sandbox runs at {box.endpoint} (config /x/ghostha-sandbox.yaml)" in told.err
    state.write_text('{"endpoint": "http://x"}')  # no pid: not a state file of ours, and no crash
    odd = run_cli(box, ["--config", str(cfg), "status"])
    assert odd.exit_code == 1 and "is the sandbox running?" in odd.err and "internal error" not in odd.err


def test_the_drills_report_and_timeline_print_outside_text_as_it_is() -> None:
    """The drill's lines quote AWS (events, stop reasons) and the user (the URL): markup stays literal."""
    from rich.console import Console

    from ghostha import render

    console = Console(record=True, width=4096, force_terminal=False)
    view = render.DrillView(console)
    view.event(1.0, f"AZ rebalancing: {MARKUP}")
    view.close()
    seconds = {"running_after_seconds": 1, "healthy_after_seconds": 2, "steady_after_seconds": 3}
    requests = {"sent": 1, "ok": 1, "failed": 0, "by_status": {}, "connection_errors": 0, "timeouts": 0}
    report = {
        "verdict": "PASS",
        "reason": MARKUP,
        "victim": {"kind": "task", "graceful": False, "id": "t", "instance_id": "i", "host_port": 1},
        "url": f"http://x/{MARKUP}",
        "clock_rate": 1,
        "requests": requests,
        "longest_outage_seconds": None,
        "first_failure_at": None,
        "last_failure_at": None,
        "recovery": seconds,
        "expected": {"healthy_within_seconds": 20, "draining_seconds": 30, "grace_seconds": 120},
        "timeline": [{"at_seconds": 1.0, "event": MARKUP}],
    }
    console.print(render.drill_report(report))
    text = console.export_text()
    assert text.count(MARKUP) == 4, text
