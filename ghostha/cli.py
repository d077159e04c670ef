"""The command line: parse, build the context, call one function, map errors to messages and exit codes.

Commands only forward to the modules that do the work. Heavy imports (boto3, moto) happen inside commands, so
`ghostha --help` starts fast. Exit codes: 0 done / healthy, 1 failed or degraded, 2 usage or config error,
3 timed out waiting.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from ghostha import __version__
from ghostha.errors import EXIT_FAILED, EXIT_USAGE, GhosthaError, Interrupted, UsageError, WaitTimeout

if TYPE_CHECKING:
    from rich.console import Console

    from ghostha.aws import Aws
    from ghostha.config import Config

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Runtime:
    """What a command needs from the outside world; tests swap in simulated time and captured consoles."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    out: Console | None = None
    err: Console | None = None
    confirm: Callable[[str], str] | None = None
    no_color: bool = False  # --no-color; rich itself honours NO_COLOR and colours only a terminal

    def console(self) -> Console:
        if self.out is None:
            self.out = _console(stderr=False, no_color=self.no_color)
        return self.out

    def err_console(self) -> Console:
        if self.err is None:
            self.err = _console(stderr=True, no_color=self.no_color)
        return self.err

    def ask(self, prompt: str) -> str:
        if self.confirm is not None:
            return self.confirm(prompt)
        return str(click.prompt(prompt, default="", show_default=False))


PIPED_WIDTH = 4096  # not a terminal: lines as long as their content (IDs are never cut to fit 80 columns)


def _console(stderr: bool, no_color: bool) -> Console:
    from rich.console import Console

    # stderr bound now when it is not a terminal: a Live display on a terminal stdout would otherwise route what
    # is printed there (the -v trace) to stdout while it runs
    file = sys.stderr if stderr and not sys.stderr.isatty() else None
    console = Console(stderr=stderr, file=file, no_color=no_color or None)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(stderr=stderr, file=file, no_color=no_color or None, width=PIPED_WIDTH)
    return console


@dataclass
class App:
    config_path: str | None
    profile: str | None
    region: str | None
    endpoint_url: str | None
    runtime: Runtime
    verbose: int = 0
    _config: Config | None = field(default=None, repr=False)
    _aws: Aws | None = field(default=None, repr=False)

    def config(self) -> Config:
        if self._config is None:
            from ghostha import advice
            from ghostha.config import load

            cfg = load(self.config_path)
            endpoint = self.endpoint_url or cfg.endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
            self._config = advice.apply(cfg, endpoint)
            told = {
                k: getattr(self._config, k)
                for k in sorted(cfg.advisable)
                if getattr(self._config, k) != getattr(cfg, k)
            }
            if self.verbose and endpoint and told:
                from ghostha import render

                render.advice_taken(self.runtime.err_console(), endpoint, told)
        return self._config

    def aws(self) -> Aws:
        if self._aws is None:
            from ghostha.aws import Aws

            cfg = self.config()
            self._aws = Aws(
                profile=self.profile,
                region=self.region or cfg.region,
                endpoint_url=self.endpoint_url or cfg.endpoint_url,
                max_attempts=cfg.max_attempts,
            )
            self._trace(self._aws)
        return self._aws

    def account_aws(self) -> Aws:
        """AWS from the command line and AWS's usual chain alone, without a config file (for `init`)."""
        from ghostha.aws import Aws

        aws = Aws(profile=self.profile, region=self.region, endpoint_url=self.endpoint_url)
        self._trace(aws)
        return aws

    def _trace(self, aws: Aws) -> None:
        """-v: every AWS call on stderr as it completes; -vv: botocore's retries too."""
        if self.verbose:
            from ghostha import render

            err = self.runtime.err_console()
            aws.trace = lambda call: render.aws_call(err, call)
            aws.trace_retries = self.verbose > 1


