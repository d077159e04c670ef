"""The sandbox's data plane: tasks serve HTTP on loopback, an ALB stand-in proxies to them, health checks are real.

- Each RUNNING (or DEACTIVATING: still serving) task of a load-balanced service listens at its host port and
  answers like Ghost: 503 for its first `GHOST_BOOT_SECONDS` simulated seconds, then 200 with a page naming its
  task id. When the task stops serving (STOPPING, STOPPED) its listener closes at once: connections are refused.
- Addresses: two instances can hand out the same host port (each counts from 32768), so each simulated EC2
  instance gets its own loopback address. Linux routes all of 127/8 to the loopback interface; each data plane
  draws a random block 127.A.B.0/24 (A 1-254, B 0-255) and gives the instances .2, .3, ... .251 in the order it
  first sees them (then 127.A.B+1.2 and on). Two sandboxes on one machine collide only if they draw the same
  block (1 in 65 024).
- The ALB stand-in listens on the sandbox's host at a free port: each request goes round-robin to the targets
  of its listeners' target groups that are `healthy`. A target that has just begun draining stays in the
  rotation for `DEREGISTRATION_LAG_SECONDS` (AWS stops routing to it "at about the same time" as ECS kills the
  task: the 502 burst of aws/containers-roadmap#708). 503 when no target is in the rotation, 502 when the chosen
  target refuses the connection, 504 when it does not answer in time. Every answer is logged (`log`).
- Health checks (`health_check`) are real HTTP requests to the target's health-check path, judged by the group's
  matcher; the simulation (sim.py) runs them at the group's interval and applies the thresholds.

Everything runs on one asyncio loop in one thread; `close()` ends it and closes every socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import random
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from moto.ecs.models import ecs_backends
from moto.elbv2.models import elbv2_backends

from ghostha.sandbox.clock import SimClock

ACCOUNT = "123456789012"
GHOST_BOOT_SECONDS = 15.0  # Ghost answers 503 (maintenance) while it boots
DEREGISTRATION_LAG_SECONDS = 5.0  # a draining target still gets new requests this long
TARGET_TIMEOUT = 5.0  # real seconds the ALB stand-in waits for a target's answer
SERVING = ("RUNNING", "DEACTIVATING")
T = TypeVar("T")


@dataclass(frozen=True)
class Served:
    """What a task's listener serves: the task it belongs to and when (simulated seconds) it started."""

    task_id: str
    started: float


@dataclass(frozen=True)
class Routed:
    """One request the ALB stand-in answered: when (simulated seconds), its status, and the target it chose."""

    at: float
    status: int
    target: str | None  # "instance-id:port"


def _response(status: int, reason: str, body: str) -> bytes:
    data = body.encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def matches(matcher: dict[str, Any] | None, status: int) -> bool:
    """Does a status match a target group's matcher ("200", "200,301", "200-399")?"""
    spec = str((matcher or {}).get("HttpCode") or "200")
    for part in spec.split(","):
        low, _, high = part.strip().partition("-")
        if int(low) <= status <= int(high or low):
            return True
    return False


