"""The high-availability audit as data: pure checks over one snapshot, for `doctor` and for `up`'s preflight.

Every check is a `Check(id, area, verdict, title, evidence, fix)` computed from the config and an `Observed`
snapshot; nothing here calls AWS or prints. `audit(cfg, obs)` runs them all (`doctor`); `preflight(cfg, obs)`
is their blocking subset (`up`): a failing check whose `gate` is "block" stops `up`, and the non-passing checks
gated "block" or "warn" are `up`'s warnings. So `up` and `doctor` cannot disagree: they read the same checks.

Before anything is deployed, the checks judge what `up` would build (host port 0, the spread placement, the
circuit breaker, the launch template of `resources.launch_template`); once the service exists they judge what
runs, whoever built it.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from ghostha import taskdef
from ghostha.config import TAG_KEY, Config
from ghostha.observe import SLR_NAME, Json, Observed, ci_attribute, ci_resource, tag_dict
from ghostha.resources import launch_template
from ghostha.resources.ingress_rule import AGENT_PORTS, DYNAMIC_PORTS
from ghostha.resources.service import SPREAD

PASS, WARN, FAIL = "pass", "warn", "fail"
AREAS = ("network", "target group", "capacity", "placement", "service", "instances", "ghost", "task", "ownership")

# The ECS agent registers less memory than the instance type has: the kernel and the platform keep some. AWS's
# example (ECS developer guide, "Reserving Amazon ECS Linux container instance memory"): an m4.large's 8192 MiB
# registers as 7985 MiB. Measured values published for current types range 0.90-0.95 (c5.large 3704 MiB,
# m5.large 7680 MiB, t3.medium 3884 MiB); 0.928 gives a t3.small 1900 MiB (the sandbox registers the same).
# CPU registers whole: 1024 units per vCPU. Once instances exist, their registered resources are used instead.
AGENT_MEMORY_SHARE = 0.928

# Bounds for a lost task's replacement, before its target's health checks start counting: the service scheduler
# places a replacement within seconds of noticing the stop; Ghost's container starts (image cached on the
# instance) and listens within about 20 s. `drill` measures against the same numbers.
PLACEMENT_SECONDS = 10
START_SECONDS = 20
AWS_DEFAULT_DEREGISTRATION_DELAY = 300
RECOMMENDED_DEREGISTRATION_DELAY = 30
GHOST_HEALTH_PATH = "/ghost/api/admin/site/"
GHOST_CONTENT = "/var/lib/ghost/content"
ECS_INSTANCE_POLICY = "AmazonEC2ContainerServiceforEC2Role"


# Every check: its id (area.name), the claim it makes when it passes, and its gate for `up` ("block": a failure
# stops `up`; "warn": `up` shows it when it does not pass; "": doctor only).
CATALOG: dict[str, tuple[str, str]] = {
    "network.subnets": ("the configured subnets exist", "block"),
    "network.vpc": ("the subnets are in one VPC", "block"),
    "network.azs": ("the subnets span two or more AZs", "block"),
    "network.security-group": ("the instance security group is in the subnets' VPC", "block"),
    "network.load-balancer": ("the load balancer exists", "block"),
    "network.alb-azs": ("the ALB covers every AZ of the subnets and the instances", "block"),
    "network.ingress": ("the instance security group admits the ALB on the tasks' host ports", ""),
    "network.alb-egress": ("the ALB's security group lets traffic out to the instances' host ports", "block"),
    "target-group.exists": ("the target group exists", "block"),
    "target-group.vpc": ("the target group is in the subnets' VPC", "block"),
    "target-group.type": ("the target group's targets are instances", "block"),
    "target-group.protocol": ("the target group speaks HTTP", "block"),
    "target-group.health-check-port": ("health checks go to each target's own port (traffic-port)", "block"),
    "target-group.listener": ("the target group is on a listener of the ALB", "block"),
    "target-group.health-check": ("the health check asks Ghost's site endpoint and accepts its answer", ""),
    "target-group.health-timing": ("health checks notice a change within a minute", ""),
    "target-group.deregistration-delay": ("a stopped task's target drains quickly", ""),
    "capacity.instance-type": ("the instance type is offered in the region", "block"),
    "capacity.instance-type-azs": ("the instance type is offered in every subnet's AZ", "block"),
    "capacity.architecture": ("the AMI's architecture runs on the instance type", "block"),
    "capacity.fit": ("all desired tasks fit on the instances", "block"),
    "capacity.deploy": ("a deploy can start new tasks while keeping the minimum healthy", ""),
    "capacity.instance-loss": ("with one instance lost, the others hold the minimum healthy tasks", ""),
    "placement.strategy": ("placement spreads tasks over AZs, then instances", ""),
    "placement.spread": ("the running tasks are spread evenly", ""),
    "service.circuit-breaker": ("the deployment circuit breaker is on, with rollback", ""),
    "service.grace-period": ("a health-check grace period covers Ghost's start", ""),
    "service.az-rebalancing": ("ECS moves tasks back to an AZ that lost them (AZ rebalancing)", ""),
    "service.role": ("the service's IAM role is consistent with ECS's service-linked role", "block"),
    "instances.ami": ("instances run the current ECS-optimized Amazon Linux 2023 AMI", "block"),
    "instances.imds": ("IMDSv2 is required, with hop limit 1", ""),
    "instances.profile": ("the instance profile's role trusts EC2 and holds the ECS instance policy", "block"),
    "instances.cluster": ("the instances join the configured cluster (ECS_CLUSTER in their user data)", ""),
    "ghost.url": ("Ghost's url is the public address", "warn"),
    "ghost.database": ("every task uses one shared MySQL database", "warn"),
    "ghost.storage": ("uploaded content is shared by every task", ""),
    "ghost.image": ("the image is pinned to a version", ""),
    "ghost.memory": ("a memory reservation is set", ""),
    "ghost.clustering": ("Ghost runs as several containers only with one MySQL and shared storage", ""),
    "task.family": ("the task family has an ACTIVE revision", "block"),
    "task.network-mode": ("the task definition uses bridge mode", "block"),
    "task.container": ("the configured container is in the task definition", "block"),
    "task.port": ("the container maps the configured container port", "block"),
    "ownership.cluster": ("the cluster is this stack's", "block"),
    "ownership.service": ("the service name is free or this stack's", "block"),
    "ownership.launch-template": ("the launch template is this stack's", "block"),
    "ownership.asg": ("the Auto Scaling group is this stack's", "block"),
}
AREA_NAMES = {"target-group": "target group"}


@dataclass(frozen=True)
class Check:
    id: str
    area: str
    verdict: str  # pass | warn | fail
    title: str  # what is checked, as a claim that holds when it passes
    evidence: str  # what was found
    fix: str = ""  # what to do when it does not pass
    gate: str = ""  # "block": a failure stops `up`; "warn": `up` shows it; "": doctor only

    @property
    def message(self) -> str:
        """One line: what is wrong and how to fix it (the preflight wording)."""
        return f"{self.evidence}: {self.fix}" if self.fix else self.evidence

    def to_dict(self) -> dict[str, str]:
        return {k: getattr(self, k) for k in ("id", "area", "verdict", "title", "evidence", "fix")}


@dataclass(frozen=True)
class Recovery:
    """How long a lost task takes to be replaced and serve, and how long a stopped task's target drains."""

    interval: int
    healthy_threshold: int
    draining_seconds: int

    @property
    def healthy_within_seconds(self) -> int:
        return PLACEMENT_SECONDS + START_SECONDS + self.healthy_threshold * self.interval

    def to_dict(self) -> dict[str, int]:
        return {"healthy_within_seconds": self.healthy_within_seconds, "draining_seconds": self.draining_seconds}

    def describe(self) -> str:
        return (
            f"placement {PLACEMENT_SECONDS} s + start {START_SECONDS} s + {self.healthy_threshold} healthy checks x "
            f"{self.interval} s = {self.healthy_within_seconds} s"
        )


