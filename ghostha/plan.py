"""Pure planning: from the config and a snapshot, the ordered steps that bring AWS to the wanted state.

No I/O and no printing here. A converged stack plans no mutating step. Each step is one AWS call (or a named
wait); values that only exist once an earlier step ran (the new revision's ARN) are `Ref`s the executor fills in.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from ghostha import taskdef
from ghostha.config import TAG_KEY, Config
from ghostha.errors import OwnershipError, PreflightError
from ghostha.observe import Json, Observed, tag_dict

DYNAMIC_PORTS = (32768, 65535)  # the rule ghostha adds; the agent's range is 32768-60999
AGENT_PORTS = (32768, 60999)
SPREAD = (
    {"type": "spread", "field": "attribute:ecs.availability-zone"},
    {"type": "spread", "field": "instanceId"},
)


@dataclass(frozen=True)
class Ref:
    """A value produced by an earlier step, by name."""

    name: str


@dataclass(frozen=True)
class Step:
    action: str  # what kind of step: create-cluster, register-task-definition, wait-service, …
    resource: str  # what it acts on, for people
    detail: str = ""  # how, for people
    service: str | None = None  # boto3 client name; None for waits
    operation: str | None = None  # boto3 method name
    params: dict[str, Any] = field(default_factory=dict)
    changes: tuple[str, ...] = ()  # before → after, for the dry run
    output: str | None = None  # name under which the step's result is kept (see Ref)

    @property
    def mutating(self) -> bool:
        return self.operation is not None


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    warnings: tuple[str, ...] = ()

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
        problems.append(
            f"cluster {cfg.cluster.name} exists but was not created by ghostha (no tag {TAG_KEY}={cfg.stack}): "
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


def user_data(cluster: str) -> str:
    script = f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"
    return base64.b64encode(script.encode()).decode()


def launch_template_data(cfg: Config, ami_id: str) -> Json:
    data: Json = {
        "ImageId": ami_id,
        "InstanceType": cfg.cluster.instance_type,
        "IamInstanceProfile": {"Name": cfg.cluster.instance_profile},
        "SecurityGroupIds": [cfg.network.security_group],
        "UserData": user_data(cfg.cluster.name),
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": 2},
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [{"Key": TAG_KEY, "Value": cfg.stack}, {"Key": "Name", "Value": f"{cfg.stack}-ecs"}],
            }
        ],
    }
    if cfg.cluster.key_name:
        data["KeyName"] = cfg.cluster.key_name
    return data


def _lt_differs(current: Json, wanted: Json) -> list[str]:
    keys = ("ImageId", "InstanceType", "IamInstanceProfile", "SecurityGroupIds", "UserData", "KeyName")
    out = []
    for k in keys:
        have, want = current.get(k), wanted.get(k)
        if k == "IamInstanceProfile" and isinstance(have, dict):
            have = {"Name": have.get("Name")} if have.get("Name") else have
        if have != want:
            out.append(k)
    if (current.get("MetadataOptions") or {}).get("HttpTokens") != "required":
        out.append("MetadataOptions")
    return out


def ingress_covered(sg: Json, source_group: str) -> bool:
    """Does an ingress rule already let `source_group` reach the agent's dynamic port range?"""
    for perm in sg.get("IpPermissions", []):
        proto = str(perm.get("IpProtocol"))
        if proto not in ("tcp", "6", "-1"):
            continue
        if proto != "-1" and not (
            perm.get("FromPort", 0) <= AGENT_PORTS[0] and perm.get("ToPort", 0) >= AGENT_PORTS[1]
        ):
            continue
        if any(p.get("GroupId") == source_group for p in perm.get("UserIdGroupPairs", [])):
            return True
    return False


