"""Pure planning: from the config and a snapshot, the ordered steps that bring AWS to the wanted state.

`plan_up` is the resource modules (`ghostha/resources/`) in dependency order, `plan_teardown` the reverse; each
module says what differs for its resource and how to change it. No I/O and no printing here. A converged stack
plans no mutating step. Values that only exist once an earlier step ran (the new revision's ARN) are `Ref`s the
executor fills in.
"""

from __future__ import annotations

from dataclasses import dataclass

from ghostha import taskdef
from ghostha.config import TAG_KEY, Config
from ghostha.errors import OwnershipError, PreflightError
from ghostha.observe import Inventory, Json, Observed, tag_dict
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
    """(problems, warnings): each a line saying what is wrong and how to fix it. Problems block `up`."""
    problems: list[str] = []
    warnings: list[str] = []
    found = {s["SubnetId"]: s for s in obs.subnets}
    for sid in cfg.network.subnets:
        if sid not in found:
            problems.append(f"subnet {sid} not found in {obs.region}: fix network.subnets")
    vpcs = {s["VpcId"] for s in obs.subnets}
    azs = sorted({s["AvailabilityZone"] for s in obs.subnets})
    if len(vpcs) > 1:
        problems.append(f"network.subnets span several VPCs ({', '.join(sorted(vpcs))}): list subnets of one VPC")
    if found and len(azs) < 2:
        warnings.append(
            f"network.subnets are all in {azs[0]}: losing that AZ takes the blog down; list subnets in two AZs"
        )
    vpc = next(iter(vpcs)) if len(vpcs) == 1 else None

    sg = obs.security_group
    if sg is None:
        problems.append(f"security group {cfg.network.security_group} not found: fix network.security_group")
    elif vpc and sg["VpcId"] != vpc:
        problems.append(
            f"security group {cfg.network.security_group} is in {sg['VpcId']}, the subnets in {vpc}: "
            "use a security group of the subnets' VPC"
        )

    lb = obs.load_balancer
    if lb is None:
        problems.append(f"load balancer {cfg.load_balancer.name} not found: fix load_balancer.name")
    else:
        lb_azs = {z["ZoneName"] for z in lb.get("AvailabilityZones", [])}
        uncovered = [az for az in azs if az not in lb_azs]
        if uncovered:
            problems.append(
                f"load balancer {cfg.load_balancer.name} does not cover {', '.join(uncovered)}: tasks there would "
                "never pass health checks; enable those AZs on the ALB or use other subnets"
            )

    tg = obs.target_group
    name = cfg.load_balancer.target_group
    if tg is None:
        problems.append(f"target group {name} not found: fix load_balancer.target_group")
    else:
        if vpc and tg.get("VpcId") != vpc:
            problems.append(f"target group {name} is in {tg.get('VpcId')}, the subnets in {vpc}: use one of {vpc}")
        if tg.get("TargetType") != "instance":
            problems.append(
                f"target group {name} has target type {tg.get('TargetType')}: bridge-mode tasks with dynamic "
                "host ports need a target group of type instance"
            )
        if tg.get("Protocol") != "HTTP":
            problems.append(f"target group {name} uses {tg.get('Protocol')}: Ghost's containers speak HTTP")
        if str(tg.get("HealthCheckPort")) != "traffic-port":
            problems.append(
                f"target group {name} checks health on port {tg.get('HealthCheckPort')}: set it to traffic-port, "
                "or dynamic ports are never checked"
            )
        if lb is not None and lb["LoadBalancerArn"] not in tg.get("LoadBalancerArns", []):
            problems.append(
                f"target group {name} is not attached to a listener of {cfg.load_balancer.name}: "
                "add a listener (or rule) forwarding to it"
            )

    td = obs.task_definition
    if td is None:
        problems.append(f"task family {cfg.task.family} has no ACTIVE revision: fix task.family")
    else:
        rev = f"{td['family']}:{td['revision']}"
        if (td.get("networkMode") or "bridge") != "bridge":
            problems.append(
                f"task definition {rev} uses network mode {td.get('networkMode')}: dynamic host ports need bridge"
            )
        names = [c.get("name") for c in td.get("containerDefinitions", [])]
        if cfg.task.container not in names:
            problems.append(
                f"task definition {rev} has no container {cfg.task.container!r} (it has {', '.join(map(str, names))}):"
                " fix task.container"
            )
        elif taskdef.port_mapping(td, cfg.task.container, cfg.task.container_port) is None:
            problems.append(
                f"container {cfg.task.container!r} of {rev} maps no container port {cfg.task.container_port}: "
                "fix task.container_port or add the port mapping"
            )
        else:
            warnings += _ghost_warnings(td, cfg)

    if obs.instance_profile is None:
        problems.append(
            f"instance profile {cfg.cluster.instance_profile} not found: create it (role trusting ec2.amazonaws.com "
            "with AmazonEC2ContainerServiceforEC2Role) or fix cluster.instance_profile"
        )
    if obs.ami_error:
        problems.append(f"{obs.ami_error}: fix cluster.ami")
    if obs.cluster is not None and not obs.cluster_owned:
        other = tag_dict(obs.cluster.get("tags")).get(TAG_KEY)
        whose = f"belongs to ghostha stack {other}" if other else "was not created by ghostha"
        problems.append(
            f"cluster {cfg.cluster.name} exists but {whose} (no tag {TAG_KEY}={cfg.stack}): "
            "choose another cluster.name; ghostha never takes over what it did not create"
        )
    if obs.service is not None and obs.service.get("status") == "DRAINING":
        problems.append(
            f"service {cfg.service.name} is still DRAINING from a deletion: AWS allows a new one of that name only "
            "once it is INACTIVE; run `ghostha up` again in a minute"
        )
    elif obs.service_active and not obs.service_owned:
        problems.append(
            f"service {cfg.service.name} exists in cluster {cfg.cluster.name} but is not this stack's: "
            "choose another service.name"
        )
    if obs.launch_template is not None and not obs.launch_template_owned:
        problems.append(f"launch template {cfg.launch_template_name} exists but is not this stack's: rename the stack")
    if obs.asg is not None and not obs.asg_owned:
        problems.append(f"Auto Scaling group {cfg.asg_name} exists but is not this stack's: rename the stack")
    return problems, warnings


def _ghost_warnings(td: Json, cfg: Config) -> list[str]:
    """Ghost runs as several containers only against one shared MySQL database (Ghost's own FAQ)."""
    container = next(c for c in td["containerDefinitions"] if c.get("name") == cfg.task.container)
    env = {e.get("name"): e.get("value") for e in container.get("environment") or []}
    out = []
    if env.get("database__client") != "mysql":
        out.append(
            f"container {cfg.task.container!r} has no database__client=mysql: with SQLite each of the "
            f"{cfg.service.desired_count} tasks is a separate blog; point them all at one MySQL 8 database"
        )
    url = str(env.get("url") or "")
    if not url or "localhost" in url:
        out.append("container env `url` is not the public address: set it to the ALB's (or your domain's) URL")
    return out


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