@dataclass(frozen=True)
class Audit:
    checks: tuple[Check, ...]
    recovery: Recovery

    @property
    def verdict(self) -> str:
        verdicts = {c.verdict for c in self.checks}
        return "FAIL" if FAIL in verdicts else "WARN" if WARN in verdicts else "PASS"

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
            "expected_recovery": self.recovery.to_dict(),
        }


# --- the facts the checks share ---------------------------------------------------------------------------


@dataclass
class Facts:
    """What several checks derive from the snapshot, derived once."""

    cfg: Config
    obs: Observed
    purpose: str  # "doctor" or "up"
    out: list[Check] = field(default_factory=list)

    def add(self, id: str, verdict: str, evidence: str, fix: str = "") -> None:
        title, gate = CATALOG[id]
        area = id.split(".")[0]
        area = AREA_NAMES.get(area, area)
        self.out.append(Check(id, area, verdict, title, evidence, fix if verdict != PASS else "", gate))

    @property
    def deployed(self) -> bool:
        """Judge the running service (doctor on a deployed stack), else what `up` would build."""
        return self.purpose == "doctor" and self.obs.service_active

    @property
    def svc(self) -> Json:
        return (self.obs.service or {}) if self.deployed else {}

    @property
    def td(self) -> Json | None:
        return (
            self.obs.service_task_definition or self.obs.task_definition if self.deployed else self.obs.task_definition
        )

    @cached_property
    def container(self) -> Json | None:
        td = self.td or {}
        return next((c for c in td.get("containerDefinitions", []) if c.get("name") == self.cfg.task.container), None)

    @cached_property
    def env(self) -> dict[str, str]:
        return {str(e.get("name")): str(e.get("value") or "") for e in (self.container or {}).get("environment") or []}

    @property
    def host_port(self) -> int | None:
        """The host port the tasks ask for: 0 dynamic; `up` always deploys host port 0."""
        if not self.deployed:
            return 0
        return taskdef.host_port(self.td or {}, self.cfg.task.container, self.cfg.task.container_port)

    @property
    def desired(self) -> int:
        return int(self.svc.get("desiredCount", 0)) if self.deployed else self.cfg.service.desired_count

    @property
    def percents(self) -> tuple[int, int]:
        if self.deployed:
            dc = self.svc.get("deploymentConfiguration") or {}
            return int(dc.get("minimumHealthyPercent", 100)), int(dc.get("maximumPercent", 200))
        return self.cfg.service.minimum_healthy_percent, self.cfg.service.maximum_percent

    @cached_property
    def subnet_azs(self) -> list[str]:
        return sorted({s["AvailabilityZone"] for s in self.obs.subnets})

    @cached_property
    def vpc(self) -> str | None:
        vpcs = {s["VpcId"] for s in self.obs.subnets}
        return next(iter(vpcs)) if len(vpcs) == 1 else None

    @cached_property
    def active_instances(self) -> list[Json]:
        return [ci for ci in self.obs.container_instances if ci.get("status") == "ACTIVE"]

    def instance_az(self, ci: Json) -> str | None:
        return ci_attribute(ci, "ecs.availability-zone")

    @property
    def tg_name(self) -> str:
        return self.cfg.load_balancer.target_group

    @property
    def service_ref(self) -> str:
        return f"--cluster {self.cfg.cluster.name} --service {self.cfg.service.name}"

    @cached_property
    def recovery(self) -> Recovery:
        tg = self.obs.target_group or {}
        delay = self.obs.target_group_attributes.get("deregistration_delay.timeout_seconds")
        return Recovery(
            interval=int(tg.get("HealthCheckIntervalSeconds") or 30),
            healthy_threshold=int(tg.get("HealthyThresholdCount") or 5),
            draining_seconds=int(delay) if delay else AWS_DEFAULT_DEREGISTRATION_DELAY,
        )


# --- network ------------------------------------------------------------------------------------------------


def _network(f: Facts) -> None:
    cfg, obs = f.cfg, f.obs
    found = {s["SubnetId"] for s in obs.subnets}
    missing = [sid for sid in cfg.network.subnets if sid not in found]
    if missing:
        for sid in missing:
            f.add("network.subnets", FAIL, f"subnet {sid} not found in {obs.region}", "fix network.subnets")
    else:
        f.add("network.subnets", PASS, f"{len(found)} subnets: {', '.join(sorted(found))}")
    vpcs = sorted({s["VpcId"] for s in obs.subnets})
    if len(vpcs) > 1:
        f.add("network.vpc", FAIL, f"network.subnets span several VPCs ({', '.join(vpcs)})", "list subnets of one VPC")
    azs = f.subnet_azs
    if found and len(azs) < 2:
        f.add(
            "network.azs",
            WARN,
            f"network.subnets are all in {azs[0]}",
            "losing that AZ takes the blog down; list subnets in two AZs",
        )
    elif found:
        f.add("network.azs", PASS, f"subnets in {', '.join(azs)}")

    sg = obs.security_group
    if sg is None:
        f.add(
            "network.security-group",
            FAIL,
            f"security group {cfg.network.security_group} not found",
            "fix network.security_group",
        )
    elif f.vpc and sg["VpcId"] != f.vpc:
        f.add(
            "network.security-group",
            FAIL,
            f"security group {cfg.network.security_group} is in {sg['VpcId']}, the subnets in {f.vpc}",
            "use a security group of the subnets' VPC",
        )
    else:
        f.add("network.security-group", PASS, f"{cfg.network.security_group} in {sg['VpcId']}")

    lb = obs.load_balancer
    if lb is None:
        f.add(
            "network.load-balancer", FAIL, f"load balancer {cfg.load_balancer.name} not found", "fix load_balancer.name"
        )
    else:
        _alb_azs(f, lb)
    _ingress(f)