class DataPlane:
    def __init__(self, clock: SimClock, host: str = "127.0.0.1", alb_port: int = 0) -> None:
        self.clock = clock
        self.host = host
        self.block = (random.randint(1, 254), random.randint(0, 255))
        self.alb_arn: str | None = None  # the load balancer the stand-in serves
        self.log: list[Routed] = []
        self._addresses: dict[str, str] = {}
        self._listeners: dict[tuple[str, int], tuple[asyncio.Server, Served]] = {}
        self._rotation: list[tuple[str, int, str]] = []  # (address, port, "instance:port")
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="ghostha-dataplane", daemon=True)
        self._thread.start()
        self._alb = self._run(asyncio.start_server(self._proxy, host, alb_port, reuse_address=True))
        self.alb_port = int(self._alb.sockets[0].getsockname()[1])

    @property
    def alb_url(self) -> str:
        return f"http://{self.host}:{self.alb_port}"

    def address(self, instance_id: str) -> str:
        """The loopback address standing in for an EC2 instance."""
        if instance_id not in self._addresses:
            n = len(self._addresses)
            a, b = self.block
            self._addresses[instance_id] = f"127.{a}.{(b + n // 250) % 256}.{n % 250 + 2}"
        return self._addresses[instance_id]

    def forget(self) -> None:
        """After a reset: no instances, no log."""
        self._addresses.clear()
        self.log.clear()

    def listening(self) -> dict[tuple[str, int], str]:
        """(address, port) → task id of every open task listener."""
        return {key: served.task_id for key, (_server, served) in self._listeners.items()}

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # --- following the simulation (called under the sandbox's lock, after each pass) ------------------------

    def sync(self) -> None:
        """Open a listener for each task that serves, close the others at once, and recompute the rotation."""
        now = self.clock.seconds()
        wanted: dict[tuple[str, int], Served] = {}
        for region in ecs_backends.get(ACCOUNT, {}):
            ecs = ecs_backends[ACCOUNT][region]
            for tasks in ecs.tasks.values():
                for task in tasks.values():
                    iid = getattr(task, "sim_instance_id", None)
                    started = getattr(task, "sim_started", None)
                    if task.last_status not in SERVING or iid is None or started is None:
                        continue
                    for c in task.containers:
                        for b in getattr(c, "network_bindings", []):
                            wanted[(self.address(iid), int(b["hostPort"]))] = Served(task.id, started)
        gone = [k for k, (_s, served) in self._listeners.items() if wanted.get(k) != served]
        new = {k: v for k, v in wanted.items() if k not in self._listeners or k in gone}
        if gone or new:
            self._run(self._apply(gone, new))
        self._rotation = self._route(now)

    async def _apply(self, gone: list[tuple[str, int]], new: dict[tuple[str, int], Served]) -> None:
        for key in gone:
            server, _served = self._listeners.pop(key)
            server.close()
        for (addr, port), served in new.items():

            async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter, s: Served = served) -> None:
                await self._ghost(s, r, w)

            try:
                server = await asyncio.start_server(handle, addr, port, reuse_address=True)
            except OSError:
                continue  # the port is taken on this machine: the target fails its health checks
            self._listeners[(addr, port)] = (server, served)

    def _route(self, now: float) -> list[tuple[str, int, str]]:
        if self.alb_arn is None:
            return []
        region = self.alb_arn.split(":")[3]
        elbv2 = elbv2_backends.get(ACCOUNT, {}).get(region)
        lb = elbv2.load_balancers.get(self.alb_arn) if elbv2 is not None else None
        if lb is None:
            return []
        groups: list[str] = []
        for listener in lb.listeners.values():
            for action in listener.default_actions:
                arn = action.data.get("TargetGroupArn")
                if action.data.get("Type") == "forward" and arn and arn not in groups:
                    groups.append(arn)
        rotation = []
        for arn in groups:
            tg = elbv2.target_groups.get(arn)
            for key, t in sorted((tg.targets if tg is not None else {}).items()):
                since = t.get("since")
                fresh = t["State"] == "draining" and (since is None or now - since < DEREGISTRATION_LAG_SECONDS)
                if t["State"] == "healthy" or fresh:
                    rotation.append((self.address(t["Id"]), int(t["Port"]), key))
        return rotation

    # --- health checks -----------------------------------------------------------------------------------

    def health_check(self, tg: Any, instance_id: str, port: int) -> tuple[str, str] | None:
        """One real health check: None when it passes, else ELBv2's (reason code, description)."""
        conn = http.client.HTTPConnection(self.address(instance_id), port, timeout=TARGET_TIMEOUT)
        try:
            conn.request("GET", tg.health_check_path or "/", headers={"User-Agent": "ELB-HealthChecker/2.0"})
            status = conn.getresponse().status
        except TimeoutError:
            return "Target.Timeout", "Request timed out"
        except OSError:
            return "Target.FailedHealthChecks", "Health checks failed"
        finally:
            conn.close()
        if matches(tg.matcher, status):
            return None
        return "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"

    # --- HTTP --------------------------------------------------------------------------------------------

    async def _ghost(self, served: Served, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TARGET_TIMEOUT)
            if self.clock.seconds() - served.started < GHOST_BOOT_SECONDS:
                writer.write(_response(503, "Service Unavailable", "Ghost is starting"))
            else:
                writer.write(_response(200, "OK", f"<html><body>ghost task {served.task_id}</body></html>"))
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        finally:
            writer.close()

    async def _proxy(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TARGET_TIMEOUT)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            writer.close()
            return
        rotation = self._rotation
        status, label, answer = 503, None, _response(503, "Service Unavailable", "503 Service Temporarily Unavailable")
        if rotation:
            addr, port, label = rotation[self._next % len(rotation)]
            self._next += 1
            status, answer = await self._forward(head, addr, port)
        self.log.append(Routed(self.clock.seconds(), status, label))
        with contextlib.suppress(OSError):
            writer.write(answer)
            await writer.drain()
        writer.close()

    @staticmethod
    async def _forward(head: bytes, addr: str, port: int) -> tuple[int, bytes]:
        line = head.split(b"\r\n", 1)[0]
        try:
            r, w = await asyncio.open_connection(addr, port)
        except OSError:
            return 502, _response(502, "Bad Gateway", "502 Bad Gateway")
        try:
            w.write(line + f"\r\nHost: {addr}:{port}\r\nConnection: close\r\n\r\n".encode())
            await w.drain()
            data = await asyncio.wait_for(r.read(), TARGET_TIMEOUT)
        except TimeoutError:
            return 504, _response(504, "Gateway Timeout", "504 Gateway Time-out")
        except OSError:
            return 502, _response(502, "Bad Gateway", "502 Bad Gateway")
        finally:
            w.close()
        try:
            return int(data.split(b" ", 2)[1]), data
        except (IndexError, ValueError):
            return 502, _response(502, "Bad Gateway", "502 Bad Gateway")

    # --- lifecycle ---------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close every listener and the ALB stand-in, and end the loop's thread."""
        if not self._thread.is_alive():
            return

        async def shut() -> None:
            for server, _served in self._listeners.values():
                server.close()
            self._listeners.clear()
            self._alb.close()
            await self._alb.wait_closed()

        self._run(shut())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
