"""ECS API answers as AWS gives them where moto answers otherwise: validation, lookups, ids, RunTask placement.

- RegisterTaskDefinition rejects what AWS rejects (a ClientException, worded as AWS words it where known).
- DescribeTasks answers unknown ids in `failures` (`MISSING`); STOPPED tasks leave ListTasks/DescribeTasks an hour
  after they stopped; more than 100 ids is an InvalidParameterException.
- DescribeContainerInstances also finds deregistered (INACTIVE) container instances for an hour.
- Task and container-instance ids are 32 lowercase hex characters, as AWS's are.
- RunTask (EC2) places through the simulation's scheduler: within CPU, memory and port limits, with `failures`
  (`RESOURCE:PORTS`, `RESOURCE:MEMORY`, `RESOURCE:CPU`) naming each container instance when nothing fits.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from types import SimpleNamespace
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ecs import models as ecs_models
from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import ECSException, InvalidParameterException
from moto.moto_api._internal import mock_random

from ghostha.sandbox import sim as simulation
from ghostha.sandbox.hooks import replace_handlers
from ghostha.sandbox.sim import Simulator

Response = ecs_responses.EC2ContainerServiceResponse
_original: dict[str, Any] = {}
SIM: Simulator | None = None

STOPPED_VISIBLE_SECONDS = 3600.0  # ListTasks: "stopped tasks appear in the returned results for at least one hour"
NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
PROTOCOLS = ("tcp", "udp")
MIN_CONTAINER_MEMORY = 6  # MiB: "The Docker 20.10.0 or later daemon reserves a minimum of 6 MiB of memory"
_FAMILY_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
RESOURCE_REASONS = {
    simulation.PORTS_PROBLEM: "RESOURCE:PORTS",
    simulation.MEMORY_PROBLEM: "RESOURCE:MEMORY",
    simulation.CPU_PROBLEM: "RESOURCE:CPU",
}


class ClientException(ECSException):
    def __init__(self, message: str) -> None:
        super().__init__("ClientException", message)


def _sim() -> Simulator:
    if SIM is None:
        raise RuntimeError("the sandbox simulation is not installed")
    return SIM


# --- ids -----------------------------------------------------------------------------------------------------


def _hex_id(init: Any) -> Any:
    @functools.wraps(init)  # hooks.check() reads moto's own __init__ through __wrapped__
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.id = mock_random.uuid4().hex  # AWS: 32 hex characters, no dashes

    __init__.sim_hex_id = True  # type: ignore[attr-defined]
    return __init__


def _patch_ids() -> None:
    for cls in (ecs_models.Task, ecs_models.ContainerInstance):
        if not getattr(cls.__init__, "sim_hex_id", False):
            cls.__init__ = _hex_id(cls.__init__)  # type: ignore[method-assign]


# --- pagination ----------------------------------------------------------------------------------------------


def page(self: Any, key: str, items: list[str], default: int = 100) -> dict[str, Any]:
    """Pages of at most 100 (`default` when the caller gives no `maxResults`: ListServices answers 10), as AWS
    answers (moto answers everything at once); AWS refuses a `maxResults` above 100 and a `nextToken` it did not
    hand out."""
    max_results = self._get_param("maxResults")
    if max_results is not None and not 1 <= int(max_results) <= 100:
        # wording ours: AWS's message for this was not found; the API reference gives the range 1-100
        raise InvalidParameterException("maxResults must be between 1 and 100.")
    size = int(max_results or default)
    token = self._get_param("nextToken")
    start = _offset(token) if token else 0
    out: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        out["nextToken"] = base64.urlsafe_b64encode(f"ghostha:{start + size}".encode()).decode()
    return out


def _offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    prefix, _, number = text.partition(":")
    if prefix != "ghostha" or not number.isdigit():
        # wording ours: AWS answers InvalidParameterException; its message was not found
        raise InvalidParameterException("Invalid nextToken.")
    return int(number)


# --- RegisterTaskDefinition ----------------------------------------------------------------------------------


def task_definition_problem(params: dict[str, Any]) -> str | None:
    """Why AWS would refuse this RegisterTaskDefinition request, in its words where they are known, else None."""
    family = str(params.get("family") or "")
    containers = params.get("containerDefinitions") or []
    mode = params.get("networkMode") or "bridge"
    if not containers:
        return "Container list cannot be empty."
    if not _FAMILY_RE.match(family):
        return "Family contains invalid characters."
    if mode not in NETWORK_MODES:
        # wording ours: AWS's message for an unknown network mode was not found
        return f"Invalid networkMode '{mode}'. Valid values are {', '.join(NETWORK_MODES)}."
    names = [str(c.get("name")) for c in containers]
    if len(set(names)) != len(names):
        return "Container names must be unique within a Task Definition."
    for c in containers:
        name = c.get("name")
        memory, reservation = c.get("memory"), c.get("memoryReservation")
        if memory is not None and int(memory) < MIN_CONTAINER_MEMORY:
            # wording ours, after AWS's "Invalid 'containerPort' setting for container '…'."
            return f"Invalid 'memory' setting for container '{name}'."
        if reservation is not None and int(reservation) < MIN_CONTAINER_MEMORY:
            return f"Invalid 'memoryReservation' setting for container '{name}'."
        if memory is not None and reservation is not None and int(reservation) > int(memory):
            # wording ours: AWS's message was not found (the rule: memory must be >= memoryReservation)
            return f"Invalid 'memoryReservation' setting for container '{name}'. It must not exceed 'memory'."
        for pm in c.get("portMappings") or []:
            port = pm.get("containerPort")
            if port is not None and not 0 < int(port) <= 65535:
                return f"Invalid 'containerPort' setting for container '{name}'."
            host = pm.get("hostPort")
            if mode == "awsvpc" and host is not None and port is not None and int(host) != int(port):
                return "When networkMode=awsvpc, the host ports and container ports in port mappings must match."
            if pm.get("protocol") is not None and pm["protocol"] not in PROTOCOLS:
                # wording ours, after the console's "Valid values for portMapping protocol are tcp and udp."
                return f"Invalid 'protocol' setting for container '{name}'. Valid values are tcp and udp."
    if not any(c.get("essential", True) for c in containers):
        return "Task definition doesn't have any essential container."
    return None


def register_task_definition(self: Any) -> Any:
    problem = task_definition_problem(self._get_params())
    if problem:
        raise ClientException(problem)
    return _original["register_task_definition"](self)


# --- lookups -------------------------------------------------------------------------------------------------


def expire(backend: Any, now: float) -> None:
    """Forget what AWS forgets: STOPPED tasks an hour after they stopped, INACTIVE container instances after
    `RETIRED_SECONDS`."""
    clock = _sim().clock
    for tasks in backend.tasks.values():
        for arn, task in list(tasks.items()):
            stopped_at = getattr(task, "stopped_at", None)
            if (
                task.last_status == "STOPPED"
                and stopped_at is not None
                and (clock.at(now) - stopped_at).total_seconds() >= STOPPED_VISIBLE_SECONDS
            ):
                del tasks[arn]
    for cluster_name in list(getattr(backend, "sim_retired", {})):
        gone = simulation.retired(backend, cluster_name)
        for ci_id, ci in list(gone.items()):
            if now - float(ci.sim_retired_at) >= simulation.RETIRED_SECONDS:
                del gone[ci_id]


def _missing(backend: Any, kind: str, cluster: str, ref: str) -> dict[str, str]:
    if ref.startswith("arn:"):
        return {"arn": ref, "reason": "MISSING"}
    arn = f"arn:aws:ecs:{backend.region_name}:{backend.account_id}:{kind}/{cluster}/{ref}"
    return {"arn": arn, "reason": "MISSING"}


def describe_tasks(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    refs = [str(r) for r in self._get_param("tasks") or []]
    if not refs:
        raise InvalidParameterException("Tasks cannot be empty.")
    if len(refs) > 100:
        raise InvalidParameterException("taskIds can have at most 100 items.")
    expire(backend, _sim().clock.seconds())
    by_id = {arn.rsplit("/", 1)[-1]: t for arn, t in backend.tasks.get(cluster.name, {}).items()}
    tasks, failures = [], []
    for ref in refs:
        task = by_id.get(ref.rsplit("/", 1)[-1])
        if task is None:
            failures.append(_missing(backend, "task", cluster.name, ref))
        elif task not in tasks:
            tasks.append(task)
    if "TAGS" in (self._get_param("include") or []):
        self._include_in_response(ecs_responses.DESCRIBE_TASKS_TAGS)
    else:
        self._exclude_from_response(ecs_responses.DESCRIBE_TASKS_TAGS)
    return ecs_responses.ActionResult({"tasks": tasks, "failures": failures})


def describe_container_instances(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    refs = [str(r) for r in self._get_param("containerInstances") or []]
    if not refs:
        raise ClientException("Container Instances cannot be empty.")
    expire(backend, _sim().clock.seconds())
    live = backend.container_instances.get(cluster.name, {})
    gone = simulation.retired(backend, cluster.name)
    found, failures = [], []
    for ref in refs:
        ci_id = ref.rsplit("/", 1)[-1]
        ci = live.get(ci_id) or gone.get(ci_id)
        if ci is None:
            failures.append(_missing(backend, "container-instance", cluster.name, ref))
        else:
            found.append(ci)
    return ecs_responses.ActionResult({"containerInstances": found, "failures": failures})


# --- RunTask -------------------------------------------------------------------------------------------------


def run_task(self: Any) -> Any:
    """EC2 tasks placed by the simulation's scheduler, spread over instances, within CPU, memory and ports."""
    if self._get_param("launchType") == "FARGATE" or self._get_param("capacityProviderStrategy"):
        return _original["run_task"](self)
    sim = _sim()
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    td = backend.describe_task_definition(self._get_param("taskDefinition"))
    count = int(self._get_param("count") or 1)
    if not 1 <= count <= 10:
        raise InvalidParameterException("count must be between 1 and 10.")  # wording ours; AWS allows 1-10
    if not backend.container_instances.get(cluster.name):
        raise InvalidParameterException("No Container Instances were found in your cluster.")
    ec2 = ec2_backends[backend.account_id][backend.region_name]
    started_by = self._get_param("startedBy") or ""
    # the simulation starts a task for a service; a standalone task is one of no service
    standalone = SimpleNamespace(
        cluster_name=cluster.name,
        name="",
        arn=None,
        tags=[],
        propagate_tags=None,
        enable_ecs_managed_tags=False,
        region_name=backend.region_name,
    )
    needs = simulation.task_needs(td)
    now = sim.clock.seconds()
    tasks: list[Any] = []
    failures: list[dict[str, str]] = []
    for _ in range(count):
        cands, misfits = sim.fits(ec2, backend, cluster.name, needs)
        if not cands:
            failures = [
                {"arn": simulation.ci_arn(ci), "reason": RESOURCE_REASONS[problem]} for ci, problem in misfits
            ] or [{"reason": "AGENT"}]
            break
        ci, inst, _on, ports = min(cands, key=lambda c: len(c[2]))
        task = sim._start_task(backend, standalone, {"id": started_by}, td, ci, inst, ports, now)
        task.group = self._get_param("group") or f"family:{td.family}"
        task.tags = self._get_param("tags") or []
        task.overrides = self._get_param("overrides") or {}
        tasks.append(task)
    return ecs_responses.ActionResult({"tasks": tasks, "failures": failures})


PATCHES = {
    "register_task_definition": register_task_definition,
    "describe_tasks": describe_tasks,
    "describe_container_instances": describe_container_instances,
    "run_task": run_task,
}


def install(sim: Simulator) -> None:
    """Patch moto's ECS handlers and models (idempotent); `sim` is the simulation they act through."""
    global SIM
    SIM = sim
    _patch_ids()
    replace_handlers(Response, PATCHES, _original)
