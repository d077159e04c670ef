"""Pure planning: from the config and a snapshot, the ordered steps that bring AWS to the wanted state.

`plan_up` is the resource modules (`ghostha/resources/`) in dependency order, `plan_teardown` the reverse; each
module says what differs for its resource and how to change it. No I/O and no printing here. A converged stack
plans no mutating step. Values that only exist once an earlier step ran (the new revision's ARN) are `Ref`s the
executor fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghostha.config import Config
from ghostha.errors import OwnershipError, PreflightError
from ghostha.observe import Inventory, Observed
from ghostha.resources import auto_scaling_group, cluster, ingress_rule, launch_template, service, task_revision
from ghostha.resources.base import Item, Ref, Step

__all__ = ["Item", "Plan", "Ref", "Step", "TeardownPlan", "plan_teardown", "plan_up", "preflight"]


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what the user should know before it runs (e.g. why the last rollout failed)

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.mutating)


# --- preflight ------------------------------------------------------------------------------------------------


def preflight(cfg: Config, obs: Observed) -> tuple[list[str], list[str]]:
    """(problems, warnings): each a line saying what is wrong and how to fix it. Problems block `up`.

    The blocking subset of `doctor`'s checks (ghostha.checks), so the two never disagree."""
    from ghostha import checks

    return checks.preflight(cfg, obs)


# --- up -------------------------------------------------------------------------------------------------------


def plan_up(cfg: Config, obs: Observed, replace_service: bool = False) -> Plan:
    """The steps of `up`. Raises PreflightError (nothing is created) when the account is not ready, and
    OwnershipError when a change needs a replacement the user did not ask for."""
    problems, warnings = preflight(cfg, obs)
    if problems:
        owner = [p for p in problems if "ghostha never takes over" in p or "is not this stack's" in p]
        cls = OwnershipError if owner and len(owner) == len(problems) else PreflightError
        raise cls(
            problems[0] if len(problems) == 1 else f"{len(problems)} problems stop `up`; nothing was created",
            hint="fix the config or the account, then run `ghostha up` again",
            details=problems if len(problems) > 1 else [],
        )
    _same_cluster(cfg, obs)
    lt_steps, lt_changes = launch_template.plan(cfg, obs)
    asg_steps, roll = auto_scaling_group.plan(cfg, obs, lt_changes)
    wait_instances = [s for s in asg_steps if s.action == "wait-instances"]
    td_steps, td_value = task_revision.plan(cfg, obs)
    svc = service.plan(cfg, obs, td_value, replace_service)
    steps = [
        *cluster.plan(cfg, obs),
        *lt_steps,
        *[s for s in asg_steps if s.action != "wait-instances"],
        # what does not need the instances is done while they boot
        *td_steps,
        *ingress_rule.plan(cfg, obs),
        *wait_instances,
        *svc.steps,
        *roll,
        *ingress_rule.stale(cfg, obs),
    ]
    return Plan(tuple(steps), tuple(warnings), tuple(svc.notes))


def _same_cluster(cfg: Config, obs: Observed) -> None:
    """A changed cluster.name would move the stack to another cluster: refuse rather than half-move it."""
    have = launch_template.actual(obs)
    old = launch_template.cluster_of(have) if have is not None else None
    if old and old != cfg.cluster.name and obs.launch_template_owned:
        raise OwnershipError(
            f"cluster.name is {cfg.cluster.name}, but this stack's instances join cluster {old}: ghostha does not "
            "move a stack to another cluster",
            hint=f"set cluster.name back to {old}, or run `ghostha teardown` with the old config first",
        )


# --- teardown -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeardownPlan:
    items: tuple[Item, ...]
    steps: tuple[Step, ...]

    @property
    def deletes(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.action == "delete")


def plan_teardown(cfg: Config, inv: Inventory) -> TeardownPlan:
    """What teardown deletes (only what carries the stack's tag), what it leaves and why, and in which order:
    the resources of `up` in reverse."""
    foreign = [s["serviceName"] for s in inv.services if not inv.owned(s.get("tags"))]
    # the instances go only when nothing else runs on them; the cluster only when nothing else is in it
    keep = None
    if foreign:
        keep = f"cluster {cfg.cluster.name} still runs {', '.join(foreign)}, not ghostha's"
    elif inv.standalone_tasks:
        keep = f"cluster {cfg.cluster.name} still runs {len(inv.standalone_tasks)} tasks ghostha did not start"
    own = set(inv.own_instance_ids)
    strangers = [ci for ci in inv.container_instances if ci.get("ec2InstanceId") not in own]
    keep_cluster = keep or (
        f"cluster {cfg.cluster.name} also holds {len(strangers)} container instances ghostha did not launch"
        if strangers
        else None
    )
    items: list[Item] = []
    steps: list[Step] = []
    for part in (
        service.teardown(cfg, inv),
        auto_scaling_group.teardown(cfg, inv, keep),
        auto_scaling_group.deregister_instances(cfg, inv, keep),
        cluster.teardown(cfg, inv, keep_cluster),
        launch_template.teardown(cfg, inv, keep),
        ingress_rule.teardown(cfg, inv, keep),
        task_revision.teardown(cfg, inv),
    ):
        items += part[0]
        steps += part[1]
    if inv.load_balancer is not None:
        items.append(Item("load balancer", cfg.load_balancer.name, "leave", "pre-existing, with its listeners"))
    if inv.target_group is not None:
        items.append(Item("target group", cfg.load_balancer.target_group, "leave", "pre-existing"))
    items.append(Item("network", ", ".join(cfg.network.subnets), "leave", "subnets and security groups are yours"))
    items.append(Item("instance profile", cfg.cluster.instance_profile, "leave", "pre-existing"))
    return TeardownPlan(tuple(items), tuple(steps))
