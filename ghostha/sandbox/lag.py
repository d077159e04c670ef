"""Eventual consistency (off by default): for `seconds` simulated seconds after a write, some reads still answer
as before it, as AWS's distributed APIs do ("The Amazon ECS API follows an eventual consistency model";
"Eventual consistency in the Amazon EC2 API").

With the switch on (`Sandbox.consistency_lag = seconds`):
- after CreateService, DescribeServices answers `failures: [{reason: MISSING}]` for it, and
  ListTasks(serviceName=…) raises ServiceNotFoundException;
- after CreateCluster, ListContainerInstances raises ClusterNotFoundException;
- after AuthorizeSecurityGroupIngress, DescribeSecurityGroups does not show the new rule (a second identical
  AuthorizeSecurityGroupIngress still gets InvalidPermission.Duplicate: the rule is there);
- after DeregisterTaskDefinition, DeleteTaskDefinitions still finds the revision ACTIVE and reports it in
  `failures[]`.
Writes are stamped with the simulated time whether or not the switch is on; only the reads look at it.
"""

from __future__ import annotations

import copy
from typing import Any

from moto.ec2.models.security_groups import SecurityGroupBackend
from moto.ecs import models as ecs_models

from ghostha.sandbox.clock import SimClock

Backend = ecs_models.EC2ContainerServiceBackend


class Lag:
    """The switch: how many simulated seconds reads lag behind writes (0: off)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.clock: SimClock | None = None

    def now(self) -> float:
        return self.clock.seconds() if self.clock is not None else 0.0

    def young(self, obj: Any) -> bool:
        """Was `obj` written so recently that a lagging read does not see it yet?"""
        written = getattr(obj, "sim_written", None)
        return self.seconds > 0 and written is not None and self.now() - written < self.seconds

    def stamp(self, obj: Any) -> None:
        obj.sim_written = self.now()


LAG = Lag()
_original: dict[str, Any] = {}


def _create_service(self: Any, *args: Any, **kwargs: Any) -> Any:
    svc = _original["create_service"](self, *args, **kwargs)
    LAG.stamp(svc)
    return svc


def _describe_services(self: Any, cluster_str: str, names: list[str]) -> tuple[list[Any], list[dict[str, str]]]:
    services, failures = _original["describe_services"](self, cluster_str, names)
    seen = [s for s in services if not LAG.young(s)]
    failures += [{"arn": s.arn, "reason": "MISSING"} for s in services if LAG.young(s)]
    return seen, failures


def _create_cluster(self: Any, *args: Any, **kwargs: Any) -> Any:
    cluster = _original["create_cluster"](self, *args, **kwargs)
    LAG.stamp(cluster)
    return cluster


def _deregister_task_definition(self: Any, task_definition_str: str) -> Any:
    td = _original["deregister_task_definition"](self, task_definition_str)
    LAG.stamp(td)
    return td


def _delete_task_definitions(self: Any, task_definitions: list[str]) -> tuple[list[Any], list[Any]]:
    stale: list[Any] = []
    rest: list[str] = []
    for ref in task_definitions or []:
        family, _, rev = ref.split("/")[-1].partition(":")
        td = self.task_definitions.get(family, {}).get(int(rev)) if rev.isdigit() else None
        if td is not None and LAG.young(td):
            stale.append(
                ecs_models.DeleteTaskDefinitionFailure(
                    "The specified task definition is still in ACTIVE status. Please deregister the target and try "
                    "again.",
                    ref,
                    self.account_id,
                    self.region_name,
                )
            )
        else:
            rest.append(ref)
    if not rest:
        return [], stale
    deleted, failures = _original["delete_task_definitions"](self, rest)
    return deleted, stale + failures


def _authorize_ingress(self: Any, *args: Any, **kwargs: Any) -> Any:
    rules, group = _original["authorize_security_group_ingress"](self, *args, **kwargs)
    for rule in rules:
        LAG.stamp(rule)
    return rules, group


def _describe_security_groups(self: Any, *args: Any, **kwargs: Any) -> list[Any]:
    groups = _original["describe_security_groups"](self, *args, **kwargs)
    if LAG.seconds <= 0:
        return list(groups)
    out = []
    for group in groups:
        if any(LAG.young(r) for r in group.ingress_rules):
            group = copy.copy(group)
            group.ingress_rules = [r for r in group.ingress_rules if not LAG.young(r)]
        out.append(group)
    return out


ECS_PATCHES = {
    "create_service": _create_service,
    "describe_services": _describe_services,
    "create_cluster": _create_cluster,
    "deregister_task_definition": _deregister_task_definition,
    "delete_task_definitions": _delete_task_definitions,
}
EC2_PATCHES = {
    "authorize_security_group_ingress": _authorize_ingress,
    "describe_security_groups": _describe_security_groups,
}


def install(clock: SimClock) -> None:
    """Patch moto's backends (idempotent); the switch starts off."""
    from ghostha.sandbox.hooks import replace_handlers

    LAG.clock = clock
    replace_handlers(Backend, ECS_PATCHES, _original)
    replace_handlers(SecurityGroupBackend, EC2_PATCHES, _original)


def hidden_service(svc: Any) -> bool:
    return LAG.young(svc)


def hidden_cluster(cluster: Any) -> bool:
    return LAG.young(cluster)
