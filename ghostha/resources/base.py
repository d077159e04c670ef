"""What every resource module shares: steps, references to later values, field changes, and the run context.

A resource module (cluster, launch_template, auto_scaling_group, task_revision, ingress_rule, service) says what
it wants (`desired`), what AWS holds (`actual`), how they differ (`diff` → `Change`s, each in place or needing
replacement), and the `Step`s that create, update or delete it, with what to wait for after each. Steps are
data: the planner makes them without I/O; the executor runs them. No printing here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ghostha.aws import Aws
    from ghostha.config import Config
    from ghostha.waiting import Deadline, Progress


@dataclass(frozen=True)
class Ref:
    """A value produced by an earlier step, by name."""

    name: str


@dataclass
class Context:
    """What a running step may use: AWS, the config, the run's deadline, progress, and earlier steps' outputs."""

    aws: Aws
    cfg: Config
    deadline: Deadline
    progress: Progress
    outputs: dict[str, Any] = field(default_factory=dict)
    since: datetime | None = None  # AWS's clock when the run looked: events and activities after it are this run's
    known_events: frozenset[str] = frozenset()  # ids of the service events already there when the run looked


Runner = Callable[[Context], str]  # a step that is not one AWS call (a wait, a rolling replacement): returns a note


@dataclass(frozen=True)
class Step:
    action: str  # what kind of step: create-cluster, register-task-definition, wait-service, …
    resource: str  # what it acts on, for people
    detail: str = ""  # how, for people
    service: str | None = None  # boto3 client name, for a step that is one AWS call
    operation: str | None = None  # boto3 method name
    params: dict[str, Any] = field(default_factory=dict)
    changes: tuple[str, ...] = ()  # before → after, for the dry run
    output: str | None = None  # name under which the step's result is kept (see Ref)
    extract: Callable[[Any], Any] | None = field(default=None, compare=False)  # result → what `output` keeps
    run: Runner | None = field(default=None, compare=False)  # for waits and composite steps
    changes_aws: bool = False  # a composite step (run) that changes AWS (e.g. replaces instances)
    retry_codes: tuple[str, ...] = ()  # AWS error codes that mean "not yet": retried within the deadline
    done_codes: tuple[str, ...] = ()  # AWS error codes that mean "already done" (the effect is there)

    @property
    def mutating(self) -> bool:
        return self.operation is not None or self.changes_aws


@dataclass(frozen=True)
class Change:
    """One field that differs between what AWS holds and what the config wants."""

    field: str
    before: Any
    after: Any
    replace: bool = False  # True: cannot be changed in place (instances are replaced, or the service recreated)

    def __str__(self) -> str:
        how = " (replaces the instances, one at a time)" if self.replace else ""
        return f"{self.field} {show(self.before)} → {show(self.after)}{how}"


def show(value: Any) -> str:
    if value is None or value == "" or value == ():
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(show(v) for v in value) or "none"
    if isinstance(value, Ref):
        return "the new revision"
    return str(value)


def diff_fields(
    actual: Mapping[str, Any], desired: Mapping[str, Any], labels: Mapping[str, str], replace: frozenset[str]
) -> list[Change]:
    """The changes between two specs given as field → value, in the order of `labels` (every field compared)."""
    return [
        Change(label, actual.get(key), desired.get(key), key in replace)
        for key, label in labels.items()
        if actual.get(key) != desired.get(key)
    ]


def ecs_tags(cfg: Config) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in cfg.tags.items()]


def aws_tags(cfg: Config) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in cfg.tags.items()]


HINT = "run `ghostha teardown` again: it finishes what is left"


@dataclass(frozen=True)
class Item:
    """One row of the teardown table: a resource and what happens to it."""

    kind: str
    name: str
    action: str  # "delete" or "leave"
    why: str = ""
