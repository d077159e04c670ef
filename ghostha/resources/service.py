"""The ECS service: `desired_count` tasks of the dynamic-port revision behind the target group, launch type EC2,
spread by AZ then instance, circuit breaker with rollback, health-check grace period, Availability Zone rebalancing
ENABLED (AWS's default for new services since 2025; a service created earlier, or turned off by hand, is converged).

Whatever UpdateService accepts is updated in place (revision, desired count, deployment configuration with the
circuit breaker, grace period, placement strategy, load balancers). What it cannot change (the role, the launch
type), and a renamed service, need the service replaced: `up` stops and says so unless `--replace-service`.
After a rollout that failed, a config that is right starts a fresh deployment (forceNewDeployment).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ghostha.config import TAG_KEY, Config
from ghostha.errors import OwnershipError
from ghostha.observe import Inventory, Json, Observed, short
from ghostha.resources.base import HINT, Change, Context, Item, Ref, Step, diff_fields, ecs_tags
from ghostha.waiting import service_gone, service_healthy_at_least, service_tasks_left, stop_reasons

KEYS = (
    "service.name",
    "service.desired_count",
    "service.role",
    "service.health_check_grace_seconds",
    "service.minimum_healthy_percent",
    "service.maximum_percent",
    "load_balancer.target_group",
)
SPREAD = (("spread", "attribute:ecs.availability-zone"), ("spread", "instanceId"))
SERVICE_LINKED = "AWSServiceRoleForECS"
HINT_UP = "run `ghostha up --replace-service` again: it picks up where it stopped"


@dataclass(frozen=True)
class ServiceSpec:
    task_definition: str | Ref
    desired_count: int
    launch_type: str
    role: str | None
    load_balancers: tuple[tuple[str, str, int], ...]
    placement_strategy: tuple[tuple[str, str], ...]
    minimum_healthy_percent: int
    maximum_percent: int
    circuit_breaker: tuple[bool, bool]
    grace_seconds: int
    az_rebalancing: str


LABELS = {
    "task_definition": "task definition",
    "desired_count": "desired count",
    "launch_type": "launch type",
    "role": "service role",
    "load_balancers": "load balancer (target group, container, port)",
    "placement_strategy": "placement strategy",
    "minimum_healthy_percent": "minimum healthy percent",
    "maximum_percent": "maximum percent",
    "circuit_breaker": "circuit breaker (enable, rollback)",
    "grace_seconds": "health-check grace period",
    "az_rebalancing": "AZ rebalancing",
}
REPLACE = frozenset({"launch_type", "role"})


def desired(cfg: Config, obs: Observed, task_definition: str | Ref) -> ServiceSpec:
    assert obs.target_group is not None  # preflight
    s = cfg.service
    return ServiceSpec(
        task_definition=task_definition,
        desired_count=s.desired_count,
        launch_type="EC2",
        role=_role_name(s.role),
        load_balancers=((obs.target_group["TargetGroupArn"], cfg.task.container, cfg.task.container_port),),
        placement_strategy=SPREAD,
        minimum_healthy_percent=s.minimum_healthy_percent,
        maximum_percent=s.maximum_percent,
        circuit_breaker=(True, True),
        grace_seconds=s.health_check_grace_seconds,
        # ECS moves tasks back to an AZ that lost its instance once it has one again, so the blog does not stay on
        # one AZ after an instance is replaced; always on (no config key: a stack of two AZs always wants it)
        az_rebalancing="ENABLED",
    )


def _role_name(role: Any) -> str | None:
    """A role by name; the ECS service-linked role counts as no role (AWS reports it when none was given)."""
    name = str(role).rsplit("/", 1)[-1] if role else None
    return None if name == SERVICE_LINKED else name


def actual(svc: Json) -> ServiceSpec:
    dc = svc.get("deploymentConfiguration") or {}
    breaker = dc.get("deploymentCircuitBreaker") or {}
    return ServiceSpec(
        task_definition=str(svc.get("taskDefinition")),
        desired_count=int(svc.get("desiredCount", 0)),
        launch_type=str(svc.get("launchType") or "capacity provider"),
        role=_role_name(svc.get("roleArn")),
        load_balancers=tuple(
            sorted(
                (str(lb.get("targetGroupArn")), str(lb.get("containerName")), int(lb.get("containerPort", 0)))
                for lb in svc.get("loadBalancers") or []
            )
        ),
        placement_strategy=tuple(
            (str(p.get("type")), str(p.get("field", ""))) for p in svc.get("placementStrategy") or []
        ),
        minimum_healthy_percent=int(dc.get("minimumHealthyPercent", 100)),
        maximum_percent=int(dc.get("maximumPercent", 200)),
        circuit_breaker=(bool(breaker.get("enable")), bool(breaker.get("rollback"))),
        grace_seconds=int(svc.get("healthCheckGracePeriodSeconds") or 0),
        # UpdateService: "If the service never had an AvailabilityZoneRebalancing value set, Amazon ECS treats this
        # as DISABLED"
        az_rebalancing=str(svc.get("availabilityZoneRebalancing") or "DISABLED"),
    )


def diff(have: ServiceSpec, want: ServiceSpec) -> list[Change]:
    changes = diff_fields(asdict(have), asdict(want), LABELS, REPLACE)
    return [
        Change(c.field, short(c.before), c.after if isinstance(c.after, Ref) else short(c.after), c.replace)
        if c.field == "task definition"
        else Change(c.field, _target_group_name(c.before), _target_group_name(c.after), c.replace)
        if c.field.startswith("load balancer")
        else c
        for c in changes
    ]


def _target_group_name(lbs: Any) -> Any:
    return tuple(f"{str(arn).split(':targetgroup/')[-1].split('/')[0]}, {c}, {p}" for arn, c, p in lbs)


def create_params(cfg: Config, spec: ServiceSpec, name: str) -> Json:
    params: Json = {
        "cluster": cfg.cluster.name,
        "serviceName": name,
        "taskDefinition": spec.task_definition,
        "desiredCount": spec.desired_count,
        "launchType": spec.launch_type,
        "schedulingStrategy": "REPLICA",
        "loadBalancers": _load_balancers(spec),
        "placementStrategy": [{"type": t, "field": f} for t, f in spec.placement_strategy],
        "deploymentConfiguration": _deployment_configuration(spec),
        "healthCheckGracePeriodSeconds": spec.grace_seconds,
        "availabilityZoneRebalancing": spec.az_rebalancing,
        "tags": ecs_tags(cfg),
        "propagateTags": "SERVICE",
        "enableECSManagedTags": True,
    }
    if cfg.service.role:
        params["role"] = cfg.service.role
    return params


def _load_balancers(spec: ServiceSpec) -> list[Json]:
    return [{"targetGroupArn": a, "containerName": c, "containerPort": p} for a, c, p in spec.load_balancers]


def _deployment_configuration(spec: ServiceSpec) -> Json:
    return {
        "maximumPercent": spec.maximum_percent,
        "minimumHealthyPercent": spec.minimum_healthy_percent,
        "deploymentCircuitBreaker": {"enable": spec.circuit_breaker[0], "rollback": spec.circuit_breaker[1]},
    }


_UPDATE_PARAMS: dict[str, Callable[[ServiceSpec], Json]] = {
    "task_definition": lambda s: {"taskDefinition": s.task_definition},
    "desired_count": lambda s: {"desiredCount": s.desired_count},
    "load_balancers": lambda s: {"loadBalancers": _load_balancers(s)},
    "placement_strategy": lambda s: {"placementStrategy": [{"type": t, "field": f} for t, f in s.placement_strategy]},
    "minimum_healthy_percent": lambda s: {"deploymentConfiguration": _deployment_configuration(s)},
    "maximum_percent": lambda s: {"deploymentConfiguration": _deployment_configuration(s)},
    "circuit_breaker": lambda s: {"deploymentConfiguration": _deployment_configuration(s)},
    "grace_seconds": lambda s: {"healthCheckGracePeriodSeconds": s.grace_seconds},
    "az_rebalancing": lambda s: {"availabilityZoneRebalancing": s.az_rebalancing},
}


def _field_key(label: str) -> str:
    return next(k for k, v in LABELS.items() if v == label)


def failed_rollout(svc: Json) -> Json | None:
    """The service's primary deployment when its rollout FAILED (the circuit breaker stopped it)."""
    for d in svc.get("deployments") or []:
        if d.get("status") == "PRIMARY":
            return d if d.get("rolloutState") == "FAILED" else None
    return None