def wanted_revision(cfg: Config, obs: Observed) -> tuple[str | None, Json | None, tuple[str, ...]]:
    """(existing ARN to reuse, or register kwargs for a new revision, and the changes for the dry run)."""
    td = obs.task_definition
    assert td is not None
    port = taskdef.host_port(td, cfg.task.container, cfg.task.container_port)
    if port == 0 and obs.owned(obs.task_definition_tags):
        return str(td["taskDefinitionArn"]), None, ()
    tags = {**obs.task_definition_tags, TAG_KEY: cfg.stack}
    kwargs = taskdef.dynamic_revision(td, tags, cfg.task.container, cfg.task.container_port)
    rev = f"{td['family']}:{td['revision']}"
    change = f"container {cfg.task.container} port {cfg.task.container_port}: host port {port} → 0 (dynamic)"
    return None, kwargs, (f"from {rev}", change)


def plan_up(cfg: Config, obs: Observed) -> Plan:
    """The steps of `up`. Raises PreflightError (nothing is created) when the account is not ready."""
    problems, warnings = preflight(cfg, obs)
    if problems:
        owner = [p for p in problems if "ghostha never takes over" in p or "is not this stack's" in p]
        cls = OwnershipError if owner and len(owner) == len(problems) else PreflightError
        raise cls(
            problems[0] if len(problems) == 1 else f"{len(problems)} problems stop `up`; nothing was created",
            hint="fix the config or the account, then run `ghostha up` again",
            details=problems if len(problems) > 1 else [],
        )
    assert obs.ami_id and obs.target_group and obs.load_balancer and obs.task_definition
    tags = [{"Key": TAG_KEY, "Value": cfg.stack}]
    ecs_tags = [{"key": TAG_KEY, "value": cfg.stack}]
    steps: list[Step] = []
    n = cfg.cluster.instance_count

    if obs.cluster is None or not obs.cluster_active:
        steps.append(
            Step(
                "create-cluster",
                f"cluster {cfg.cluster.name}",
                f"tagged {TAG_KEY}={cfg.stack}",
                "ecs",
                "create_cluster",
                {"clusterName": cfg.cluster.name, "tags": ecs_tags},
            )
        )

    lt_data = launch_template_data(cfg, obs.ami_id)
    if obs.launch_template is None:
        steps.append(
            Step(
                "create-launch-template",
                f"launch template {cfg.launch_template_name}",
                f"{cfg.cluster.instance_type}, {obs.ami_id}, profile {cfg.cluster.instance_profile}, IMDSv2, "
                f"ECS_CLUSTER={cfg.cluster.name}",
                "ec2",
                "create_launch_template",
                {
                    "LaunchTemplateName": cfg.launch_template_name,
                    "LaunchTemplateData": lt_data,
                    "TagSpecifications": [{"ResourceType": "launch-template", "Tags": tags}],
                },
            )
        )
    elif diff := _lt_differs(obs.launch_template.get("LatestData", {}), lt_data):
        steps.append(
            Step(
                "update-launch-template",
                f"launch template {cfg.launch_template_name}",
                f"new version ({', '.join(diff)} changed); new instances use it",
                "ec2",
                "create_launch_template_version",
                {"LaunchTemplateName": cfg.launch_template_name, "LaunchTemplateData": lt_data},
                changes=tuple(f"{k} changed" for k in diff),
            )
        )

    asg = obs.asg
    if asg is None:
        steps.append(
            Step(
                "create-auto-scaling-group",
                f"Auto Scaling group {cfg.asg_name}",
                f"{n} instances over {', '.join(cfg.network.subnets)}",
                "autoscaling",
                "create_auto_scaling_group",
                {
                    "AutoScalingGroupName": cfg.asg_name,
                    "LaunchTemplate": {"LaunchTemplateName": cfg.launch_template_name, "Version": "$Latest"},
                    "MinSize": n,
                    "MaxSize": n,
                    "DesiredCapacity": n,
                    "VPCZoneIdentifier": ",".join(cfg.network.subnets),
                    "Tags": [
                        {
                            "Key": TAG_KEY,
                            "Value": cfg.stack,
                            "PropagateAtLaunch": True,
                            "ResourceId": cfg.asg_name,
                            "ResourceType": "auto-scaling-group",
                        }
                    ],
                },
            )
        )
    elif (asg["MinSize"], asg["MaxSize"], asg["DesiredCapacity"]) != (n, n, n):
        have = f"{asg['MinSize']}/{asg['MaxSize']}/{asg['DesiredCapacity']}"
        steps.append(
            Step(
                "update-auto-scaling-group",
                f"Auto Scaling group {cfg.asg_name}",
                f"min/max/desired {have} → {n}/{n}/{n}",
                "autoscaling",
                "update_auto_scaling_group",
                {"AutoScalingGroupName": cfg.asg_name, "MinSize": n, "MaxSize": n, "DesiredCapacity": n},
                changes=(f"min/max/desired {have} → {n}/{n}/{n}",),
            )
        )
    steps.append(
        Step("wait-instances", f"{n} container instances in cluster {cfg.cluster.name}", "ACTIVE, agent connected")
    )

    existing, register, changes = wanted_revision(cfg, obs)
    td_value: str | Ref
    if register is not None:
        steps.append(
            Step(
                "register-task-definition",
                f"task definition {cfg.task.family}",
                "new revision, everything else unchanged",
                "ecs",
                "register_task_definition",
                register,
                changes=changes,
                output="task_definition_arn",
            )
        )
        td_value = Ref("task_definition_arn")
    else:
        assert existing is not None
        td_value = existing

    sg = obs.security_group or {}
    for lb_sg in obs.load_balancer.get("SecurityGroups", []):
        if ingress_covered(sg, lb_sg):
            continue
        steps.append(
            Step(
                "authorize-ingress",
                f"security group {cfg.network.security_group}",
                f"TCP {DYNAMIC_PORTS[0]}-{DYNAMIC_PORTS[1]} from {lb_sg} (the ALB) to the dynamic host ports",
                "ec2",
                "authorize_security_group_ingress",
                {
                    "GroupId": cfg.network.security_group,
                    "IpPermissions": [
                        {
                            "IpProtocol": "tcp",
                            "FromPort": DYNAMIC_PORTS[0],
                            "ToPort": DYNAMIC_PORTS[1],
                            "UserIdGroupPairs": [
                                {"GroupId": lb_sg, "Description": f"ghostha {cfg.stack}: ALB to ECS dynamic host ports"}
                            ],
                        }
                    ],
                    "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": tags}],
                },
            )
        )

    svc = obs.service if obs.service_active else None
    if svc is None:
        params: Json = {
            "cluster": cfg.cluster.name,
            "serviceName": cfg.service.name,
            "taskDefinition": td_value,
            "desiredCount": cfg.service.desired_count,
            "launchType": "EC2",
            "schedulingStrategy": "REPLICA",
            "loadBalancers": [
                {
                    "targetGroupArn": obs.target_group["TargetGroupArn"],
                    "containerName": cfg.task.container,
                    "containerPort": cfg.task.container_port,
                }
            ],
            "placementStrategy": [dict(s) for s in SPREAD],
            "deploymentConfiguration": {
                "maximumPercent": cfg.service.maximum_percent,
                "minimumHealthyPercent": cfg.service.minimum_healthy_percent,
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
            },
            "healthCheckGracePeriodSeconds": cfg.service.health_check_grace_seconds,
            "tags": ecs_tags,
            "propagateTags": "SERVICE",
            "enableECSManagedTags": True,
        }
        if cfg.service.role:
            params["role"] = cfg.service.role
        steps.append(
            Step(
                "create-service",
                f"service {cfg.service.name}",
                f"{cfg.service.desired_count} tasks behind {cfg.load_balancer.target_group}, spread by AZ then "
                "instance, circuit breaker with rollback",
                "ecs",
                "create_service",
                params,
                output="service",
            )
        )
    else:
        update: Json = {}
        diffs: list[str] = []
        if isinstance(td_value, Ref) or svc.get("taskDefinition") != td_value:
            update["taskDefinition"] = td_value
            diffs.append(f"task definition {_short(svc.get('taskDefinition'))} → new revision")
        if svc.get("desiredCount") != cfg.service.desired_count:
            update["desiredCount"] = cfg.service.desired_count
            diffs.append(f"desired count {svc.get('desiredCount')} → {cfg.service.desired_count}")
        if update:
            steps.append(
                Step(
                    "update-service",
                    f"service {cfg.service.name}",
                    "; ".join(diffs),
                    "ecs",
                    "update_service",
                    {"cluster": cfg.cluster.name, "service": cfg.service.name, **update},
                    changes=tuple(diffs),
                    output="service",
                )
            )
    steps.append(
        Step(
            "wait-service",
            f"service {cfg.service.name}",
            f"{cfg.service.desired_count} tasks running on the new revision, their targets healthy",
        )
    )
    return Plan(tuple(steps), tuple(warnings))


