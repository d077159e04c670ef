"""The sandbox server: moto's HTTP app behind a guard that runs the simulation, one request at a time.

Before each request the simulation catches up with the simulated clock, under the same lock as the request,
so what a caller sees is always consistent. With a running clock (scale > 0) a background thread also lets the
simulation act every few simulated seconds, so AWS moves on by itself as it does; with scale 0 (the tests) time
moves only by `advance`. With `dataplane=True` tasks serve HTTP on loopback behind an ALB stand-in, and health
checks are real requests (dataplane.py). `/_ghostha/*` paths are the sandbox's own controls (info, advance,
reset). `python -m ghostha.sandbox.server` runs one (that is what `ghostha sandbox start` starts).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from ghostha.sandbox import control, guard, hooks, lag, offerings, scaling
from ghostha.sandbox.clock import SimClock
from ghostha.sandbox.dataplane import DataPlane
from ghostha.sandbox.seed import Seeded, seed
from ghostha.sandbox.sim import Simulator

DEFAULT_REGION = "us-east-1"
TICK_SIM_SECONDS = 2.0  # with a running clock, the simulation acts at least this often (simulated seconds)
Environ = dict[str, Any]
StartResponse = Callable[..., Any]


def boto_client(endpoint: str, service: str, region: str = DEFAULT_REGION) -> Any:
    """A boto3 client for the sandbox: placeholder credentials, few retries (moto's 500s are not transient)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(retries={"mode": "standard", "max_attempts": 2}),
    )


class Request(tuple[str, str]):
    """(service, action) of one AWS request, equal to that plain tuple, with the request's parameters as `params`: a
    JSON body as parsed, a query-protocol form as {name: value} (`Tags.member.1.Key`: …)."""

    params: dict[str, Any]