def _alb_azs(f: Facts, lb: Json) -> None:
    name = f.cfg.load_balancer.name
    lb_azs = {z["ZoneName"] for z in lb.get("AvailabilityZones", [])}
    instance_azs = {az for ci in f.active_instances if (az := f.instance_az(ci))}
    uncovered = sorted(az for az in set(f.subnet_azs) | instance_azs if az not in lb_azs)
    if uncovered:
        f.add(
            "network.alb-azs",
            FAIL,
            f"load balancer {name} does not cover {', '.join(uncovered)}",
            "tasks there would never pass health checks; enable those AZs on the ALB or use other subnets",
        )
    else:
        f.add("network.alb-azs", PASS, f"{name} is in {', '.join(sorted(lb_azs))}")


def _admitted(sg: Json, sources: set[str], low: int, high: int) -> bool:
    """Does one ingress rule admit one of `sources` (security groups) on every port of low..high?"""
    for perm in sg.get("IpPermissions", []):
        proto = str(perm.get("IpProtocol"))
        if proto not in ("tcp", "6", "-1"):
            continue
        if proto != "-1" and not (int(perm.get("FromPort", 0)) <= low and int(perm.get("ToPort", 0)) >= high):
            continue
        if any(p.get("GroupId") in sources for p in perm.get("UserIdGroupPairs", [])):
            return True
        if any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", [])):
            return True
    return False


def _ingress(f: Facts) -> None:
    """The instance security group admits the ALB's groups on the tasks' host ports (the step everyone forgets)."""
    sg, lb = f.obs.security_group, f.obs.load_balancer
    if sg is None or lb is None:
        return
    groups = set(lb.get("SecurityGroups", []))
    port = f.host_port
    if port is None:
        return
    ranges: list[tuple[int, int, str]] = []
    if port:
        ranges.append((port, port, f"static host port {port}"))
    else:
        low, high = AGENT_PORTS
        ranges.append((low, high, f"the agent's dynamic range {low}-{high}"))
        bound = sorted({p for t in f.obs.tasks if (p := _task_port(t, f.cfg)) is not None and p > 0})
        if bound and (bound[0] < low or bound[-1] > high):  # the agent's fallback range 49153-65535
            ranges.append((bound[0], bound[-1], f"the tasks' bound ports {bound[0]}-{bound[-1]}"))
    shut = [r for r in ranges if not _admitted(sg, groups, r[0], r[1])]
    sg_id, alb = sg["GroupId"], ", ".join(sorted(groups)) or "(the ALB has no security group)"
    if not shut:
        f.add("network.ingress", PASS, f"{sg_id} admits {alb} on {ranges[0][2]}")
        return
    if not f.deployed:
        # `up` adds the rule: report what it will do, as a pass, since nothing is exposed yet
        f.add(
            "network.ingress",
            PASS,
            f"not deployed: `up` adds TCP {DYNAMIC_PORTS[0]}-{DYNAMIC_PORTS[1]} from {alb} to {sg_id}",
        )
        return
    low, high = (shut[0][0], shut[0][1]) if port else DYNAMIC_PORTS
    perms = ",".join(
        f"{{IpProtocol=tcp,FromPort={low},ToPort={high},UserIdGroupPairs=[{{GroupId={g}}}]}}" for g in sorted(groups)
    )
    f.add(
        "network.ingress",
        FAIL,
        f"{sg_id} does not admit {alb} on {shut[0][2]}: every target times out (Target.Timeout)",
        f"aws ec2 authorize-security-group-ingress --group-id {sg_id} --ip-permissions '{perms}'",
    )


def _alb_egress(f: Facts) -> None:
    """The ALB's security groups must also let traffic OUT to the instances on the dynamic host ports (ELB guide,
    "Security groups for your Application Load Balancer": traffic on the port "in both directions"), or every
    target fails its health checks with Target.Timeout. ghostha never changes a group it does not own: it says
    exactly which egress rule to add."""
    from ipaddress import ip_network

    from ghostha.resources.ingress_rule import spans_agent_ports

    obs, cfg = f.obs, f.cfg
    if obs.load_balancer is None or not obs.lb_security_groups:
        return
    instance_sg = cfg.network.security_group
    subnets = [ip_network(s["CidrBlock"]) for s in obs.subnets if s.get("CidrBlock")]

    def reaches(perm: Json) -> bool:
        if not spans_agent_ports(perm):
            return False
        if any(p.get("GroupId") == instance_sg for p in perm.get("UserIdGroupPairs", [])):
            return True
        nets = [ip_network(r["CidrIp"]) for r in perm.get("IpRanges", []) if r.get("CidrIp")]
        return bool(subnets) and all(any(sub.subnet_of(net) for net in nets) for sub in subnets)  # type: ignore[arg-type]

    groups = ", ".join(str(g["GroupId"]) for g in obs.lb_security_groups)
    if any(reaches(perm) for sg in obs.lb_security_groups for perm in sg.get("IpPermissionsEgress", [])):
        f.add("network.alb-egress", PASS, f"{groups} allow outbound TCP {AGENT_PORTS[0]}-{AGENT_PORTS[1]}")
        return
    lb_sg = str(obs.lb_security_groups[0]["GroupId"])
    low, high = DYNAMIC_PORTS
    f.add(
        "network.alb-egress",
        FAIL,
        f"load balancer {cfg.load_balancer.name}'s security group {lb_sg} allows no outbound TCP {AGENT_PORTS[0]}-"
        f"{AGENT_PORTS[1]} to the instances' security group {instance_sg}: every target would fail its health "
        "checks (Target.Timeout)",
        "ghostha does not change a group it does not own; add the egress rule: aws ec2 "
        f"authorize-security-group-egress --group-id {lb_sg} --ip-permissions "
        f"'IpProtocol=tcp,FromPort={low},ToPort={high},UserIdGroupPairs=[{{GroupId={instance_sg}}}]'",
    )


def _instance_type_zones(f: Facts) -> None:
    """CreateAutoScalingGroup's launches fail in an AZ that does not offer the instance type, and with an AMI whose
    architecture the type cannot run (DescribeInstanceTypeOfferings, DescribeInstanceTypes, DescribeImages). A type
    the region does not have at all is `capacity.instance-type`."""
    obs, cfg = f.obs, f.cfg
    itype = cfg.cluster.instance_type
    if obs.instance_type is None or obs.offered_azs is None:
        return
    offered = set(obs.offered_azs)
    missing = [s for s in obs.subnets if s["AvailabilityZone"] not in offered]
    for subnet in missing:
        az = subnet["AvailabilityZone"]
        f.add(
            "capacity.instance-type-azs",
            FAIL,
            f"instance type {itype} is not offered in {az} (subnet {subnet['SubnetId']})",
            "remove that subnet from network.subnets, or choose a cluster.instance_type offered in every subnet's AZ"
            + (f" ({itype} is offered in {', '.join(sorted(offered))})" if offered else ""),
        )
    if not missing and obs.subnets:
        f.add("capacity.instance-type-azs", PASS, f"{itype} is offered in {', '.join(f.subnet_azs)}")
    archs = [str(a) for a in obs.instance_type.get("ProcessorInfo", {}).get("SupportedArchitectures", [])]
    arch = obs.ami_architecture
    if arch and archs and arch not in archs:
        f.add(
            "capacity.architecture",
            FAIL,
            f"AMI {obs.ami_id} ({cfg.cluster.ami}) is {arch}, but {itype} runs {', '.join(archs)}",
            f"choose a cluster.instance_type that runs {arch}, or an {archs[0]} AMI for cluster.ami",
        )
    elif arch and archs:
        f.add("capacity.architecture", PASS, f"AMI {obs.ami_id} is {arch}; {itype} runs {', '.join(archs)}")