def _short(arn: Any) -> str:
    return str(arn).rsplit("/", 1)[-1] if arn else "none"


def owned_tags(tags: Any, stack: str) -> bool:
    return tag_dict(tags).get(TAG_KEY) == stack


# --- teardown -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One row of the teardown table: a resource and what happens to it."""

    kind: str
    name: str
    action: str  # "delete" or "leave"
    why: str = ""


@dataclass(frozen=True)
class TeardownPlan:
    items: tuple[Item, ...]
    steps: tuple[Step, ...]

    @property
    def deletes(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.action == "delete")


def plan_teardown(cfg: Config, inv: Any) -> TeardownPlan:
    """What teardown deletes (only what carries the stack's tag), what it leaves and why, and in which order."""
    items: list[Item] = []
    steps: list[Step] = []
    cluster_name = cfg.cluster.name
    cluster_owned = inv.cluster is not None and inv.owned(inv.cluster.get("tags"))
    ours = [s for s in inv.services if inv.owned(s.get("tags"))]
    foreign = [s for s in inv.services if not inv.owned(s.get("tags"))]

    for s in foreign:
        items.append(
            Item("ECS service", s["serviceName"], "leave", f"not created by ghostha (no tag {TAG_KEY}={cfg.stack})")
        )
    for s in ours:
        items.append(Item("ECS service", s["serviceName"], "delete", f"{s.get('runningCount', 0)} tasks running"))
        if s.get("status") == "ACTIVE":
            if s.get("desiredCount", 0) > 0:
                steps.append(
                    Step(
                        "scale-service",
                        f"service {s['serviceName']}",
                        "desired count → 0",
                        "ecs",
                        "update_service",
                        {"cluster": cluster_name, "service": s["serviceName"], "desiredCount": 0},
                    )
                )
            steps.append(Step("wait-tasks-stopped", f"tasks of service {s['serviceName']}", "stopped"))
            steps.append(
                Step(
                    "delete-service",
                    f"service {s['serviceName']}",
                    "",
                    "ecs",
                    "delete_service",
                    {"cluster": cluster_name, "service": s["serviceName"], "force": True},
                )
            )
        steps.append(Step("wait-service-inactive", f"service {s['serviceName']}", "INACTIVE"))

    # capacity and the cluster go only when nothing foreign runs in the cluster
    keep_capacity = bool(foreign)
    reason_keep = f"cluster {cluster_name} still runs {', '.join(s['serviceName'] for s in foreign)}, not ghostha's"
    if inv.asg is not None:
        if not inv.owned(inv.asg.get("Tags")):
            items.append(
                Item("Auto Scaling group", inv.asg["AutoScalingGroupName"], "leave", "not tagged as this stack's")
            )
        elif keep_capacity:
            items.append(Item("Auto Scaling group", inv.asg["AutoScalingGroupName"], "leave", reason_keep))
        else:
            n = len(inv.asg.get("Instances", []))
            items.append(
                Item("Auto Scaling group", inv.asg["AutoScalingGroupName"], "delete", f"and its {n} instances")
            )
            steps.append(
                Step(
                    "delete-auto-scaling-group",
                    f"Auto Scaling group {cfg.asg_name}",
                    "terminating its instances",
                    "autoscaling",
                    "delete_auto_scaling_group",
                    {"AutoScalingGroupName": cfg.asg_name, "ForceDelete": True},
                )
            )
            steps.append(Step("wait-asg-gone", f"Auto Scaling group {cfg.asg_name}", "gone"))

    if inv.cluster is not None:
        if not cluster_owned:
            items.append(
                Item("ECS cluster", cluster_name, "leave", f"not created by ghostha (no tag {TAG_KEY}={cfg.stack})")
            )
        elif keep_capacity:
            items.append(Item("ECS cluster", cluster_name, "leave", reason_keep))
        else:
            if inv.container_instances:
                items.append(
                    Item("container instances", cluster_name, "delete", f"{len(inv.container_instances)} deregistered")
                )
            steps.append(
                Step(
                    "deregister-container-instances",
                    f"container instances of {cluster_name}",
                    "those still registered",
                    "ecs",
                    "deregister_container_instance",
                    {"cluster": cluster_name, "force": True},
                )
            )
            items.append(Item("ECS cluster", cluster_name, "delete"))
            steps.append(
                Step(
                    "delete-cluster", f"cluster {cluster_name}", "", "ecs", "delete_cluster", {"cluster": cluster_name}
                )
            )

    lt = inv.launch_template
    if lt is not None:
        if not inv.owned(lt.get("Tags")):
            items.append(Item("launch template", lt["LaunchTemplateName"], "leave", "not tagged as this stack's"))
        elif keep_capacity:
            items.append(Item("launch template", lt["LaunchTemplateName"], "leave", reason_keep))
        else:
            items.append(Item("launch template", lt["LaunchTemplateName"], "delete"))
            steps.append(
                Step(
                    "delete-launch-template",
                    f"launch template {lt['LaunchTemplateName']}",
                    "",
                    "ec2",
                    "delete_launch_template",
                    {"LaunchTemplateId": lt["LaunchTemplateId"]},
                )
            )

    rule_ids = [r["SecurityGroupRuleId"] for r in inv.sg_rules]
    if rule_ids:
        label = f"{cfg.network.security_group}: {', '.join(rule_ids)}"
        if keep_capacity:
            items.append(Item("security-group rule", label, "leave", reason_keep))
        else:
            items.append(Item("security-group rule", label, "delete", "added by ghostha"))
            steps.append(
                Step(
                    "revoke-ingress",
                    f"security group {cfg.network.security_group}",
                    f"rules {', '.join(rule_ids)}",
                    "ec2",
                    "revoke_security_group_ingress",
                    {"GroupId": cfg.network.security_group, "SecurityGroupRuleIds": rule_ids},
                )
            )

    mine = [arn for arn, tags in inv.revisions if tags.get(TAG_KEY) == cfg.stack]
    others = [arn for arn, tags in inv.revisions if tags.get(TAG_KEY) != cfg.stack]
    for arn in mine:
        rev = arn.rsplit("/", 1)[-1]
        items.append(Item("task definition", rev, "delete", "registered by ghostha"))
        steps.append(
            Step(
                "deregister-task-definition",
                f"task definition {rev}",
                "",
                "ecs",
                "deregister_task_definition",
                {"taskDefinition": arn},
            )
        )
    doomed = mine + list(inv.inactive_revisions)
    for i in range(0, len(doomed), 10):
        batch = doomed[i : i + 10]
        steps.append(
            Step(
                "delete-task-definitions",
                f"{len(batch)} task definition revisions",
                ", ".join(a.rsplit("/", 1)[-1] for a in batch),
                "ecs",
                "delete_task_definitions",
                {"taskDefinitions": batch},
            )
        )
    if others:
        revs = ", ".join(a.rsplit("/", 1)[-1] for a in others)
        items.append(Item("task definitions", revs, "leave", "the family's own revisions, not ghostha's"))
    if inv.load_balancer is not None:
        items.append(Item("load balancer", cfg.load_balancer.name, "leave", "pre-existing, with its listeners"))
    if inv.target_group is not None:
        items.append(Item("target group", cfg.load_balancer.target_group, "leave", "pre-existing"))
    items.append(Item("network", ", ".join(cfg.network.subnets), "leave", "subnets and security groups are yours"))
    items.append(Item("instance profile", cfg.cluster.instance_profile, "leave", "pre-existing"))
    return TeardownPlan(tuple(items), tuple(steps))