@dataclass(frozen=True)
class ServicePlan:
    steps: list[Step]
    notes: list[str]
    stale: list[Json]  # this stack's services of other names, replaced by the configured one


def plan(cfg: Config, obs: Observed, task_definition: str | Ref, replace: bool) -> ServicePlan:
    name = cfg.service.name
    want = desired(cfg, obs, task_definition)
    svc = obs.service if obs.service_active else None
    others = [s for s in obs.owned_services if s.get("serviceName") != name and s.get("status") == "ACTIVE"]
    notes: list[str] = []
    steps: list[Step] = []
    if others and not replace:
        olds = ", ".join(str(s["serviceName"]) for s in others)
        raise OwnershipError(
            f"service.name is {name}, but this stack's service in cluster {cfg.cluster.name} is {olds}: "
            "ghostha does not rename a service in place",
            hint=f"run `ghostha up --replace-service` to create {name}, wait until it is healthy, then delete {olds}; "
            "or set service.name back",
        )
    if svc is not None:
        changes = diff(actual(svc), want)
        hard = [c for c in changes if c.replace]
        if hard and not replace:
            what = "; ".join(str(c).replace(" (replaces the instances, one at a time)", "") for c in hard)
            raise OwnershipError(
                f"service {name}: {what}: AWS cannot change this on an existing service",
                hint="run `ghostha up --replace-service` to delete the service and create it again "
                "(the blog is down until the new tasks are healthy), or change the config back",
            )
        if hard:
            steps += _delete_steps(cfg, name, int(svc.get("desiredCount", 0)))
            svc = None
    keep = 0
    for old in others:  # hand over from the old name: keep minimum healthy, free room for the new tasks
        keep = math.ceil(int(old.get("desiredCount", 0)) * cfg.service.minimum_healthy_percent / 100)
        if int(old.get("desiredCount", 0)) > keep:
            steps.append(_scale(cfg, str(old["serviceName"]), keep))
        steps.append(
            Step(
                "wait-tasks-stopped",
                f"tasks of service {old['serviceName']}",
                f"down to {keep}",
                run=service_tasks_left(str(old["serviceName"]), HINT_UP, keep),
            )
        )
    if svc is None:
        steps.append(
            Step(
                "create-service",
                f"service {name}",
                f"{want.desired_count} tasks behind {cfg.load_balancer.target_group}, spread by AZ then "
                "instance, circuit breaker with rollback, AZ rebalancing",
                "ecs",
                "create_service",
                create_params(cfg, want, name),
                output="service",
                extract=lambda r: r["service"],
            )
        )
    else:
        update: Json = {}
        for c in changes:
            update.update(_UPDATE_PARAMS[_field_key(c.field)](want))
        failed = failed_rollout(svc)
        if failed is not None:
            notes.append(
                f"the last rollout of service {name} ({short(failed.get('taskDefinition'))}) FAILED: "
                f"{failed.get('rolloutStateReason') or 'no reason given'}"
            )
            notes += [f"stopped task ({n}x): {r}" for r, n in stop_reasons(obs.stopped_tasks)]
            if "taskDefinition" not in update:
                update["forceNewDeployment"] = True
        if update:
            lines = [str(c) for c in changes] + (["a fresh deployment"] if update.get("forceNewDeployment") else [])
            steps.append(
                Step(
                    "update-service",
                    f"service {name}",
                    "; ".join(lines),
                    "ecs",
                    "update_service",
                    {"cluster": cfg.cluster.name, "service": name, **update},
                    changes=tuple(lines),
                    output="service",
                    extract=lambda r: r["service"],
                )
            )
    if others and keep:
        steps.append(
            Step(
                "wait-handover",
                f"service {name}",
                f"{want.desired_count - keep} tasks healthy before the old service goes",
                run=service_healthy_at_least(name, want.desired_count - keep, HINT_UP),
            )
        )
    for old in others:
        steps += _delete_steps(cfg, str(old["serviceName"]), keep)
    steps.append(
        Step(
            "wait-service",
            f"service {name}",
            f"{want.desired_count} tasks running on "
            + ("the new revision" if isinstance(want.task_definition, Ref) else short(want.task_definition))
            + ", their targets healthy",
            run=wait_service_step,
        )
    )
    return ServicePlan(steps, notes, others)