def _fail(runtime: Runtime, exc: GhosthaError) -> None:
    from ghostha import render

    render.error(runtime.err_console(), exc.message, exc.details, exc.hint)
    sys.exit(exc.exit_code)


def _command(ctx: click.Context | None) -> str:
    """The command as the user typed it (`ghostha sandbox start`), whatever name click was invoked under."""
    return " ".join(["ghostha", *(ctx.command_path.split()[1:] if ctx is not None else [])])


def _interrupted() -> GhosthaError:
    command = _command(click.get_current_context(silent=True))
    return Interrupted(f"interrupted: run `{command}` again to resume where it stopped")


def _explain(exc: BaseException, kwargs: dict[str, Any]) -> GhosthaError:
    """Any exception as the one-line error the user sees (AWS's, ours, or a bug of ours: never a traceback)."""
    if isinstance(exc, WaitTimeout) and kwargs.get("timeout"):
        more = f"or --timeout {kwargs['timeout']} s may be too short for AWS: pass a larger one"
        exc.hint = f"{exc.hint}; {more}" if exc.hint else more
    if isinstance(exc, GhosthaError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return _interrupted()
    if type(exc).__module__.startswith(("botocore", "boto3", "urllib3")):
        from ghostha.errors import from_boto

        return from_boto(exc if isinstance(exc, Exception) else Exception(str(exc)))
    from ghostha.errors import one_line

    if isinstance(exc, OSError):  # the machine's, not ours: a port in use, a full disk, a read-only directory
        where = f": {exc.filename}" if exc.filename else ""
        return GhosthaError(f"{one_line(exc.strerror or str(exc), 500)}{where}")
    return GhosthaError(
        f"internal error: {type(exc).__name__}: {one_line(str(exc), 500)}",
        hint="this is a bug in ghostha: please report it with the command you ran; "
        "running it again is safe (it resumes)",
    )


def handled(func: F) -> F:
    """Map every error to one message on stderr and the contract's exit code: never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        app = click.get_current_context().find_object(App)
        runtime = app.runtime if app else Runtime()
        try:
            return func(*args, **kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            if isinstance(exc, click.exceptions.ClickException | click.exceptions.Exit | click.Abort):
                raise
            _fail(runtime, _explain(exc, kwargs))

    return wrapper  # type: ignore[return-value]


class GhosthaGroup(click.Group):
    """click's group, with its usage errors in ghostha's form: `error: …` and a hint, exit 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        obj = kwargs.get("obj")
        runtime = obj if isinstance(obj, Runtime) else Runtime()
        standalone = kwargs.pop("standalone_mode", True)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[call-overload]
        except click.UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:  # `ghostha` alone: its help
                click.echo(exc.ctx.get_help())
                sys.exit(0)
            _fail(runtime, UsageError(exc.format_message(), hint=f"see `{_command(exc.ctx)} --help`"))
        except click.ClickException as exc:
            _fail(runtime, UsageError(exc.format_message()))
        except click.Abort:  # Ctrl-C or end of input while click itself prompts or parses
            _fail(runtime, Interrupted("interrupted: nothing was changed"))
        if not standalone:
            return result
        sys.exit(result if isinstance(result, int) else 0)


def _check_region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty (drop --region to use the config's or AWS's default)")
    return value


def _check_endpoint(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        from ghostha.aws import endpoint_problem

        if problem := endpoint_problem(value):
            raise click.BadParameter(problem)
    return value


@click.group(cls=GhosthaGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file [default: $GHOSTHA_CONFIG or ./ghostha.yaml].",
)
@click.option("--profile", metavar="NAME", help="AWS profile to use.")
@click.option("--region", metavar="NAME", callback=_check_region, help="AWS region (overrides the config).")
@click.option(
    "--endpoint-url",
    metavar="URL",
    callback=_check_endpoint,
    help="AWS endpoint, e.g. a local sandbox (overrides the config).",
)
@click.option(
    "--verbose",
    "-v",
    count=True,
    help="Show every AWS call on stderr as it completes (-vv: and botocore's retries).",
)
@click.option("--no-color", is_flag=True, help="No colour (also: the NO_COLOR variable; colour only on a terminal).")
@click.version_option(__version__, prog_name="ghostha")
@click.pass_context
def cli(
    ctx: click.Context,
    config_path: str | None,
    profile: str | None,
    region: str | None,
    endpoint_url: str | None,
    verbose: int,
    no_color: bool,
) -> None:
    """Run a highly available Ghost blog on AWS ECS behind an Application Load Balancer."""
    runtime = ctx.obj if isinstance(ctx.obj, Runtime) else Runtime()
    runtime.no_color = runtime.no_color or no_color
    ctx.obj = App(config_path, profile, region, endpoint_url, runtime, verbose)


pass_app = click.make_pass_decorator(App)


# --- up / status ---------------------------------------------------------------------------------------------


def timeout_option(help_text: str) -> Callable[[F], F]:
    return click.option("--timeout", type=click.IntRange(1, 24 * 3600), default=900, show_default=True, help=help_text)


def _confirm(app: App, question: str, yes: bool, expected: tuple[str, ...], refusal: str) -> None:
    """Ask before touching AWS (unless --yes); anything but an expected answer aborts with `refusal`."""
    if yes:
        return
    if not sys.stdin.isatty() and app.runtime.confirm is None:
        raise UsageError(f"{refusal}: there is no terminal to ask on", hint="pass --yes to go ahead")
    answer = app.runtime.ask(question).strip()
    if answer.lower() not in expected and answer not in expected:
        from ghostha.errors import Aborted

        raise Aborted(f"{refusal}: the answer was {answer!r}", hint="pass --yes to skip this question")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before changing AWS.")
@timeout_option("Seconds to wait for instances and the service.")
@click.option(
    "--replace-service",
    is_flag=True,
    help="Allow replacing the service where AWS cannot change it in place (role, launch type, a new name).",
)
@pass_app
@handled
def up(app: App, dry_run: bool, yes: bool, timeout: int, replace_service: bool) -> None:
    """Provision (or converge) the highly available stack: cluster, two instances, host-port-0 revision,
    security-group rule, six-task service; then wait until every target is healthy."""
    from ghostha import render
    from ghostha.execute import execute
    from ghostha.observe import observe
    from ghostha.plan import plan_up
    from ghostha.waiting import Deadline

    cfg, aws, out = app.config(), app.aws(), app.runtime.console()
    with _stack_lock(app, "up", dry_run):
        observed = observe(aws, cfg, "up")
        planned = plan_up(cfg, observed, replace_service)
        render.plan(out, planned, dry_run)
        if dry_run:
            return
        if planned.changes:
            question = f"apply these {len(planned.changes)} changes to stack {cfg.stack}? [y/N]"
            _confirm(app, question, yes, ("y", "yes"), "nothing was changed")
        deadline = Deadline(app.runtime.clock, app.runtime.sleep, timeout, cfg.poll_seconds)
        reporter = render.StepReporter(out)
        try:
            execute(aws, cfg, planned, deadline, reporter, observed)
        finally:
            reporter.close()
    report = _status_report(app, events=5)
    out.print(render.status_tables(report))
    if report["site_url"]:
        render.line(out, report["site_url"], label="your blog:", style="bold green")


@contextmanager
def _stack_lock(app: App, command: str, dry_run: bool) -> Iterator[None]:
    """One changing run per stack at a time on this machine (a dry run changes nothing and takes no lock)."""
    if dry_run:
        yield
        return
    from ghostha.config import state_dir
    from ghostha.lock import stack_lock

    cfg, aws = app.config(), app.aws()
    account = aws.client("sts").get_caller_identity()["Account"]
    key = f"{account}-{aws.region_name}-{aws.endpoint or 'aws'}-{cfg.stack}"
    with stack_lock(state_dir() / "locks", key, cfg.stack, command):
        yield


def _status_report(app: App, events: int) -> dict[str, Any]:
    from ghostha.observe import observe
    from ghostha.status import report

    cfg = app.config()
    return report(cfg, observe(app.aws(), cfg, "status"), events=events)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object (keys documented in the README).")
@click.option(
    "--watch", is_flag=True, help="Redraw every few seconds until Ctrl-C (with --json: one JSON object per line)."
)
@click.option("--events", type=click.IntRange(0, 100), default=10, show_default=True, help="How many events.")
@pass_app
@handled
def status(app: App, as_json: bool, watch: bool, events: int) -> None:
    """Is the blog highly available right now? Exit 0 healthy, 1 degraded or not deployed."""
    from ghostha import render

    out = app.runtime.console()
    cfg = app.config()
    if watch and as_json:
        try:
            while True:
                click.echo(render.status_json(_status_report(app, events), lines=True))
                app.runtime.sleep(cfg.poll_seconds)
        except KeyboardInterrupt:
            pass
        sys.exit(0)
    if watch:
        from rich.live import Live

        report = _status_report(app, events)
        try:
            with Live(render.status_tables(report), console=out, auto_refresh=False) as live:
                while True:
                    app.runtime.sleep(cfg.poll_seconds)
                    report = _status_report(app, events)
                    live.update(render.status_tables(report), refresh=True)
        except KeyboardInterrupt:
            pass
        sys.exit(0)
    report = _status_report(app, events)
    if as_json:
        click.echo(render.status_json(report))
    else:
        out.print(render.status_tables(report))
    sys.exit(0 if report["healthy"] else EXIT_FAILED)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show what would be deleted; delete nothing.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for the stack name before deleting.")
@timeout_option("Seconds to wait for AWS to let go.")
@pass_app
@handled
def teardown(app: App, dry_run: bool, yes: bool, timeout: int) -> None:
    """Delete exactly what ghostha created (by its ownership tag), in the order AWS allows; leave the rest."""
    from ghostha import render
    from ghostha.execute import execute_teardown
    from ghostha.observe import observe_teardown
    from ghostha.plan import plan_teardown
    from ghostha.waiting import Deadline

    cfg, aws, out = app.config(), app.aws(), app.runtime.console()
    with _stack_lock(app, "teardown", dry_run):
        planned = plan_teardown(cfg, observe_teardown(aws, cfg))
        render.teardown_table(out, planned, dry_run)
        if not planned.steps:
            out.print(f"nothing to delete: stack {cfg.stack} has no resources ghostha created")
            return
        if dry_run:
            return
        question = f"type the stack name ({cfg.stack}) to delete what is marked delete"
        _confirm(app, question, yes, (cfg.stack,), "nothing was deleted")
        deadline = Deadline(app.runtime.clock, app.runtime.sleep, timeout, cfg.poll_seconds)
        reporter = render.StepReporter(out)
        try:
            execute_teardown(aws, cfg, planned, deadline, reporter)
        finally:
            reporter.close()
    out.print(f"[bold green]stack {cfg.stack} torn down[/]; left in place: what the table marks leave")


# --- init -----------------------------------------------------------------------------------------------


@cli.command("init")
@click.option("--load-balancer", metavar="NAME", help="The blog's ALB [default: the only one in the region].")
@click.option("--target-group", metavar="NAME", help="Its target group [default: the one attached to the ALB].")
@click.option("--family", metavar="NAME", help="Task definition family [default: the old service's, or ghost].")
@click.option("--from-service", metavar="CLUSTER/SERVICE", help="The service running the blog today, to copy from.")
@click.option(
    "--stack",
    metavar="NAME",
    default="ghost-ha",
    show_default=True,
    help="Stack name (names and tags what ghostha makes).",
)
@click.option(
    "--output",
    "-o",
    metavar="PATH",
    help="Where to write [default: --config, $GHOSTHA_CONFIG or ./ghostha.yaml]; - for stdout.",
)
@click.option("--force", is_flag=True, help="Replace an existing file.")
@pass_app
@handled
def init_command(
    app: App,
    load_balancer: str | None,
    target_group: str | None,
    family: str | None,
    from_service: str | None,
    stack: str,
    output: str | None,
    force: bool,
) -> None:
    """Write a commented config from what the account holds (describe/list calls only). Exit 1 when a value
    needs your choice (marked TODO in the file), 2 when a name given does not exist."""
    from ghostha import init, render
    from ghostha.config import resolve_path

    path = None if output == "-" else Path(output) if output else resolve_path(app.config_path)
    if path is not None and path.exists() and not force:
        init.write(path, "", force=False)  # refuses, naming --force
    init.check_stack(stack)
    draft = init.discover(app.account_aws(), load_balancer, target_group, family, from_service, stack)
    given = {"--load-balancer": load_balancer, "--target-group": target_group, "--family": family}
    given |= {"--from-service": from_service, "--stack": None if stack == "ghost-ha" else stack}
    command = " ".join(["ghostha init", *(f"{k} {v}" for k, v in given.items() if v)])
    text = init.render_config(draft, command)
    init.check(draft, text, str(path or "<stdout>"))
    if path is None:
        click.echo(text, nl=False)
    else:
        init.write(path, text, force)
    render.init_written(
        app.runtime.err_console() if path is None else app.runtime.console(), path, draft, _self_command()
    )
    if draft.todos:
        where = path or "the config"
        raise GhosthaError(
            f"{where} has {len(draft.todos)} value(s) marked TODO that need your choice",
            details=draft.todos,
            hint=f"edit {where}, then run `ghostha{'' if path is None else f' --config {path}'} up --dry-run`",
        )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object: verdict, checks, expected_recovery.")
@pass_app
@handled
def doctor(app: App, as_json: bool) -> None:
    """Audit the stack for high availability (reads only). Exit 0 when no check fails, 1 otherwise."""
    from ghostha import render
    from ghostha.checks import audit
    from ghostha.observe import observe

    cfg = app.config()
    result = audit(cfg, observe(app.aws(), cfg, "doctor"))
    if as_json:
        click.echo(render.doctor_json(result))
    else:
        app.runtime.console().print(render.doctor_tables(result, cfg.stack))
    sys.exit(EXIT_FAILED if result.verdict == "FAIL" else 0)


# --- drill ---------------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--kill", type=click.Choice(["task", "instance"]), default="task", show_default=True, help="What to stop."
)
@click.option("--target", metavar="ID", help="The task id or i-… instance id [default: a random one].")
@click.option("--graceful", is_flag=True, help="Drain first: the task's target, or the container instance.")
@click.option("--url", metavar="URL", help="What to probe [default: site_url, else http:// + the ALB's name].")
@click.option("--rate", type=click.FloatRange(0.1, 1000), default=10, show_default=True, help="Requests per second.")
@click.option("--max-failed-requests", type=click.IntRange(0), default=0, show_default=True, help="PASS up to this.")
@click.option(
    "--max-recovery", type=click.IntRange(1, 24 * 3600), default=600, show_default=True, help="Seconds to wait."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object (keys documented in the README).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for the stack name before stopping.")
@click.option("--force", is_flag=True, help="Drill even when the stack is not healthy.")
@click.option("--connections", type=click.IntRange(1, 64), default=4, hidden=True, help="Probes in flight at once.")
@pass_app
@handled
def drill(
    app: App,
    kill: str,
    target: str | None,
    graceful: bool,
    url: str | None,
    rate: float,
    max_failed_requests: int,
    max_recovery: int,
    as_json: bool,
    yes: bool,
    force: bool,
    connections: int,
) -> None:
    """Stop one task as the story does (or terminate one instance) and measure what the blog's visitors saw:
    failed requests, outage, recovery times. Exit 0 PASS, 1 FAIL or refused, 2 bad target or URL, 3 not
    recovered in time."""
    from ghostha import drill as drilling
    from ghostha import render

    cfg, aws, out = app.config(), app.aws(), app.runtime.console()
    prepared = drilling.prepare(aws, cfg, kill, target, graceful, url, force)
    what = (
        f"terminate instance {prepared.victim_id} ({len(prepared.task_arns)} tasks)"
        if prepared.kind == "instance"
        else f"stop task {prepared.victim_id} on {prepared.instance_id}"
    ) + (" after draining it" if graceful else "")
    _confirm(app, f"type the stack name ({cfg.stack}) to {what}", yes, (cfg.stack,), "nothing was stopped")
    view: drilling.DrillProgress = drilling.Quiet() if as_json else render.DrillView(out)
    try:
        report = drilling.run(
            aws,
            cfg,
            prepared,
            app.runtime.clock,
            app.runtime.sleep,
            view,
            rate=rate,
            connections=connections,
            max_failed_requests=max_failed_requests,
            max_recovery=max_recovery,
        )
    finally:
        if isinstance(view, render.DrillView):
            view.close()
    if as_json:
        click.echo(render.status_json(report))
    else:
        out.print(render.drill_report(report))
    sys.exit(drilling.exit_code(report))


# --- sandbox --------------------------------------------------------------------------------------------


@cli.group()
def sandbox() -> None:
    """A local AWS (moto + a simulation of ECS) for trying ghostha without an account."""


def _sandbox_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    import re

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}", value):
        raise click.BadParameter("must be letters, digits, '-' or '_' (at most 40), starting with a letter or digit")
    return value


def _self_command() -> str:
    """How to run ghostha again from this shell: `ghostha` if that is on PATH and is us, else the path used."""
    argv0 = sys.argv[0] if sys.argv else ""
    on_path = shutil.which("ghostha")
    if on_path and argv0 and Path(on_path).resolve() == Path(argv0).resolve():
        return "ghostha"
    if argv0 and Path(argv0).name == "ghostha" and Path(argv0).exists():
        return os.path.relpath(argv0) if not os.path.isabs(argv0) else argv0
    return f"{os.path.relpath(sys.executable)} -m ghostha"


def _check_port(port: int) -> None:
    """Refuse a --port that is taken before starting anything (werkzeug would print two lines and exit)."""
    if port == 0:
        return
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(
                f"the sandbox cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}",
                hint="pass another --port, or leave it out for a free one",
            ) from None


def _need_moto() -> None:
    import importlib.util

    if importlib.util.find_spec("moto") is None:
        raise UsageError(
            "the sandbox needs moto, which is not installed",
            hint="install ghostha with its sandbox extra: `pip install 'ghostha[sandbox]'` "
            "(or `pipx install 'ghostha[sandbox]'`)",
        )


@sandbox.command("start")
@click.option("--detach", "-d", is_flag=True, help="Run in the background; stop with `ghostha sandbox stop`.")
@click.option(
    "--name",
    default="default",
    show_default=True,
    callback=_sandbox_name,
    help="Name of this sandbox (several may run).",
)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port to listen on [default: a free one].")
@click.option(
    "--scale",
    type=click.FloatRange(0.1, 10000),
    default=30.0,
    show_default=True,
    help="Simulated seconds per real second.",
)
@click.option(
    "--write-config",
    "config_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write a ghostha config for the seeded stack "
    "[default: ghostha-sandbox.yaml, or ghostha-NAME.yaml with --name].",
)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True)
@pass_app
@handled
def sandbox_start(
    app: App, detach: bool, name: str, port: int, scale: float, config_out: Path | None, state_dir: Path | None
) -> None:
    """Start the sandbox seeded with the story's starting point, and write a config for it."""
    _need_moto()
    from ghostha.sandbox import control

    _check_port(port)
    states = state_dir or control.default_state_dir()
    config_out = config_out or control.default_config_path(name)
    control.check_config_target(config_out)
    out = app.runtime.console()
    step = f"{_self_command()} --config {config_out} up"
    if detach:
        running = control.start_detached(states, name, scale, port)
        assert running.seeded is not None
        try:
            kept = control.write_config(config_out, running.seeded, running.endpoint)
        except BaseException:
            control.stop(states, name)
            raise
        control.remember_config(running, config_out)
        out.print(f"sandbox '{name}' running at {running.endpoint} (pid {running.pid})", highlight=False, markup=False)
        _kept_edits(out, config_out, kept)
        out.print(f"config written to {config_out}; next:", highlight=False, markup=False)
        out.print(f"  {step}", highlight=False, markup=False, soft_wrap=True)
        if running.site_url:
            out.print(f"the blog answers at {running.site_url} (the ALB stand-in)", highlight=False, markup=False)
        return
    if (other := control.find(states, name)) is not None:
        raise control.already_running(other)
    from ghostha.sandbox.server import Sandbox

    box = Sandbox(port=port, scale=scale, dataplane=True).start()
    path = control.state_file(states, name)
    try:
        assert box.seeded is not None
        kept = control.write_config(config_out, box.seeded.to_dict(), box.endpoint)
        # a state file as a detached sandbox has: `sandbox stop` (SIGTERM) and "already running" see this one too
        control.write_state(path, {**box.state(), "config": str(config_out.resolve())})
        signal.signal(signal.SIGTERM, _stop_as_ctrl_c)
        out.print(f"sandbox running at {box.endpoint}; Ctrl-C stops it", highlight=False, markup=False)
        _kept_edits(out, config_out, kept)
        out.print(f"config written to {config_out}; in another shell:", highlight=False, markup=False)
        out.print(f"  {step}", highlight=False, markup=False, soft_wrap=True)
        out.print(f"the blog answers at {box.site_url} (the ALB stand-in)", highlight=False, markup=False)
        while True:
            app.runtime.sleep(3600)
    except KeyboardInterrupt:
        out.print("stopping the sandbox")
    finally:
        path.unlink(missing_ok=True)
        box.stop()