def _task_port(task: Json, cfg: Config) -> int | None:
    from ghostha.waiting import task_host_port

    port = task_host_port(task, cfg)
    return port if port >= 0 else None


# --- target group ---------------------------------------------------------------------------------------------


def _target_group(f: Facts) -> None:
    tg, lb, name = f.obs.target_group, f.obs.load_balancer, f.tg_name
    if tg is None:
        f.add("target-group.exists", FAIL, f"target group {name} not found", "fix load_balancer.target_group")
        return
    if f.vpc and tg.get("VpcId") != f.vpc:
        f.add(
            "target-group.vpc",
            FAIL,
            f"target group {name} is in {tg.get('VpcId')}, the subnets in {f.vpc}",
            f"use one of {f.vpc}",
        )
    ok = tg.get("TargetType") == "instance"
    f.add(
        "target-group.type",
        PASS if ok else FAIL,
        f"target group {name} has target type {tg.get('TargetType')}",
        "bridge-mode tasks with dynamic host ports need a target group of type instance",
    )
    ok = tg.get("Protocol") == "HTTP"
    f.add(
        "target-group.protocol",
        PASS if ok else FAIL,
        f"target group {name} uses {tg.get('Protocol')}",
        "Ghost's containers speak HTTP",
    )
    port = str(tg.get("HealthCheckPort"))
    f.add(
        "target-group.health-check-port",
        PASS if port == "traffic-port" else FAIL,
        f"target group {name} checks health on port {port}",
        "set it to traffic-port, or dynamic ports are never checked",
    )
    if lb is not None:
        attached = lb["LoadBalancerArn"] in tg.get("LoadBalancerArns", [])
        f.add(
            "target-group.listener",
            PASS if attached else FAIL,
            f"target group {name} is {'' if attached else 'not '}attached to a listener of {f.cfg.load_balancer.name}",
            "add a listener (or rule) forwarding to it",
        )
    _health_check(f, tg)
    _deregistration(f, tg)


def _codes(matcher: str) -> Callable[[int], bool]:
    """Does an ELBv2 matcher ("200", "200-399", "200,301") accept a status code?"""
    spans: list[tuple[int, int]] = []
    for part in matcher.split(","):
        lo, _, hi = part.strip().partition("-")
        if lo.isdigit():
            spans.append((int(lo), int(hi) if hi.isdigit() else int(lo)))
    return lambda code: any(lo <= code <= hi for lo, hi in spans)


def _health_check(f: Facts, tg: Json) -> None:
    arn = tg["TargetGroupArn"]
    path = str(tg.get("HealthCheckPath") or "/")
    matcher = str((tg.get("Matcher") or {}).get("HttpCode") or "200")
    accepts = _codes(matcher)
    https = f.env.get("url", "").startswith("https://")
    fix = (
        f"aws elbv2 modify-target-group --target-group-arn {arn} --health-check-path {GHOST_HEALTH_PATH} "
        "--matcher HttpCode=200-399"
    )
    redirect = https or (path.rstrip("/") + "/" == GHOST_HEALTH_PATH and not path.endswith("/"))
    if redirect and not accepts(301):
        why = "Ghost redirects plain-HTTP requests to its https url" if https else f"Ghost redirects {path} to {path}/"
        f.add(
            "target-group.health-check",
            FAIL,
            f"{why} (301), and the matcher {matcher} does not accept 301: every target turns unhealthy",
            fix,
        )
    elif path != GHOST_HEALTH_PATH:
        f.add(
            "target-group.health-check",
            WARN,
            f"health check path {path}: Ghost's / renders the home page (slow, and a theme error fails it)",
            fix,
        )
    else:
        f.add("target-group.health-check", PASS, f"path {path}, matcher {matcher}")

    r = f.recovery
    unhealthy = int(tg.get("UnhealthyThresholdCount") or 2)
    timing = f"{r.healthy_threshold} x {r.interval} s to turn healthy, {unhealthy} x {r.interval} s to turn unhealthy"
    slow = r.healthy_threshold * r.interval > 60 or unhealthy * r.interval > 60
    f.add(
        "target-group.health-timing",
        WARN if slow else PASS,
        f"{timing} (AWS's defaults are 5 x 30 s = 150 s)",
        f"aws elbv2 modify-target-group --target-group-arn {arn} --health-check-interval-seconds 10 "
        "--healthy-threshold-count 2 --unhealthy-threshold-count 2",
    )


def _deregistration(f: Facts, tg: Json) -> None:
    delay = f.recovery.draining_seconds
    source = "" if "deregistration_delay.timeout_seconds" in f.obs.target_group_attributes else " (AWS's default)"
    f.add(
        "target-group.deregistration-delay",
        WARN if delay > 60 else PASS,
        f"deregistration delay {delay} s{source}: every replaced task lingers that long before it stops",
        f"aws elbv2 modify-target-group-attributes --target-group-arn {tg['TargetGroupArn']} "
        f"--attributes Key=deregistration_delay.timeout_seconds,Value={RECOMMENDED_DEREGISTRATION_DELAY}",
    )


# --- capacity -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    cpu: int
    memory: int


def task_size(td: Json) -> Size:
    """What a task reserves on its instance: task-level CPU/memory if set, else the containers' sums (memory by
    memoryReservation when set, else memory), as ECS places them."""
    containers = td.get("containerDefinitions", [])
    cpu = int(td.get("cpu") or 0) or sum(int(c.get("cpu") or 0) for c in containers)
    memory = int(td.get("memory") or 0) or sum(
        int(c.get("memoryReservation") or c.get("memory") or 0) for c in containers
    )
    return Size(cpu, memory)


def registered_estimate(instance_type: Json) -> Size:
    """What the ECS agent registers for an instance type (see AGENT_MEMORY_SHARE)."""
    vcpus = int(instance_type["VCpuInfo"]["DefaultVCpus"])
    mib = int(instance_type["MemoryInfo"]["SizeInMiB"])
    return Size(vcpus * 1024, int(mib * AGENT_MEMORY_SHARE))


def _registered(ci: Json) -> Size:
    return Size(ci_resource(ci, "CPU", "registeredResources"), ci_resource(ci, "MEMORY", "registeredResources"))


