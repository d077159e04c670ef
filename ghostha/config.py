"""Typed configuration: load the YAML file, validate it, fill in defaults, derive names and tags.

Every problem becomes one ConfigError naming the file, the key and the fix. Nothing here calls AWS.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ghostha.errors import ConfigError

DEFAULT_PATH = "ghostha.yaml"
ENV_PATH = "GHOSTHA_CONFIG"
TAG_KEY = "ghostha:stack"
# runtime keys that, left out of the file, a non-AWS endpoint may advise (ghostha/advice.py)
ADVISABLE = ("poll_seconds", "site_url")
DEFAULT_AMI = "ssm:/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id"

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")


@dataclass(frozen=True)
class NetworkConfig:
    subnets: tuple[str, ...]
    security_group: str


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    instance_count: int = 2
    instance_type: str = "t3.small"
    ami: str = DEFAULT_AMI
    instance_profile: str = "ecsInstanceRole"
    key_name: str | None = None


@dataclass(frozen=True)
class TaskConfig:
    family: str = "ghost"
    container: str = "ghost"
    container_port: int = 2368


@dataclass(frozen=True)
class ServiceConfig:
    name: str = "ghost"
    desired_count: int = 6
    role: str | None = None
    health_check_grace_seconds: int = 120
    minimum_healthy_percent: int = 50
    maximum_percent: int = 200


@dataclass(frozen=True)
class LoadBalancerConfig:
    name: str = "ghost-elb"
    target_group: str = "ghost-tg"


@dataclass(frozen=True)
class Config:
    stack: str
    network: NetworkConfig
    cluster: ClusterConfig
    task: TaskConfig = field(default_factory=TaskConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    load_balancer: LoadBalancerConfig = field(default_factory=LoadBalancerConfig)
    region: str | None = None
    endpoint_url: str | None = None
    poll_seconds: float = 5.0
    max_attempts: int = 10
    source: str = "<config>"
    site_url: str | None = None  # the blog's public URL; None: http:// + the ALB's DNS name
    # runtime keys the file leaves out, which a non-AWS endpoint may advise (ghostha/advice.py)
    advisable: frozenset[str] = frozenset()

    @property
    def tags(self) -> dict[str, str]:
        """The ownership tag every resource ghostha creates carries."""
        return {TAG_KEY: self.stack}

    @property
    def launch_template_name(self) -> str:
        return f"{self.stack}-ecs"

    @property
    def asg_name(self) -> str:
        return f"{self.stack}-ecs"


# --- validation -----------------------------------------------------------------------------------------

Check = Callable[[Any], str | None]  # returns a complaint ("must be …") or None


@dataclass(frozen=True)
class Key:
    kind: type | tuple[type, ...]
    required: bool = False
    default: Any = None
    check: Check | None = None
    nullable: bool = False
    example: str = ""


def _between(low: float, high: float) -> Check:
    def check(v: Any) -> str | None:
        return None if low <= v <= high else f"must be between {low:g} and {high:g}, got {v}"

    return check


def _name(v: Any) -> str | None:
    if _NAME_RE.match(v):
        return None
    return "must start with a letter and hold only letters, digits and '-' (at most 32)"


def _subnets(v: Any) -> str | None:
    if not v:
        return "must list at least one subnet id (two, in two AZs, for high availability)"
    bad = [s for s in v if not isinstance(s, str) or not s.startswith("subnet-")]
    if bad:
        return f"must be subnet ids like subnet-0abc…, got {bad[0]!r}"
    if len(set(v)) != len(v):
        return "lists a subnet twice"
    return None


def _prefix(prefix: str, what: str) -> Check:
    def check(v: Any) -> str | None:
        return None if v.startswith(prefix) else f"must be {what} (starting with {prefix!r}), got {v!r}"

    return check


def _ami(v: Any) -> str | None:
    if v.startswith("ami-") or v.startswith("ssm:/"):
        return None
    return f"must be an AMI id (ami-…) or an SSM parameter (ssm:/…), got {v!r}"


def _url(v: Any) -> str | None:
    from ghostha.aws import endpoint_problem

    return endpoint_problem(v)


def _region(v: Any) -> str | None:
    if re.fullmatch(r"[a-z]{2,4}(-[a-z]+)+-\d{1,2}", v):
        return None
    return f"must be an AWS region like us-east-1, got {v!r}"


def _number(v: Any) -> str | None:
    return None if v == v and v not in (float("inf"), float("-inf")) else f"must be a finite number, got {v}"


def _all(*checks: Check) -> Check:
    def check(v: Any) -> str | None:
        for c in checks:
            if complaint := c(v):
                return complaint
        return None

    return check


def _text(v: Any) -> str | None:
    if not v.strip():
        return "must not be empty"
    if any(not c.isprintable() for c in v):
        return f"must not contain control characters, got {v!r}"
    return None


SCHEMA: dict[str, Any] = {
    "stack": Key(str, required=True, check=_name, example="ghost-ha"),
    "region": Key(str, nullable=True, check=_region),
    "endpoint_url": Key(str, nullable=True, check=_url),
    "poll_seconds": Key((int, float), default=5.0, check=_all(_number, _between(0.05, 60))),
    "max_attempts": Key(int, default=10, check=_between(1, 50)),
    "site_url": Key(str, nullable=True, check=_url, example="https://blog.example.com"),
    "network": {
        "subnets": Key(list, required=True, check=_subnets, example="[subnet-0abc…, subnet-0def…]"),
        "security_group": Key(str, required=True, check=_prefix("sg-", "a security group id"), example="sg-…"),
    },
    "cluster": {
        "name": Key(str, nullable=True, check=_name),
        "instance_count": Key(int, default=2, check=_between(1, 100)),
        "instance_type": Key(str, default="t3.small", check=_text),
        "ami": Key(str, default=DEFAULT_AMI, check=_ami),
        "instance_profile": Key(str, default="ecsInstanceRole", check=_text),
        "key_name": Key(str, nullable=True),
    },
    "task": {
        "family": Key(str, default="ghost", check=_text),
        "container": Key(str, default="ghost", check=_text),
        "container_port": Key(int, default=2368, check=_between(1, 65535)),
    },
    "service": {
        "name": Key(str, default="ghost", check=_text),
        "desired_count": Key(int, default=6, check=_between(1, 1000)),
        "role": Key(str, nullable=True),
        "health_check_grace_seconds": Key(int, default=120, check=_between(0, 2147483647)),
        "minimum_healthy_percent": Key(int, default=50, check=_between(0, 100)),
        "maximum_percent": Key(int, default=200, check=_between(100, 200)),
    },
    "load_balancer": {
        "name": Key(str, default="ghost-elb", check=_text),
        "target_group": Key(str, default="ghost-tg", check=_text),
    },
}

_TYPE_WORDS = {str: "a string", int: "a whole number", list: "a list", float: "a number", dict: "a mapping"}


def _type_word(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(_TYPE_WORDS.get(k, k.__name__) for k in kinds)


def _validate(data: Mapping[str, Any], schema: Mapping[str, Any], source: str, prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in data:
        if key not in schema:
            known = ", ".join(sorted(schema))
            close = difflib.get_close_matches(str(key), list(schema), n=1)
            mean = f"did you mean '{prefix}{close[0]}'? " if close else ""
            raise ConfigError(
                f"{source}: unknown key '{prefix}{key}'",
                hint=f"{mean}remove it or fix its spelling; known keys here: {known}",
            )
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            sub = data.get(key)
            if sub is None:
                sub = {}
            if not isinstance(sub, dict):
                raise ConfigError(f"{source}: '{path}' must be a mapping of keys, got {type(sub).__name__}")
            out[key] = _validate(sub, spec, source, f"{path}.")
            continue
        if key not in data or data[key] is None:
            if spec.required:
                example = f", e.g. `{key}: {spec.example}`" if spec.example else ""
                raise ConfigError(f"{source}: missing required key '{path}'", hint=f"add it{example}")
            out[key] = spec.default
            continue
        value = data[key]
        ok = isinstance(value, spec.kind) and not (isinstance(value, bool) and spec.kind is not bool)
        if not ok:
            raise ConfigError(
                f"{source}: '{path}' must be {_type_word(spec.kind)}, got {value!r}",
                hint=f"fix '{path}' in {source}",
            )
        if spec.check and (complaint := spec.check(value)):
            raise ConfigError(f"{source}: '{path}' {complaint}", hint=f"fix '{path}' in {source}")
        out[key] = value
    return out


def parse(data: Any, source: str = "<config>") -> Config:
    """Validate a parsed YAML document and build the Config."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the file must hold a mapping of keys, got {type(data).__name__}")
    v = _validate(data, SCHEMA, source, "")
    cluster = v["cluster"]
    svc = v["service"]
    if svc["minimum_healthy_percent"] >= svc["maximum_percent"]:
        raise ConfigError(
            f"{source}: 'service.minimum_healthy_percent' must be below 'service.maximum_percent'",
            hint="the usual pair is 50 and 200",
        )
    return Config(
        stack=v["stack"],
        region=v["region"],
        endpoint_url=v["endpoint_url"],
        poll_seconds=float(v["poll_seconds"]),
        max_attempts=v["max_attempts"],
        network=NetworkConfig(tuple(v["network"]["subnets"]), v["network"]["security_group"]),
        cluster=ClusterConfig(**{**cluster, "name": cluster["name"] or v["stack"]}),
        task=TaskConfig(**v["task"]),
        service=ServiceConfig(**svc),
        load_balancer=LoadBalancerConfig(**v["load_balancer"]),
        source=source,
        site_url=v["site_url"],
        advisable=frozenset(k for k in ADVISABLE if data.get(k) is None),
    )