def _kept_edits(out: Console, path: Path, kept: list[str]) -> None:
    if kept:
        line = f"{path} had your values for {', '.join(kept)}: kept (endpoint and network ids are this sandbox's)"
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _stop_as_ctrl_c(signum: int, frame: object) -> None:
    """SIGTERM (`ghostha sandbox stop`) stops a foreground sandbox as Ctrl-C does."""
    raise KeyboardInterrupt


@sandbox.command("stop")
@click.option("--name", default="default", show_default=True, callback=_sandbox_name)
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None, hidden=True)
@pass_app
@handled
def sandbox_stop(app: App, name: str, state_dir: Path | None) -> None:
    """Stop a detached sandbox."""
    from ghostha.sandbox import control

    stopped = control.stop(state_dir or control.default_state_dir(), name)
    if stopped is None:
        app.runtime.console().print(f"no sandbox '{name}' is running")
        return
    app.runtime.console().print(f"sandbox '{name}' at {stopped.endpoint} stopped", highlight=False, markup=False)


def main() -> None:
    try:
        cli(prog_name="ghostha")
    except KeyboardInterrupt:  # pragma: no cover - Ctrl-C before click's own handling starts
        sys.exit(Interrupted.exit_code)


__all__ = ["EXIT_USAGE", "App", "Runtime", "cli", "main"]


# --- policy (least privilege, issue #12) ---------------------------------------------------------------------


@cli.command("policy")
@click.option("--any-stack", is_flag=True, help="The stack-agnostic form shipped as iam-policy.json (no config).")
@pass_app
@handled
def policy_command(app: App, any_stack: bool) -> None:
    """Print the IAM policy that runs every ghostha command, scoped to the config's stack, names and region."""
    import json

    from ghostha import policy

    doc = policy.document(None if any_stack else policy.scope_of(app.config(), app.region))
    click.echo(json.dumps(doc, indent=2))