def fits(instance: Size, task: Size, static_port: bool) -> tuple[int, str]:
    """How many tasks fit on one instance, and what limits it."""
    limits = []
    if task.memory:
        limits.append((instance.memory // task.memory, f"{instance.memory} MiB / {task.memory} MiB reserved"))
    if task.cpu:
        limits.append((instance.cpu // task.cpu, f"{instance.cpu} CPU units / {task.cpu}"))
    if static_port:
        limits.append((1, "a static host port allows one task per instance"))
    if not limits:
        return 10**6, "the task reserves no CPU or memory"
    return min(limits)


def _capacity(f: Facts) -> None:
    cfg, obs = f.cfg, f.obs
    td = f.td
    if td is None or f.container is None:
        return
    size = task_size(td)
    static = bool(f.host_port)
    instances: list[tuple[str, Size]]
    if f.purpose == "doctor" and f.active_instances:
        instances = [(ci.get("ec2InstanceId", "?"), _registered(ci)) for ci in f.active_instances]
        source = "registered resources"
    elif obs.instance_type is None:
        f.add(
            "capacity.instance-type",
            FAIL,
            f"instance type {cfg.cluster.instance_type} not offered in {obs.region}",
            "fix cluster.instance_type",
        )
        return
    else:
        each = registered_estimate(obs.instance_type)
        how = f"as ECS registers a {cfg.cluster.instance_type}"
        # the real registration beats the estimate, when the instances are of the configured type (a new type
        # replaces them: then their numbers say nothing)
        same = [ci for ci in f.active_instances if ci_attribute(ci, "ecs.instance-type") == cfg.cluster.instance_type]
        if same:
            each = min((_registered(ci) for ci in same), key=lambda s: s.memory)
            how = f"as the running {cfg.cluster.instance_type} instances registered them"
        instances = [(f"instance {i + 1}", each) for i in range(cfg.cluster.instance_count)]
        source = f"{each.cpu} CPU units, {each.memory} MiB each ({how})"
    per = [fits(s, size, static) for _, s in instances]
    total = sum(n for n, _ in per)
    desired = f.desired
    minimum, maximum = f.percents
    why = per[0][1] if per else "no instances"
    shape = f"{len(instances)} instances x {per[0][0] if per else 0} ({why}), by {source}"
    port_fix = "use host port 0 (dynamic; `ghostha up` registers such a revision)"
    more = "raise cluster.instance_count, pick a larger cluster.instance_type, or lower the task's memoryReservation"
    if total < desired:
        f.add("capacity.fit", FAIL, f"{desired} tasks desired, {total} fit: {shape}", port_fix if static else more)
    else:
        f.add("capacity.fit", PASS, f"{desired} tasks desired, {total} fit: {shape}")

    keep = math.ceil(desired * minimum / 100)
    ceiling = math.floor(desired * maximum / 100)
    room = min(total, ceiling) - keep
    dc = f"minimumHealthyPercent {minimum}, maximumPercent {maximum}"
    if room < 1 or ceiling <= keep:
        f.add(
            "capacity.deploy",
            FAIL,
            f"{dc}: a deploy must keep {keep} tasks and may run {min(total, ceiling)}: deploys and drains are blocked",
            "set service.minimum_healthy_percent to 50 (and maximum_percent to 200)",
        )
    elif total < ceiling:
        f.add(
            "capacity.deploy",
            WARN,
            f"{dc}: a deploy's surge to {ceiling} tasks does not fit ({total}); it stops old tasks first, down to "
            f"{desired - (total - desired) if total > desired else keep}",
            more,
        )
    else:
        f.add("capacity.deploy", PASS, f"{dc}: the surge to {ceiling} tasks fits ({total})")

    if len(instances) < 2:
        f.add(
            "capacity.instance-loss",
            FAIL,
            f"{len(instances)} instance: losing it stops every task",
            "run two or more instances in two AZs",
        )
    else:
        left = total - max(n for n, _ in per)
        need = max(1, keep)
        f.add(
            "capacity.instance-loss",
            FAIL if left < need else PASS,
            f"without its largest instance the cluster holds {left} tasks; the minimum healthy is {need} "
            f"(ceil({desired} x {minimum}%))",
            more,
        )


# --- placement ------------------------------------------------------------------------------------------------


def _placement(f: Facts) -> None:
    planned = [{"type": t, "field": x} for t, x in SPREAD]
    strategy = list(f.svc.get("placementStrategy") or []) if f.deployed else planned
    text = ", ".join(f"{s.get('type')}:{s.get('field', '')}".rstrip(":") for s in strategy) or "none"
    fields = [s.get("field") for s in strategy if s.get("type") == "spread"]
    first = strategy[0].get("type") if strategy else None
    fix = (
        f"aws ecs update-service {f.service_ref} --placement-strategy "
        "type=spread,field=attribute:ecs.availability-zone type=spread,field=instanceId"
    )
    if first in ("binpack", "random"):
        f.add("placement.strategy", FAIL, f"strategy {text}: {first} first packs tasks onto few instances", fix)
    elif "attribute:ecs.availability-zone" in fields and any(x in ("instanceId", "host") for x in fields):
        f.add("placement.strategy", PASS, f"strategy {text}" + ("" if f.deployed else " (as `up` creates it)"))
    else:
        f.add("placement.strategy", WARN, f"strategy {text}", fix)

    running = [t for t in f.obs.tasks if t.get("lastStatus") == "RUNNING"]
    if not f.deployed or not running:
        f.add("placement.spread", PASS, "no tasks running yet")
        return
    by_arn = {ci["containerInstanceArn"]: ci for ci in f.active_instances}
    per_instance = Counter({ci.get("ec2InstanceId", "?"): 0 for ci in f.active_instances})
    per_az = Counter({az: 0 for ci in f.active_instances if (az := f.instance_az(ci))})
    for t in running:
        ci = by_arn.get(t.get("containerInstanceArn", ""))
        if ci is not None:
            per_instance[ci.get("ec2InstanceId", "?")] += 1
        if t.get("availabilityZone"):
            per_az[t["availabilityZone"]] += 1
    seen = ", ".join(f"{k}: {v}" for k, v in sorted(per_instance.items()))
    seen += " | " + ", ".join(f"{k}: {v}" for k, v in sorted(per_az.items()))
    crowded = len(per_instance) > 1 and sum(1 for v in per_instance.values() if v) == 1
    crowded = crowded or (len(per_az) > 1 and sum(1 for v in per_az.values() if v) == 1)
    uneven = any(c and max(c.values()) - min(c.values()) > 1 for c in (per_instance, per_az))
    verdict = FAIL if crowded else WARN if uneven else PASS
    rebalancing = f.svc.get("availabilityZoneRebalancing") == "ENABLED"
    f.add(
        "placement.spread",
        verdict,
        f"{len(running)} tasks: {seen}",
        (
            "ECS's AZ rebalancing evens out the AZs once each has an instance with room (not the instances within "
            "an AZ); to respread now, force a new deployment "
            if rebalancing
            else "ECS does not rebalance by itself (AZ rebalancing is off): force a new deployment "
        )
        + f"(aws ecs update-service {f.service_ref} --force-new-deployment)",
    )


# --- service --------------------------------------------------------------------------------------------------


def _service(f: Facts) -> None:
    dc = f.svc.get("deploymentConfiguration") or {}
    breaker = (dc.get("deploymentCircuitBreaker") or {}) if f.deployed else {"enable": True, "rollback": True}
    note = "" if f.deployed else " (as `up` creates the service)"
    fix = (
        f"aws ecs update-service {f.service_ref} --deployment-configuration "
        "'deploymentCircuitBreaker={enable=true,rollback=true}'"
    )
    if breaker.get("enable") and breaker.get("rollback"):
        f.add("service.circuit-breaker", PASS, "circuit breaker on, rollback on" + note)
    else:
        state = "on without rollback" if breaker.get("enable") else "off"
        f.add(
            "service.circuit-breaker",
            WARN,
            f"circuit breaker {state}: a deploy that never turns healthy retries forever",
            fix,
        )

    # ECS developer guide, "Balancing an Amazon ECS service across Availability Zones"; a service that never had
    # the setting is DISABLED (UpdateService)
    rebalancing = str(f.svc.get("availabilityZoneRebalancing") or "DISABLED") if f.deployed else "ENABLED"
    if rebalancing == "ENABLED":
        f.add("service.az-rebalancing", PASS, "AZ rebalancing ENABLED" + note)
    else:
        f.add(
            "service.az-rebalancing",
            WARN,
            f"AZ rebalancing {rebalancing}: after an AZ loses its instance, the tasks stay in the other AZ even once "
            "a new instance arrives there",
            f"ghostha up (or: aws ecs update-service {f.service_ref} --availability-zone-rebalancing ENABLED)",
        )

    grace = f.svc.get("healthCheckGracePeriodSeconds") if f.deployed else f.cfg.service.health_check_grace_seconds
    grace = int(grace or 0)
    need = START_SECONDS + f.recovery.healthy_threshold * f.recovery.interval
    evidence = (
        f"grace period {grace} s; Ghost needs about {START_SECONDS} s to start + "
        f"{f.recovery.healthy_threshold} x {f.recovery.interval} s to turn healthy = {need} s"
    )
    f.add(
        "service.grace-period",
        WARN if grace < need else PASS,
        evidence + (": new tasks can be killed while still booting (and migrating)" if grace < need else ""),
        f"aws ecs update-service {f.service_ref} --health-check-grace-period-seconds {max(120, need)}",
    )
    _service_role(f)


def _service_role(f: Facts) -> None:
    if f.purpose == "up":  # up reads no IAM roles (a deploy user may not be allowed to)
        return
    role_arn = f.svc.get("roleArn") if f.deployed else None
    configured = f.cfg.service.role
    slr = f.obs.service_linked_role
    if f.deployed:
        used = f"role {role_arn.rsplit('/', 1)[-1]}" if role_arn else f"the service-linked role {SLR_NAME}"
        f.add("service.role", PASS, f"service {f.cfg.service.name} runs with {used}")
        return
    unread = [u for u in f.obs.unread if u.startswith("iam:GetRole")]
    if unread:
        f.add(
            "service.role",
            WARN,
            f"could not read {'; '.join(unread)}: whether the role exists and ECS's service-linked role is used is "
            "unknown",
            "allow iam:GetRole to check it",
        )
    elif configured:
        if f.obs.service_role is None:
            f.add(
                "service.role",
                FAIL,
                f"service.role {configured} does not exist",
                "set service.role: null to use ECS's service-linked role (or create the legacy ecsServiceRole)",
            )
        elif slr is not None:
            f.add(
                "service.role",
                WARN,
                f"service.role {configured} is configured, and {SLR_NAME} exists: the role is only for the legacy "
                "ecsServiceRole",
                "set service.role: null",
            )
        else:
            f.add("service.role", PASS, f"service.role {configured} (legacy service role)")
    elif slr is not None:
        f.add("service.role", PASS, f"no role configured; {SLR_NAME} exists and ECS uses it")
    else:
        f.add(
            "service.role",
            PASS,
            f"no role configured; ECS creates {SLR_NAME} at the first CreateService when you may "
            'iam:CreateServiceLinkedRole (else: "Unable to assume the service linked role")',
        )


# --- instances ------------------------------------------------------------------------------------------------


def _launch_data(f: Facts) -> tuple[Json | None, str]:
    """The launch settings of the instances: running instances, else ghostha's launch template, else up's plan."""
    lt = f.obs.launch_template
    if lt is not None:
        return lt.get("LatestData") or {}, f"launch template {lt.get('LaunchTemplateName')}"
    if f.obs.ami_id:
        return launch_template.template_data(f.cfg, launch_template.desired(f.cfg)), "the launch template `up` creates"
    return None, ""


def _instances(f: Facts) -> None:
    obs = f.obs
    data, where = _launch_data(f)
    # AMI
    if obs.ami_error:
        f.add("instances.ami", FAIL, obs.ami_error, "fix cluster.ami")
    elif f.purpose == "up":  # up reads no image names: it only needs the AMI to resolve
        f.add("instances.ami", PASS, f"{cfg_ami(f)} resolves to {obs.ami_id}")
    else:
        amis = sorted({i["ImageId"] for i in obs.ec2_instances if i.get("ImageId")}) or (
            [obs.ami_id] if obs.ami_id else []
        )
        names = {a: _image_family(a, obs.images.get(a)) for a in amis}
        old = [a for a, n in names.items() if n.startswith(("amzn2-ami-ecs", "amzn-ami-", "amazon-linux-2/"))]
        current = [a for a, n in names.items() if n.startswith(("al2023-ami-ecs", "amazon-linux-2023/"))]
        shown = ", ".join(f"{a} ({names[a] or 'name unknown'})" if not a.startswith("resolve:") else a for a in amis)
        fix = (
            "use the SSM parameter /aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id "
            "(cluster.ami's default) and replace the instances"
        )
        if old:
            f.add("instances.ami", WARN, f"{shown}: Amazon Linux 2 ECS AMIs reached end of life on 2026-06-30", fix)
        elif len(current) < len(amis):
            f.add("instances.ami", WARN, f"{shown}: not known as an ECS-optimized Amazon Linux 2023 AMI", fix)
        else:
            f.add("instances.ami", PASS, shown or "no AMI to judge")
    # IMDS
    if obs.ec2_instances:
        opts = {i["InstanceId"]: i.get("MetadataOptions") or {} for i in obs.ec2_instances}
        source = f"{len(opts)} running instances"
    elif data is not None:
        opts = {where: data.get("MetadataOptions") or {}}
        source = where
    else:
        opts = {}
        source = ""
    v1 = sorted(k for k, o in opts.items() if o.get("HttpTokens") != "required")
    hops = sorted(k for k, o in opts.items() if int(o.get("HttpPutResponseHopLimit") or 1) > 1)
    fix = (
        "set MetadataOptions HttpTokens=required, HttpPutResponseHopLimit=1 in the launch template and replace "
        "the instances (or: aws ec2 modify-instance-metadata-options --instance-id … --http-tokens required "
        "--http-put-response-hop-limit 1)"
    )
    if v1:
        f.add(
            "instances.imds",
            WARN,
            f"{', '.join(v1)}: IMDSv1 allowed: a request forgery in any container can read the instance role's "
            "credentials",
            fix,
        )
    elif hops:
        f.add(
            "instances.imds",
            WARN,
            f"{', '.join(hops)}: hop limit above 1 lets bridge-mode containers reach IMDS and the instance role's "
            "credentials (Ghost does not need it)",
            fix,
        )
    elif opts:
        f.add("instances.imds", PASS, f"{source}: IMDSv2 required, hop limit 1")
    _instance_role(f)
    _user_data(f, data, where)


def cfg_ami(f: Facts) -> str:
    return f.cfg.cluster.ami.removeprefix("ssm:")


def _image_family(ami: str, image: Json | None) -> str:
    """An AMI's name, or for `resolve:ssm:<parameter>` (EC2 resolves it at launch) the ECS parameter's family."""
    if ami.startswith("resolve:ssm:"):
        path = ami.removeprefix("resolve:ssm:")
        prefix = "/aws/service/ecs/optimized-ami/"
        return path.removeprefix(prefix) if path.startswith(prefix) else ""
    return str((image or {}).get("Name") or "")


def _instance_role(f: Facts) -> None:
    cfg, obs = f.cfg, f.obs
    name = cfg.cluster.instance_profile
    if obs.instance_profile is None:
        f.add(
            "instances.profile",
            FAIL,
            f"instance profile {name} not found",
            "create it (role trusting ec2.amazonaws.com with AmazonEC2ContainerServiceforEC2Role) or fix "
            "cluster.instance_profile",
        )
        return
    if f.purpose == "up":
        return
    roles = obs.instance_profile.get("Roles", [])
    if not roles:
        f.add(
            "instances.profile",
            FAIL,
            f"instance profile {name} holds no role",
            f"aws iam add-role-to-instance-profile --instance-profile-name {name} --role-name ecsInstanceRole",
        )
        return
    role = roles[0]
    doc = role.get("AssumeRolePolicyDocument") or {}
    if isinstance(doc, str):
        from urllib.parse import unquote

        doc = json.loads(unquote(doc))
    trusted = {
        p
        for s in _statements(doc)
        if s.get("Effect") == "Allow"
        for p in _listed((s.get("Principal") or {}).get("Service") if isinstance(s.get("Principal"), dict) else None)
    }
    policies = obs.instance_role_policies
    rn = role["RoleName"]
    problems = []
    fixes = []
    if "ec2.amazonaws.com" not in trusted:
        problems.append(
            f"role {rn} does not trust ec2.amazonaws.com (trusts {', '.join(sorted(trusted)) or 'no service'})"
        )
        fixes.append(
            f"aws iam update-assume-role-policy --role-name {rn} --policy-document "
            '\'{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":'
            '"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}\''
        )
    if policies is not None and not any(p.endswith("/" + ECS_INSTANCE_POLICY) for p in policies):
        problems.append(f"role {rn} holds no {ECS_INSTANCE_POLICY} ({len(policies)} managed policies attached)")
        fixes.append(
            f"aws iam attach-role-policy --role-name {rn} "
            f"--policy-arn arn:aws:iam::aws:policy/service-role/{ECS_INSTANCE_POLICY}"
        )
    if problems:
        f.add(
            "instances.profile",
            FAIL,
            "; ".join(problems) + ": the agent cannot register the instances",
            "; ".join(fixes),
        )
    elif policies is None:
        f.add(
            "instances.profile",
            WARN,
            f"role {rn} trusts ec2.amazonaws.com; its policies could not be read ({'; '.join(obs.unread)})",
            "allow iam:ListAttachedRolePolicies to check it",
        )
    else:
        f.add("instances.profile", PASS, f"role {rn} trusts ec2.amazonaws.com, holds {ECS_INSTANCE_POLICY}")


def _statements(doc: Json) -> list[Json]:
    st = doc.get("Statement") or []
    return [st] if isinstance(st, dict) else list(st)


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _user_data(f: Facts, data: Json | None, where: str) -> None:
    cluster = f.cfg.cluster.name
    if f.active_instances:
        f.add("instances.cluster", PASS, f"{len(f.active_instances)} container instances registered in {cluster}")
        return
    if data is None:
        return
    from ghostha.resources.launch_template import decode_user_data

    text = decode_user_data(data.get("UserData"))
    if f"ECS_CLUSTER={cluster}" in text:
        f.add("instances.cluster", PASS, f"{where} sets ECS_CLUSTER={cluster}")
    else:
        f.add(
            "instances.cluster",
            FAIL,
            f"{where} does not set ECS_CLUSTER={cluster}: its instances join the cluster named default",
            f"add `echo ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config` to the user data (`ghostha up` does)",
        )


# --- Ghost ----------------------------------------------------------------------------------------------------


def _ghost(f: Facts) -> None:
    cfg, c = f.cfg, f.container
    if c is None:
        return
    name, env, desired = cfg.task.container, f.env, f.desired
    url = env.get("url", "")
    if not url or "localhost" in url or "127.0.0.1" in url:
        f.add(
            "ghost.url",
            WARN,
            f"container env `url` is {url or 'not set (Ghost defaults to http://localhost:2368)'}",
            "set it to the ALB's (or your domain's) URL: Ghost builds every link and redirect from it",
        )
    else:
        f.add("ghost.url", PASS, f"url {url}")

    mysql = env.get("database__client") == "mysql"
    if mysql:
        host = env.get("database__connection__host") or "(no database__connection__host)"
        f.add("ghost.database", PASS, f"database__client=mysql, host {host}")
    else:
        client = env.get("database__client") or "unset: SQLite"
        f.add(
            "ghost.database",
            FAIL if desired > 1 else WARN,
            f"container {name!r} has no database__client=mysql ({client})",
            f"with SQLite each of the {desired} tasks is a separate blog; point them all at one MySQL 8 database "
            "(database__client=mysql, database__connection__host|user|password|database)",
        )

    td = f.td or {}
    volumes = {v.get("name"): v for v in td.get("volumes", [])}
    shared = [
        m
        for m in c.get("mountPoints") or []
        if str(m.get("containerPath", "")).startswith(GHOST_CONTENT)
        and (volumes.get(m.get("sourceVolume")) or {}).get("efsVolumeConfiguration")
    ]
    adapter = env.get("storage__active")
    if shared or adapter:
        what = f"EFS volume at {shared[0]['containerPath']}" if shared else f"storage adapter {adapter}"
        f.add("ghost.storage", PASS, what)
    else:
        f.add(
            "ghost.storage",
            WARN,
            f"no EFS volume at {GHOST_CONTENT} and no storage adapter: an image uploaded through one task "
            "stays in that container",
            f"mount an EFS volume at {GHOST_CONTENT} or configure a storage adapter (storage__active)",
        )

    image = str(c.get("image") or "")
    repo_tag = image.rsplit("/", 1)[-1]
    if "@sha256:" in image or (":" in repo_tag and not repo_tag.endswith(":latest")):
        f.add("ghost.image", PASS, f"image {image}")
    else:
        f.add(
            "ghost.image",
            WARN,
            f"image {image or '?'}: `latest` moves, so tasks replaced later run another Ghost than the others",
            "pin a version tag such as ghost:5 (or a digest)",
        )

    reserved, hard = c.get("memoryReservation"), c.get("memory") or td.get("memory")
    if reserved:
        limit = f", hard limit {hard} MiB" if hard else ""
        f.add("ghost.memory", PASS, f"memoryReservation {reserved} MiB{limit}")
    else:
        f.add(
            "ghost.memory",
            WARN,
            f"no memoryReservation, only the hard limit {hard} MiB: ECS reserves all of it for every task, and "
            "Ghost is killed on reaching it",
            "set memoryReservation 512 with memory 1024 on the container (Ghost needs about 512 MiB)",
        )

    if desired <= 1 or (mysql and (shared or adapter)):
        f.add("ghost.clustering", PASS, f"{desired} tasks, MySQL and shared storage" if desired > 1 else "one task")
    else:
        f.add(
            "ghost.clustering",
            WARN,
            f"{desired} tasks: Ghost's FAQ says it does not support load-balanced clustering; several containers "
            "of one site work only against one MySQL database with shared content storage",
            "configure MySQL and shared storage, or run one task",
        )


# --- the task definition (up's preflight) --------------------------------------------------------------------


def _task(f: Facts) -> bool:
    """The family's latest revision can be made into the host-port-0 revision. False stops the checks that
    need a task definition."""
    cfg = f.cfg
    td = f.obs.task_definition
    if td is None:
        f.add("task.family", FAIL, f"task family {cfg.task.family} has no ACTIVE revision", "fix task.family")
        return False
    rev = f"{td['family']}:{td['revision']}"
    mode = td.get("networkMode") or "bridge"
    f.add(
        "task.network-mode",
        PASS if mode == "bridge" else FAIL,
        f"task definition {rev} uses network mode {mode}",
        "dynamic host ports need bridge",
    )
    names = [str(c.get("name")) for c in td.get("containerDefinitions", [])]
    if cfg.task.container not in names:
        f.add(
            "task.container",
            FAIL,
            f"task definition {rev} has no container {cfg.task.container!r} (it has {', '.join(names)})",
            "fix task.container",
        )
        return False
    if taskdef.port_mapping(td, cfg.task.container, cfg.task.container_port) is None:
        f.add(
            "task.port",
            FAIL,
            f"container {cfg.task.container!r} of {rev} maps no container port {cfg.task.container_port}",
            "fix task.container_port or add the port mapping",
        )
        return False
    port = taskdef.host_port(td, cfg.task.container, cfg.task.container_port)
    f.add(
        "task.port", PASS, f"{rev}: container {cfg.task.container!r} port {cfg.task.container_port} → host port {port}"
    )
    return mode == "bridge"


# --- ownership (up's preflight only) ---------------------------------------------------------------------------


def _ownership(f: Facts) -> None:
    cfg, obs = f.cfg, f.obs
    if obs.cluster is not None and not obs.cluster_owned:
        other = tag_dict(obs.cluster.get("tags")).get(TAG_KEY)
        whose = f"belongs to ghostha stack {other}" if other else "was not created by ghostha"
        f.add(
            "ownership.cluster",
            FAIL,
            f"cluster {cfg.cluster.name} exists but {whose} (no tag {TAG_KEY}={cfg.stack})",
            "choose another cluster.name; ghostha never takes over what it did not create",
        )
    if obs.service is not None and obs.service.get("status") == "DRAINING":
        f.add(
            "ownership.service",
            FAIL,
            f"service {cfg.service.name} is still DRAINING from a deletion",
            "AWS allows a new one of that name only once it is INACTIVE; run `ghostha up` again in a minute",
        )
    elif obs.service_active and not obs.service_owned:
        f.add(
            "ownership.service",
            FAIL,
            f"service {cfg.service.name} exists in cluster {cfg.cluster.name} but is not this stack's",
            "choose another service.name",
        )
    if obs.launch_template is not None and not obs.launch_template_owned:
        f.add(
            "ownership.launch-template",
            FAIL,
            f"launch template {cfg.launch_template_name} exists but is not this stack's",
            "rename the stack",
        )
    if obs.asg is not None and not obs.asg_owned:
        f.add(
            "ownership.asg",
            FAIL,
            f"Auto Scaling group {cfg.asg_name} exists but is not this stack's",
            "rename the stack",
        )


# --- entry points ---------------------------------------------------------------------------------------------


def run(cfg: Config, obs: Observed, purpose: str = "doctor") -> tuple[Check, ...]:
    """Every check, in area order (within an area, in the order they ran)."""
    f = Facts(cfg, obs, purpose)
    _network(f)
    _alb_egress(f)
    _instance_type_zones(f)
    _target_group(f)
    usable = _task(f)
    if usable or f.deployed:
        _capacity(f)
    _placement(f)
    _service(f)
    _instances(f)
    _ghost(f)
    if purpose == "up":
        _ownership(f)
    order = {a: i for i, a in enumerate(AREAS)}
    return tuple(sorted(f.out, key=lambda c: order.get(c.area, len(order))))


def audit(cfg: Config, obs: Observed) -> Audit:
    """`doctor`: every check, the verdict, and the expected recovery bound of a lost task."""
    return Audit(run(cfg, obs, "doctor"), Facts(cfg, obs, "doctor").recovery)


def preflight(cfg: Config, obs: Observed) -> tuple[list[str], list[str]]:
    """`up`'s preflight: (problems that stop it, warnings it shows), each one line with its fix."""
    checks = run(cfg, obs, "up")
    problems = [c.message for c in checks if c.verdict == FAIL and c.gate == "block"]
    warnings = [
        c.message
        for c in checks
        if (c.verdict == WARN and c.gate in ("block", "warn")) or (c.verdict == FAIL and c.gate == "warn")
    ]
    return problems, warnings


def counts(checks: Iterable[Check]) -> dict[str, int]:
    got = Counter(c.verdict for c in checks)
    return {v: got.get(v, 0) for v in (FAIL, WARN, PASS)}