class _DuplicateKey(yaml.constructor.ConstructorError):
    pass


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (it would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key: validation reports it
            if key in seen:
                raise _DuplicateKey(None, None, f"the key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def state_dir() -> Path:
    """Per-user state (sandboxes, stack locks): $XDG_STATE_HOME/ghostha, else ~/.local/state/ghostha."""
    base = os.environ.get("XDG_STATE_HOME") or ""
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".local" / "state"
    return root / "ghostha"


def resolve_path(path: str | None) -> Path:
    return Path(path or os.environ.get(ENV_PATH) or DEFAULT_PATH)


def load(path: str | None = None) -> Config:
    """Read and validate the config file (--config, else $GHOSTHA_CONFIG, else ./ghostha.yaml)."""
    p = resolve_path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{p}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})",
            hint="save the file as UTF-8",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config file {p} is a directory", hint="pass the YAML file's path with --config") from None
    except FileNotFoundError:
        here = p.parent if p.parent.is_dir() else None
        near = [f.name for f in here.glob("*.y*ml")] if here is not None else []
        close = difflib.get_close_matches(p.name, near, n=1, cutoff=0.75)
        raise ConfigError(
            f"config file {p} not found",
            hint=f"did you mean {p.with_name(close[0])}?"
            if close
            else "copy config.example.yaml to ghostha.yaml and edit it, or pass --config PATH "
            "(`ghostha sandbox start` writes one for the local sandbox)",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        hint = "fix the YAML syntax (indentation, colons, quotes)"
        if isinstance(exc, _DuplicateKey):
            hint = "keep one of them: YAML would silently take the last"
        raise ConfigError(f"{p}{where}: {problem}", hint=hint) from None
    return parse(data, str(p))
