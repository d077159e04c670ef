"""Rich tables and JSON for plans, progress and status reports. Nothing else in ghostha prints.

Text that comes from outside (AWS's answers: names, tags, event messages, stop reasons, error messages) is never
read as rich markup and never reaches the terminal raw: `plain()` turns it into a Text with control characters
shown as escapes, and every table cell goes through it. Columns fold long values onto more lines rather than cut
them, so an ID is never shortened.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from ghostha.plan import Plan, Step, TeardownPlan

if TYPE_CHECKING:
    from pathlib import Path

    from ghostha.aws import AwsCall
    from ghostha.checks import Audit
    from ghostha.init import Draft

VERDICT_STYLE = {"HEALTHY": "bold green", "DEGRADED": "bold red", "NOT DEPLOYED": "bold yellow"}

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(value: Any) -> str:
    """`value` as a string safe for a terminal: control characters (and newlines) shown as escapes."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text.replace("\n", " "))


def plain(value: Any, style: str = "") -> Text:
    """Outside text as a rich Text: never markup, never raw control characters."""
    return Text(printable(value), style=style)


def error(console: Console, message: str, details: list[str], hint: str | None) -> None:
    """The one `error: …` line (details indented below it, an optional `hint: …` line) on the error console."""
    console.print(Text.assemble(("error:", "bold red"), " ", printable(message)), soft_wrap=True)
    for line in details:
        console.print(Text("  " + printable(line)), soft_wrap=True)
    if hint:
        console.print(Text.assemble(("hint:", "yellow"), " ", printable(hint)), soft_wrap=True)


def line(console: Console, text: Any, label: str = "", style: str = "") -> None:
    """One line of outside text, optionally after a styled label (`your blog: …`)."""
    parts: list[Any] = [(label, style), " "] if label else []
    console.print(Text.assemble(*parts, printable(text)), soft_wrap=True)


def plan(console: Console, p: Plan, dry_run: bool) -> None:
    for w in p.warnings:
        console.print(Text.assemble(("warning:", "yellow"), " ", printable(w)), soft_wrap=True)
    for n in p.notes:
        console.print(Text.assemble(("note:", "bold"), " ", printable(n)), soft_wrap=True)
    if not p.changes:
        console.print("[green]nothing to change[/]: the stack is as configured")
        return
    # waits are steps too (dim): they change nothing, but say what `up` would wait for, and in which order
    title = "would do (dry run: nothing was changed):" if dry_run else "plan:"
    console.print(f"[bold]{title}[/]")
    for i, s in enumerate(p.steps, 1):
        style = "bold" if s.mutating else "dim"
        console.print(
            Text.assemble(
                f"{i:>3}. ", (printable(s.action), style), f" {printable(s.resource)}: {printable(s.detail)}"
            ),
            soft_wrap=True,
        )
        if "; ".join(s.changes) != s.detail:  # the detail already says it: once is enough
            for c in s.changes:
                console.print(Text(f"       {printable(c)}"), soft_wrap=True)