def wait_service_step(ctx: Context) -> str:
    from ghostha.waiting import primary_deployment, wait_service

    cfg = ctx.cfg
    svc = ctx.outputs.get("service")
    if svc is None:
        from ghostha.waiting import describe_service

        svc = describe_service(ctx.aws, cfg, cfg.service.name, ctx.deadline.sleep)
    dep = primary_deployment(svc) or {}
    tg = ctx.aws.client("elbv2").describe_target_groups(Names=[cfg.load_balancer.target_group])["TargetGroups"][0]
    state = wait_service(
        ctx.aws,
        cfg,
        str(dep.get("id")),
        str(dep.get("taskDefinition")),
        tg["TargetGroupArn"],
        ctx.deadline,
        ctx.progress,
        events_since=ctx.since,
        known_events=ctx.known_events,
    )
    return f"{state.new_running} tasks running, {state.healthy} targets healthy"


def _delete_steps(cfg: Config, name: str, desired_count: int) -> list[Step]:
    """Scale to 0, wait for the tasks to stop, delete, wait until INACTIVE: each with this service's own name."""
    steps = [_scale(cfg, name, 0)] if desired_count > 0 else []
    steps += [
        Step("wait-tasks-stopped", f"tasks of service {name}", "stopped", run=service_tasks_left(name, HINT)),
        Step(
            "delete-service",
            f"service {name}",
            "",
            "ecs",
            "delete_service",
            {"cluster": cfg.cluster.name, "service": name, "force": True},
        ),
        Step("wait-service-inactive", f"service {name}", "INACTIVE", run=service_gone(name, HINT)),
    ]
    return steps


def _scale(cfg: Config, name: str, count: int) -> Step:
    return Step(
        "scale-service",
        f"service {name}",
        f"desired count → {count}",
        "ecs",
        "update_service",
        {"cluster": cfg.cluster.name, "service": name, "desiredCount": count},
    )


def teardown(cfg: Config, inv: Inventory) -> tuple[list[Item], list[Step]]:
    items: list[Item] = []
    steps: list[Step] = []
    for s in inv.services:
        name = str(s["serviceName"])
        if not inv.owned(s.get("tags")):
            items.append(Item("ECS service", name, "leave", f"not created by ghostha (no tag {TAG_KEY}={cfg.stack})"))
            continue
        items.append(Item("ECS service", name, "delete", f"{s.get('runningCount', 0)} tasks running"))
        if s.get("status") == "ACTIVE":
            steps += _delete_steps(cfg, name, int(s.get("desiredCount", 0)))
        else:
            steps.append(Step("wait-service-inactive", f"service {name}", "INACTIVE", run=service_gone(name, HINT)))
    return items, steps