class Sandbox:
    """A local AWS: moto server + simulation, on a free loopback port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        scale: float = 0.0,
        region: str = DEFAULT_REGION,
        dataplane: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.region = region
        self.clock = SimClock(scale)
        self.sim = Simulator(self.clock)
        self.lock = threading.RLock()
        self.seeded: Seeded | None = None
        self._server: Any = None
        self._clients: dict[str, Any] = {}
        self.requests: list[Request] = []  # (service, action) of every AWS request, in order, with its parameters
        self._thread: threading.Thread | None = None
        self._want_dataplane = dataplane
        self.dataplane: DataPlane | None = None
        self._ticker: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle ---------------------------------------------------------------------------------------

    def start(self, seed_story: bool = True) -> Sandbox:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import WSGIRequestHandler, make_server

        clock = self.clock

        class QuietHandler(WSGIRequestHandler):
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                # the Date header tells simulated time, as AWS's tells AWS's time
                return format_datetime(clock.now(), usegmt=True)

        hooks.install()
        scaling.install(self.clock)
        guard.install(self.sim)
        lag.install(self.clock)
        offerings.install()
        moto_app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server(
            self.host, self.port, self._wsgi(moto_app), threaded=True, request_handler=QuietHandler
        )
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, name="ghostha-sandbox", daemon=True)
        self._thread.start()
        if self._want_dataplane:
            self.start_dataplane()
        self.reset(seed_story)
        if self.clock.scale > 0:
            self._stopping.clear()
            self._ticker = threading.Thread(target=self._tick, name="ghostha-sandbox-clock", daemon=True)
            self._ticker.start()
        return self

    def _tick(self) -> None:
        """Let the simulation act as simulated time passes, requests or not."""
        interval = max(0.02, min(1.0, TICK_SIM_SECONDS / self.clock.scale))
        while not self._stopping.wait(interval):
            try:
                self.reconcile()
            except Exception:  # keep time running; the log shows what went wrong
                traceback.print_exc()

    def start_dataplane(self) -> DataPlane:
        """Tasks serve HTTP on loopback behind an ALB stand-in; health checks become real requests."""
        with self.lock:
            if self.dataplane is None:
                self.dataplane = DataPlane(self.clock, self.host)
                self.dataplane.alb_arn = self.seeded.alb_arn if self.seeded else None
                self.sim.health_checker = self.dataplane.health_check
                self.sim.after_tasks = self.dataplane.sync
            return self.dataplane

    def stop_dataplane(self) -> None:
        """Close every listener of the data plane; health checks go back to the security-group rule alone."""
        with self.lock:
            if self.dataplane is not None:
                self.dataplane.close()
                self.dataplane = None
            self.sim.health_checker = None
            self.sim.after_tasks = None

    def state(self) -> dict[str, Any]:
        """What a sandbox's state file holds (ghostha/sandbox/control.py reads it): this process, where it answers."""
        return {
            "pid": os.getpid(),
            "endpoint": self.endpoint,
            "seeded": self.seeded.to_dict() if self.seeded else None,
            "site_url": self.site_url,
        }

    @property
    def poll_seconds(self) -> float | None:
        """How often a client should poll: about 15 simulated seconds (AWS's 5 s would be minutes at --scale 30),
        within 0.2-5 real seconds; None with manual time (scale 0), where only `advance` moves the clock."""
        scale = self.clock.scale
        return max(0.2, min(5.0, round(15.0 / scale, 3))) if scale > 0 else None

    @property
    def site_url(self) -> str | None:
        """The ALB stand-in's URL (None without a data plane)."""
        return self.dataplane.alb_url if self.dataplane is not None else None

    def stop(self) -> None:
        self._stopping.set()
        if self._ticker is not None:
            self._ticker.join(timeout=10)
            self._ticker = None
        self.stop_dataplane()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def consistency_lag(self) -> float:
        """Simulated seconds that some reads lag behind writes (0: off, the default; see lag.py)."""
        return lag.LAG.seconds

    @consistency_lag.setter
    def consistency_lag(self, seconds: float) -> None:
        lag.LAG.seconds = float(seconds)

    @property
    def instance_type_offerings(self) -> dict[str, set[str]] | None:
        """Instance types offered per AZ (None, the default: moto's bundled offerings; see offerings.py)."""
        return offerings.OFFERINGS.by_az

    @instance_type_offerings.setter
    def instance_type_offerings(self, by_az: dict[str, set[str]] | None) -> None:
        offerings.OFFERINGS.by_az = by_az

    @property
    def unpullable_images(self) -> set[str]:
        """Images no registry has (empty, the default): a task with one fails to start, as a failed pull does;
        add an image name as the task definition gives it (see sim.py, `Simulator._pull_fails`)."""
        return self.sim.unpullable_images

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    def client(self, service: str) -> Any:
        """A cached boto3 client for this sandbox (clients are thread-safe)."""
        if service not in self._clients:
            self._clients[service] = boto_client(self.endpoint, service, self.region)
        return self._clients[service]

    # --- state -------------------------------------------------------------------------------------------

    def reset(self, seed_story: bool = True) -> Seeded | None:
        """Forget everything, then seed the story's starting point again."""
        from moto.moto_api._internal.models import moto_api_backend

        with self.lock:
            moto_api_backend.reset()
            hooks.pin_task_states()
            hooks.load_managed_policies()
            lag.LAG.seconds = 0.0
            offerings.OFFERINGS.by_az = None
            self.sim.unpullable_images.clear()
        self.seeded = seed(self.client, self.region) if seed_story else None
        if self.dataplane is not None:
            with self.lock:
                self.dataplane.alb_arn = self.seeded.alb_arn if self.seeded else None
                self.dataplane.forget()
                self.dataplane.sync()
        return self.seeded

    def advance(self, seconds: float, step: float = 5.0) -> None:
        """Let simulated time pass, the simulation acting at least every `step` seconds of it."""
        left = seconds
        while True:
            self.clock.advance(min(step, left))
            left -= min(step, left)
            self.reconcile()
            if left <= 0:
                break

    def reconcile(self) -> None:
        with self.lock:
            self.sim.reconcile()

    # --- HTTP --------------------------------------------------------------------------------------------

    def _wsgi(self, app: Callable[[Environ, StartResponse], Iterable[bytes]]) -> Any:
        def guarded(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
            path = str(environ.get("PATH_INFO", ""))
            if path.startswith("/_ghostha/"):
                return self._control(path, environ, start_response)
            self._record(environ)
            with self.lock:
                self.sim.reconcile()
                body = list(app(environ, start_response))
                self.sim.reconcile()  # stamps what the request created with the time it happened
                return body

        return guarded

    def _record(self, environ: Environ) -> None:
        """Log (service, action) of each AWS request with its parameters: tests count mutating calls with it and
        check each against the IAM policy (tests/test_permissions.py)."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", str(environ.get("HTTP_AUTHORIZATION", "")))
        service = match.group(1) if match else "?"
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        params: dict[str, Any]
        if target:
            action = target.rsplit(".", 1)[-1]
            try:
                loaded = json.loads(body or b"{}")
            except ValueError:
                loaded = {}
            params = loaded if isinstance(loaded, dict) else {}
        else:
            form = parse_qs(body.decode("utf-8", "replace")) if body else {}
            query = parse_qs(str(environ.get("QUERY_STRING", "")))
            action = (form.get("Action") or query.get("Action") or ["?"])[0]
            params = {k: v[0] for k, v in {**query, **form}.items()}
        request = Request((service, action))
        request.params = params
        self.requests.append(request)

    def _control(self, path: str, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        body: dict[str, Any]
        if path == "/_ghostha/advance":
            self.advance(float(query.get("seconds", ["0"])[0]))
            body = {"seconds": self.clock.seconds()}
        elif path == "/_ghostha/reset":
            seeded = self.reset()
            body = {"seeded": seeded.to_dict() if seeded else None}
        elif path == "/_ghostha/runtime":  # what ghostha/advice.py asks: the runtime keys the AWS API cannot tell
            body = {"poll_seconds": self.poll_seconds, "site_url": self.site_url}
        elif path == "/_ghostha/info":
            with self.lock:  # the data plane's listeners change under the lock
                listening = [f"{a}:{p}" for a, p in self.dataplane.listening()] if self.dataplane else []
            body = {
                "endpoint": self.endpoint,
                "seconds": self.clock.seconds(),
                "scale": self.clock.scale,
                "seeded": self.seeded.to_dict() if self.seeded else None,
                "site_url": self.site_url,
                "listening": listening,
            }
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown sandbox control"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]


def main(argv: list[str] | None = None) -> int:
    """Run a sandbox until SIGTERM or Ctrl-C; write its state file once it is ready."""
    parser = argparse.ArgumentParser(prog="python -m ghostha.sandbox.server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument("--state-file", type=Path)
    parser.add_argument("--no-dataplane", action="store_true", help="no HTTP on loopback: control plane only")
    args = parser.parse_args(argv)
    box = Sandbox(args.host, args.port, args.scale, args.region, dataplane=not args.no_dataplane).start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())  # Ctrl-C at any moment from here stops it cleanly
    if args.state_file:
        control.write_state(args.state_file, box.state())
    print(f"sandbox ready at {box.endpoint}", flush=True)
    done.wait()  # the process exits below: the kernel closes every listener of the data plane with it
    if args.state_file:
        args.state_file.unlink(missing_ok=True)
    print("sandbox stopped", flush=True)
    # Nothing here needs an orderly shutdown (moto's state lives in memory only): exit at once rather than wait
    # for the HTTP server's poll loop and the interpreter's teardown of moto's threads (seconds).
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