class StepReporter:
    """Prints a line per step, and a live status line with new service events while waiting."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._live: Live | None = None
        self._spinner = Spinner("dots", text="")

    def step(self, step: Step) -> None:
        self._stop_live()
        if not step.mutating:
            self._spinner = Spinner("dots", text=plain(f"waiting for {step.resource}: {step.detail}"))
            self._live = Live(self._spinner, console=self.console, refresh_per_second=8, transient=True)
            self._live.start()

    def done(self, step: Step, note: str = "") -> None:
        self._stop_live()
        verb = "✓" if step.mutating else "✓ ready:"
        extra = f" ({note})" if note else ""
        self.console.print(
            Text.assemble((verb, "green"), " ", printable(f"{step.action} {step.resource}{extra}")), soft_wrap=True
        )

    def status(self, text: str) -> None:
        self._spinner.update(text=plain(text))

    def event(self, text: str) -> None:
        self.console.print(Text.assemble("  ", ("event:", "dim"), " ", printable(text)), soft_wrap=True)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def close(self) -> None:
        self._stop_live()


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=plain(title), title_justify="left")
    for col in columns:
        table.add_column(col, overflow="fold")
    return table


def _row(table: Table, *cells: Any) -> None:
    """A table row of outside values: each a plain Text (a Text passed in keeps its style)."""
    table.add_row(*(c if isinstance(c, Text) else plain(c) for c in cells))


def status_json(report: dict[str, Any], lines: bool = False) -> str:
    """The report as JSON: indented, or (lines=True, for `status --watch --json`) one object on one line."""
    if lines:
        return json.dumps(report, default=str)
    return json.dumps(report, indent=2, sort_keys=False, default=str)


def status_tables(report: dict[str, Any]) -> Group:
    parts: list[Any] = []
    verdict = report["verdict"]
    summary = Table.grid(padding=(0, 2))
    summary.add_column(overflow="fold")
    summary.add_column(overflow="fold")
    _row(summary, "stack", report["stack"])
    _row(summary, "cluster", f"{report['cluster']['name']} ({report['cluster']['status'] or 'absent'})")
    _row(summary, "site", report["site_url"] or "-")
    _row(summary, "verdict", plain(f"{verdict}: {report['reason']}", style=VERDICT_STYLE.get(verdict, "")))
    parts.append(summary)

    if report["instances"]:
        t = _table("instances", ("instance", "AZ", "type", "AMI", "status", "agent", "tasks", "free CPU", "free MiB"))
        for i in report["instances"]:
            _row(
                t,
                i["instance_id"],
                i["az"],
                i["instance_type"],
                plain(
                    f"{i['ami'] or '?'}{' (old)' if i['ami_outdated'] else ''}",
                    style="yellow" if i["ami_outdated"] else "",
                ),
                i["status"],
                Text("yes") if i["agent_connected"] else Text("no", style="red"),
                i["running_tasks"],
                i["free_cpu"],
                i["free_memory"],
            )
        parts.append(t)

    svc = report["service"]
    if svc:
        t = _table(
            f"service {svc['name']}",
            ("desired", "running", "pending", "revision", "min/max %", "grace s", "placement", "AZ rebalancing"),
        )
        _row(
            t,
            svc["desired"],
            svc["running"],
            svc["pending"],
            svc["task_definition"],
            f"{svc['minimum_healthy_percent']}/{svc['maximum_percent']}",
            svc["health_check_grace_seconds"],
            ", ".join(svc["placement_strategy"]) or "-",
            plain(
                f"{svc['az_rebalancing']}{' (in progress)' if svc['az_balance']['in_progress'] else ''}",
                style="" if svc["az_rebalancing"] == "ENABLED" else "yellow",
            ),
        )
        parts.append(t)
        d = _table("deployments", ("id", "status", "rollout", "revision", "running/desired", "failed"))
        for dep in svc["deployments"]:
            style = "red" if dep["rollout_state"] == "FAILED" else ""
            _row(
                d,
                dep["id"],
                dep["status"],
                plain(dep["rollout_state"], style=style),
                dep["task_definition"],
                f"{dep['running']}/{dep['desired']}",
                dep["failed_tasks"],
            )
        parts.append(d)

    if report["tasks"]:
        t = _table("tasks", ("task", "revision", "instance", "AZ", "ports", "status", "started", "target"))
        for task in report["tasks"]:
            health = task["health"]
            style = "green" if health == "healthy" else "red" if health in ("unhealthy", "unregistered") else "yellow"
            _row(
                t,
                task["task_id"],
                task["revision"],
                task["instance_id"],
                task["az"],
                f"{task['host_port']}→{task['container_port']}",
                task["last_status"],
                task["started_ago"],
                plain(health, style=style),
            )
        parts.append(t)

    if report["targets"]:
        t = _table("targets", ("instance", "port", "state", "reason", "task"))
        for tgt in report["targets"]:
            stale = Text("stale: no running task", style="red") if tgt["stale"] else Text("")
            _row(t, tgt["instance_id"], tgt["port"], tgt["state"], tgt["reason"], tgt["task_id"] or stale)
        parts.append(t)

    spread = report["spread"]
    if spread["per_instance"]:
        text = "spread: " + ", ".join(f"{k}: {v}" for k, v in sorted(spread["per_instance"].items()))
        text += " | " + ", ".join(f"{k}: {v}" for k, v in sorted(spread["per_az"].items()))
        parts.append(plain(text))
        if spread["warning"]:
            parts.append(plain(f"warning: {spread['warning']}", style="yellow"))

    if report["events"]:
        t = _table("newest service events", ("at", "message"))
        for e in report["events"]:
            _row(t, (e["at"] or "")[11:19], e["message"])
        parts.append(t)
    if report["stopped_tasks"]:
        t = _table("recently stopped tasks", ("task", "stopped", "reason"))
        for s in report["stopped_tasks"]:
            _row(t, s["task_id"], (s["stopped_at"] or "")[11:19], s["reason"])
        parts.append(t)
    if verdict == "NOT DEPLOYED":
        parts.append(Text("nothing deployed: run `ghostha up` to deploy", style="yellow"))
    return Group(*parts)


def teardown_table(console: Console, p: TeardownPlan, dry_run: bool) -> None:
    title = "teardown (dry run: nothing was deleted)" if dry_run else "teardown"
    table = _table(title, ("resource", "name", "action", "why"))
    for item in p.items:
        action = plain(item.action, style="bold red" if item.action == "delete" else "green")
        _row(table, item.kind, item.name, action, item.why)
    console.print(table)


def aws_call(console: Console, call: AwsCall) -> None:
    """-v: one line per AWS call as it completes (and, with -vv, per retry), on the stderr console."""
    if call.retry:
        of = f" of {call.max_attempts}" if call.max_attempts else ""
        after = f" after {call.error}" if call.error else ""
        line = f"aws retry: {call.service} {call.operation} attempt {call.retry}{of}{after}"
        line += f" (waited {call.seconds:.2f} s)"
    else:
        outcome = f" → {call.error}" if call.error else ""
        retries = f" after {call.retries} retries" if call.retries else ""
        line = (
            f"aws: {call.service} {call.operation} {call.params}{outcome}".rstrip()
            + f" [{call.seconds * 1000:.0f} ms{retries}, request {call.request_id or '-'}]"
        )
    console.print(Text(line, style="dim"), soft_wrap=True)


def advice_taken(console: Console, endpoint: str, told: dict[str, Any]) -> None:
    """-v: the runtime keys a stand-in endpoint advised (ghostha/advice.py), on the stderr console."""
    values = ", ".join(f"{k}={v}" for k, v in told.items())
    console.print(
        Text(f"advice: {endpoint} advises {values} (the config leaves them out)", style="dim"), soft_wrap=True
    )


def init_written(console: Console, path: Path | None, draft: Draft, me: str = "ghostha") -> None:
    """What `init` wrote, and the next step."""
    where = f"account {draft.account} in {draft.region}" if draft.account else str(draft.region)
    console.print(
        f"config {'written to ' + str(path) if path else 'written'} from {where}", highlight=False, markup=False
    )
    if not draft.todos:
        flag = f" --config {path}" if path is not None and str(path) != "ghostha.yaml" else ""
        console.print(f"next: {me}{flag} up --dry-run, then {me}{flag} up", highlight=False, markup=False)


# --- doctor ---------------------------------------------------------------------------------------------------

DOCTOR_STYLE = {"PASS": "bold green", "WARN": "bold yellow", "FAIL": "bold red"}
CHECK_STYLE = {"pass": "green", "warn": "yellow", "fail": "bold red"}


def doctor_json(result: Audit) -> str:
    return json.dumps(result.to_dict(), indent=2)


def doctor_tables(result: Audit, stack: str) -> Group:
    """One table per area, failures first within it; then the verdict and the expected recovery bound."""
    from ghostha.checks import AREAS, counts

    parts: list[Any] = []
    rank = {"fail": 0, "warn": 1, "pass": 2}
    areas = sorted({c.area for c in result.checks}, key=lambda a: AREAS.index(a) if a in AREAS else len(AREAS))
    for area in areas:
        t = _table(area, ("", "check"))
        t.add_column("evidence (and fix)", overflow="fold")
        for c in sorted((c for c in result.checks if c.area == area), key=lambda c: rank[c.verdict]):
            found = plain(c.evidence)
            if c.fix:
                found.append("\nfix: ", style="bold")
                found.append(printable(c.fix))
            t.add_row(Text(c.verdict, style=CHECK_STYLE[c.verdict]), plain(c.title), found)
        parts.append(t)
    n = counts(result.checks)
    verdict = result.verdict
    parts.append(
        Text(
            f"doctor {stack}: {verdict} ({n['fail']} fail, {n['warn']} warn, {n['pass']} pass)",
            style=DOCTOR_STYLE[verdict],
        )
    )
    r = result.recovery
    parts.append(
        Text(
            f"expected recovery of a lost task: healthy within {r.healthy_within_seconds} s ({r.describe()}); "
            f"a stopped task's target drains for {r.draining_seconds} s"
        )
    )
    return Group(*parts)


# --- drill ----------------------------------------------------------------------------------------------------


class DrillView:
    """The drill's live view: a status line (requests so far, the stack's state) and each timeline event."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self._spinner = Spinner("dots", text="")
        self._live = Live(self._spinner, console=console, refresh_per_second=8, transient=True)
        self._live.start()

    def status(self, text: str) -> None:
        self._spinner.update(text=plain(text))

    def event(self, at: float, text: str) -> None:
        """A timeline line: its text may quote AWS (a task's stop reason, an ECS event), so never markup."""
        self.console.print(Text.assemble("  ", (f"{at:7.1f}s", "dim"), " ", plain(text)), highlight=False)

    def close(self) -> None:
        self._live.stop()


def _seconds(value: Any) -> str:
    return "-" if value is None else f"{value:g} s"


def drill_report(report: dict[str, Any]) -> Group:
    """The drill's report as tables: verdict, victim, requests, recovery beside what the settings promise."""
    style = "bold green" if report["verdict"] == "PASS" else "bold red"
    v = report["victim"]
    summary = Table.grid(padding=(0, 2))
    summary.add_row("verdict", plain(f"{report['verdict']}: {report['reason']}", style=style))
    if v["kind"] == "instance":
        how = "graceful: drained first" if v["graceful"] else "abrupt: TerminateInstanceInAutoScalingGroup"
        _row(summary, "victim", f"instance {v['id']} with {len(v['task_ids'])} tasks ({how})")
    else:
        how = "graceful: target drained first" if v["graceful"] else "abrupt: StopTask"
        _row(summary, "victim", f"task {v['id']} on {v['instance_id']}:{v['host_port']} ({how})")
    _row(summary, "probed", report["url"])
    if report["clock_rate"] != 1:
        summary.add_row("clock", f"AWS's seconds: its Date header ran {report['clock_rate']:g}x the drill's clock")
    r = report["requests"]
    req = _table("requests", ("sent", "ok", "failed", "by status", "connection errors", "timeouts"))
    req.add_row(
        str(r["sent"]),
        str(r["ok"]),
        str(r["failed"]),
        ", ".join(f"{k}: {n}" for k, n in r["by_status"].items()) or "-",
        str(r["connection_errors"]),
        str(r["timeouts"]),
    )
    out = _table("outage", ("longest", "first failure", "last failure"))
    out.add_row(
        _seconds(report["longest_outage_seconds"] if r["failed"] else None),
        _seconds(report["first_failure_at"]),
        _seconds(report["last_failure_at"]),
    )
    rec, exp = report["recovery"], report["expected"]
    times = _table("recovery (seconds after the kill)", ("replacement running", "healthy", "steady", "expected"))
    times.add_row(
        _seconds(rec["running_after_seconds"]),
        _seconds(rec["healthy_after_seconds"]),
        _seconds(rec["steady_after_seconds"]),
        f"healthy within {_seconds(exp['healthy_within_seconds'])} of running; "
        f"draining {_seconds(exp['draining_seconds'])}; grace {_seconds(exp['grace_seconds'])}",
    )
    timeline = _table("timeline", ("at", "event"))
    for e in report["timeline"]:
        _row(timeline, f"{e['at_seconds']:.1f}s", e["event"])
    return Group(summary, req, out, times, timeline)
