"""A read-only snapshot of everything the stack touches: only describe/list calls, batched and concurrent.

`observe()` returns one immutable `Observed`; `status`, `up` and `teardown` all start from it. A resource that
does not exist is None (or an empty list), never an exception; any other AWS error propagates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from ghostha.aws import Aws
from ghostha.config import TAG_KEY, Config
from ghostha.errors import error_code

Json = dict[str, Any]

# error codes that mean "it does not exist"
_MISSING = {
    "LoadBalancerNotFound",
    "TargetGroupNotFound",
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "NoSuchEntity",
    "ParameterNotFound",
    "InvalidLaunchTemplateName.NotFoundException",
    "InvalidLaunchTemplateId.NotFound",
    "InvalidAMIID.NotFound",
    "InvalidAMIID.Malformed",
    "ValidationError",
}


def _missing(exc: Exception) -> bool:
    code = error_code(exc)
    if code in _MISSING:
        return True
    # ECS answers a missing task definition family with a generic ClientException
    return code == "ClientException" and "Unable to describe task definition" in str(exc)


def maybe(call: Callable[[], Any]) -> Any:
    """The call's result, or None when AWS says the thing does not exist."""
    from botocore.exceptions import ClientError

    try:
        return call()
    except ClientError as exc:
        if _missing(exc):
            return None
        raise


def gather(calls: dict[str, Callable[[], Any]], workers: int = 8) -> dict[str, Any]:
    """Run independent calls concurrently; results by name. The first exception propagates."""
    if len(calls) <= 1:
        return {k: f() for k, f in calls.items()}
    pool = ThreadPoolExecutor(max_workers=min(workers, len(calls)))
    try:
        futures = {k: pool.submit(f) for k, f in calls.items()}
        return {k: fut.result() for k, fut in futures.items()}
    finally:  # on Ctrl-C or a failed call, do not wait for the calls still in flight
        pool.shutdown(wait=False, cancel_futures=True)


def chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def tag_dict(tags: Iterable[Json] | None) -> dict[str, str]:
    """AWS tags in either spelling ({Key, Value} or {key, value}) as a dict."""
    out: dict[str, str] = {}
    for t in tags or []:
        key = t.get("Key", t.get("key"))
        value = t.get("Value", t.get("value", ""))
        if key is not None:
            out[str(key)] = str(value)
    return out


@dataclass(frozen=True)
class Observed:
    """What AWS holds for the stack right now. Lists are in AWS's order."""

    stack: str
    region: str | None
    # inputs the stack builds on
    subnets: tuple[Json, ...] = ()
    security_group: Json | None = None
    load_balancer: Json | None = None
    target_group: Json | None = None
    target_health: tuple[Json, ...] = ()
    task_definition: Json | None = None  # the family's latest ACTIVE revision
    task_definition_tags: dict[str, str] = field(default_factory=dict)
    instance_profile: Json | None = None
    ami_id: str | None = None
    ami_error: str | None = None
    lb_security_groups: tuple[Json, ...] = ()
    # what ghostha makes
    stack_rules: tuple[Json, ...] = ()  # ingress rules tagged with the stack, in any security group (full only)
    cluster: Json | None = None
    launch_template: Json | None = None
    asg: Json | None = None
    container_instances: tuple[Json, ...] = ()
    service: Json | None = None
    tasks: tuple[Json, ...] = ()
    stopped_tasks: tuple[Json, ...] = ()
    observed_at: datetime | None = None  # AWS's clock when the snapshot was taken
    owned_services: tuple[Json, ...] = ()  # ACTIVE/DRAINING services of the cluster carrying the stack's tag
    instances: tuple[Json, ...] = ()  # the EC2 instances of the stack's Auto Scaling group (not terminated)
    current_ami: str | None = None  # what the configured SSM parameter resolves to now (status)
    # read for `up` (capacity) and `doctor`
    instance_type: Json | None = None  # DescribeInstanceTypes of cluster.instance_type; None if not offered
    # read for `doctor` only (see `doctor_reads`)
    target_group_attributes: dict[str, str] = field(default_factory=dict)
    instance_role_policies: tuple[str, ...] | None = None  # managed policy ARNs of the profile's role; None: unread
    ec2_instances: tuple[Json, ...] = ()  # the EC2 instances behind the container instances
    images: dict[str, Json] = field(default_factory=dict)  # AMIs of those instances and of cluster.ami, by id
    service_task_definition: Json | None = None  # the revision the service runs
    service_linked_role: Json | None = None  # AWSServiceRoleForECS
    service_role: Json | None = None  # service.role, when configured
    unread: tuple[str, ...] = ()  # doctor's reads AWS refused (e.g. AccessDenied on IAM), one line each
    ami_architecture: str | None = None  # the AMI's architecture (x86_64, arm64), when known
    offered_azs: tuple[str, ...] | None = None  # the AZs of the region that offer cluster.instance_type

    # --- predicates -----------------------------------------------------------------------------------------

    def owned(self, tags: dict[str, str]) -> bool:
        return tags.get(TAG_KEY) == self.stack

    @property
    def cluster_active(self) -> bool:
        return self.cluster is not None and self.cluster.get("status") == "ACTIVE"

    @property
    def cluster_owned(self) -> bool:
        return self.cluster is not None and self.owned(tag_dict(self.cluster.get("tags")))

    @property
    def service_active(self) -> bool:
        return self.service is not None and self.service.get("status") in ("ACTIVE", "DRAINING")

    @property
    def service_owned(self) -> bool:
        return self.service is not None and self.owned(tag_dict(self.service.get("tags")))

    @property
    def launch_template_owned(self) -> bool:
        return self.launch_template is not None and self.owned(tag_dict(self.launch_template.get("Tags")))

    @property
    def asg_owned(self) -> bool:
        return self.asg is not None and self.owned(tag_dict(self.asg.get("Tags")))

    @property
    def dns_name(self) -> str | None:
        return self.load_balancer.get("DNSName") if self.load_balancer else None


def _subnets(aws: Aws, ids: tuple[str, ...]) -> tuple[Json, ...]:
    resp = aws.client("ec2").describe_subnets(Filters=[{"Name": "subnet-id", "Values": list(ids)}])
    return tuple(resp["Subnets"])


def _security_group(aws: Aws, group_id: str) -> Json | None:
    resp = aws.client("ec2").describe_security_groups(Filters=[{"Name": "group-id", "Values": [group_id]}])
    groups = resp["SecurityGroups"]
    return groups[0] if groups else None


def _load_balancer(aws: Aws, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("elbv2").describe_load_balancers(Names=[name]))
    return resp["LoadBalancers"][0] if resp and resp["LoadBalancers"] else None


def _target_group(aws: Aws, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("elbv2").describe_target_groups(Names=[name]))
    return resp["TargetGroups"][0] if resp and resp["TargetGroups"] else None


def _task_definition(aws: Aws, family: str) -> tuple[Json | None, dict[str, str]]:
    resp = maybe(lambda: aws.client("ecs").describe_task_definition(taskDefinition=family, include=["TAGS"]))
    if not resp:
        return None, {}
    return resp["taskDefinition"], tag_dict(resp.get("tags"))


def _instance_profile(aws: Aws, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("iam").get_instance_profile(InstanceProfileName=name))
    return resp["InstanceProfile"] if resp else None


def _ami(aws: Aws, ami: str) -> tuple[str | None, str | None]:
    if ami.startswith("ssm:"):
        name = ami.removeprefix("ssm:")
        resp = maybe(lambda: aws.client("ssm").get_parameter(Name=name))
        if not resp:
            return None, f"SSM parameter {name} not found in this region"
        return str(resp["Parameter"]["Value"]), None
    resp = maybe(lambda: aws.client("ec2").describe_images(ImageIds=[ami]))
    if not resp or not resp["Images"]:
        return None, f"AMI {ami} not found in this region"
    return ami, None


def _ami_architecture(aws: Aws, ami: str) -> tuple[str | None, str | None, str | None]:
    """(AMI id, error, architecture): the AMI as `_ami` resolves it, and what DescribeImages says it runs on."""
    ami_id, error = _ami(aws, ami)
    if ami_id is None:
        return None, error, None
    resp = maybe(lambda: aws.client("ec2").describe_images(ImageIds=[ami_id]))
    images = (resp or {}).get("Images") or []
    return ami_id, error, (str(images[0]["Architecture"]) if images and images[0].get("Architecture") else None)


def _offered_azs(aws: Aws, instance_type: str) -> tuple[str, ...]:
    """The AZs of the region that offer the instance type (DescribeInstanceTypeOfferings, by AZ)."""
    azs: list[str] = []
    pages = (
        aws.client("ec2")
        .get_paginator("describe_instance_type_offerings")
        .paginate(LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": [instance_type]}])
    )
    for page in pages:
        azs += [str(o["Location"]) for o in page["InstanceTypeOfferings"]]
    return tuple(sorted(set(azs)))


def _cluster(aws: Aws, name: str) -> Json | None:
    cluster, _ = _cluster_and_time(aws, name)
    return cluster


def _cluster_and_time(aws: Aws, name: str) -> tuple[Json | None, datetime | None]:
    """The cluster, and AWS's time by the response's Date header (the user's clock may be off)."""
    resp = aws.client("ecs").describe_clusters(clusters=[name], include=["TAGS"])
    clusters = [c for c in resp["clusters"] if c.get("status") != "INACTIVE"]
    date = resp.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        at = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        at = None
    return (clusters[0] if clusters else None), at


def _launch_template(aws: Aws, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("ec2").describe_launch_templates(LaunchTemplateNames=[name]))
    if not resp or not resp["LaunchTemplates"]:
        return None
    lt: Json = dict(resp["LaunchTemplates"][0])
    versions = aws.client("ec2").describe_launch_template_versions(
        LaunchTemplateId=lt["LaunchTemplateId"], Versions=["$Latest"]
    )["LaunchTemplateVersions"]
    lt["LatestData"] = versions[0]["LaunchTemplateData"] if versions else {}
    return lt


def _asg(aws: Aws, name: str) -> Json | None:
    resp = aws.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])
    groups = resp["AutoScalingGroups"]
    return groups[0] if groups else None


def _service(aws: Aws, cluster: str, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("ecs").describe_services(cluster=cluster, services=[name], include=["TAGS"]))
    if not resp:
        return None
    services = [s for s in resp["services"] if s.get("status") != "INACTIVE"]
    return services[0] if services else None


def listed_and_described(
    client: Any, lister: str, key: str, describe: Callable[[list[str]], list[Json]], batch: int, **kwargs: Any
) -> tuple[Json, ...]:
    """Every page of a list call, then the describe call over its ARNs in batches (as large as AWS allows)."""
    arns: list[str] = []
    for page in client.get_paginator(lister).paginate(**kwargs):
        arns += page[key]
    out: list[Json] = []
    for part in chunks(arns, batch):
        out += describe(part)
    return tuple(out)


def cluster_instances(aws: Aws, cluster: str) -> tuple[Json, ...]:
    """Every container instance of the cluster."""
    ecs = aws.client("ecs")
    return listed_and_described(
        ecs,
        "list_container_instances",
        "containerInstanceArns",
        lambda arns: ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"],
        100,
        cluster=cluster,
    )


def service_tasks(aws: Aws, cluster: str, service: str | None, status: str = "RUNNING") -> tuple[Json, ...]:
    """Every task of the service (of the whole cluster when `service` is None) with that desired status."""
    ecs = aws.client("ecs")
    by_service = {"serviceName": service} if service else {}
    return listed_and_described(
        ecs,
        "list_tasks",
        "taskArns",
        lambda arns: ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"],
        100,
        cluster=cluster,
        desiredStatus=status,
        **by_service,
    )


def group_instances(aws: Aws, cfg: Config) -> tuple[Json, ...]:
    """The EC2 instances the stack's Auto Scaling group launched that are not terminated (tags, AMI, state)."""
    return _live_instances(aws, "tag:aws:autoscaling:groupName", cfg.asg_name)


def _live_instances(aws: Aws, tag_filter: str, value: str) -> tuple[Json, ...]:
    ec2 = aws.client("ec2")
    filters = [
        {"Name": tag_filter, "Values": [value]},
        {"Name": "instance-state-name", "Values": ["pending", "running", "shutting-down", "stopping", "stopped"]},
    ]
    out: list[Json] = []
    for page in ec2.get_paginator("describe_instances").paginate(Filters=filters):
        out += [i for r in page["Reservations"] for i in r["Instances"]]
    return tuple(out)


def _owned_services(aws: Aws, cfg: Config) -> tuple[Json, ...]:
    return tuple(
        s
        for s in _cluster_services(aws, cfg.cluster.name, cfg.service.name)
        if tag_dict(s.get("tags")).get(TAG_KEY) == cfg.stack
    )


def _target_health(aws: Aws, tg_arn: str) -> tuple[Json, ...]:
    resp = aws.client("elbv2").describe_target_health(TargetGroupArn=tg_arn)
    return tuple(resp["TargetHealthDescriptions"])


def _security_groups(aws: Aws, ids: list[str]) -> tuple[Json, ...]:
    if not ids:
        return ()
    resp = aws.client("ec2").describe_security_groups(Filters=[{"Name": "group-id", "Values": ids}])
    return tuple(resp["SecurityGroups"])


def _target_group_and_health(aws: Aws, name: str) -> tuple[Json | None, tuple[Json, ...]]:
    tg = _target_group(aws, name)
    return tg, (_target_health(aws, tg["TargetGroupArn"]) if tg else ())


def _load_balancer_and_groups(aws: Aws, name: str) -> tuple[Json | None, tuple[Json, ...]]:
    """The ALB and its security groups (their egress is half of the path to the instances). Its listeners are not
    read: the target group's LoadBalancerArns already say whether a listener forwards to it."""
    lb = _load_balancer(aws, name)
    if lb is None:
        return None, ()
    return lb, _security_groups(aws, list(lb.get("SecurityGroups", [])))


def observe(aws: Aws, cfg: Config, scope: str = "up") -> Observed:
    """Snapshot the stack. scope "up" also reads the inputs preflight checks; "status" only what it shows;
    "doctor" what "up" reads, then (`doctor_reads`) what the audit needs beyond it.

    Every read is in one concurrent batch; dependent reads (list → describe, name → ARN → health) are chained
    inside their branch, so the snapshot costs two round trips plus pagination."""
    full = scope in ("up", "doctor")
    calls: dict[str, Callable[[], Any]] = {
        "cluster": lambda: _cluster_and_time(aws, cfg.cluster.name),
        "service": lambda: _service(aws, cfg.cluster.name, cfg.service.name),
        "target_group": lambda: _target_group_and_health(aws, cfg.load_balancer.target_group),
        "container_instances": lambda: maybe(lambda: cluster_instances(aws, cfg.cluster.name)) or (),
        "instances": lambda: group_instances(aws, cfg),
        "tasks": lambda: maybe(lambda: service_tasks(aws, cfg.cluster.name, cfg.service.name, "RUNNING")) or (),
    }
    if full:
        calls |= {
            "owned_services": lambda: maybe(lambda: _owned_services(aws, cfg)) or (),
            "stopped_tasks": lambda: (
                maybe(lambda: service_tasks(aws, cfg.cluster.name, cfg.service.name, "STOPPED")) or ()
            ),
            "load_balancer": lambda: _load_balancer_and_groups(aws, cfg.load_balancer.name),
            "subnets": lambda: _subnets(aws, cfg.network.subnets),
            "security_group": lambda: _security_group(aws, cfg.network.security_group),
            "stack_rules": lambda: tagged_rules(aws, cfg.stack),
            "task_definition": lambda: _task_definition(aws, cfg.task.family),
            "instance_profile": lambda: _instance_profile(aws, cfg.cluster.instance_profile),
            "ami": lambda: _ami_architecture(aws, cfg.cluster.ami),
            "offered_azs": lambda: _offered_azs(aws, cfg.cluster.instance_type),
            "launch_template": lambda: _launch_template(aws, cfg.launch_template_name),
            "asg": lambda: _asg(aws, cfg.asg_name),
            "instance_type": lambda: instance_type_info(aws, cfg.cluster.instance_type),
        }
    else:
        calls["load_balancer"] = lambda: (_load_balancer(aws, cfg.load_balancer.name), ())
        if cfg.cluster.ami.startswith("ssm:"):
            calls["ami"] = lambda: _ami(aws, cfg.cluster.ami)
        calls["stopped_tasks"] = lambda: (
            maybe(lambda: service_tasks(aws, cfg.cluster.name, cfg.service.name, "STOPPED")) or ()
        )
    got = gather(calls)

    lb, lb_groups = got["load_balancer"]
    tg, health = got["target_group"]
    td, td_tags = got.get("task_definition") or (None, {})
    ami_id, ami_error, *arch = got.get("ami") or (None, None)
    cluster, observed_at = got["cluster"]
    obs = Observed(
        stack=cfg.stack,
        region=aws.region_name,
        subnets=got.get("subnets", ()),
        security_group=got.get("security_group"),
        stack_rules=got.get("stack_rules", ()),
        load_balancer=lb,
        target_group=tg,
        target_health=health,
        task_definition=td,
        task_definition_tags=td_tags,
        instance_profile=got.get("instance_profile"),
        ami_id=ami_id,
        ami_error=ami_error,
        lb_security_groups=lb_groups,
        cluster=cluster,
        observed_at=observed_at,
        launch_template=got.get("launch_template"),
        asg=got.get("asg"),
        container_instances=got["container_instances"],
        service=got["service"],
        tasks=got["tasks"],
        stopped_tasks=got.get("stopped_tasks", ()),
        owned_services=got.get("owned_services", ()),
        instances=got["instances"],
        current_ami=ami_id,
        instance_type=got.get("instance_type"),
        ami_architecture=arch[0] if arch else None,
        offered_azs=got.get("offered_azs"),
    )
    return doctor_reads(aws, cfg, obs) if scope == "doctor" else obs


# --- teardown -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inventory:
    """What teardown finds: the stack's resources by name and by the ownership tag."""

    stack: str
    cluster: Json | None = None
    services: tuple[Json, ...] = ()  # ACTIVE or DRAINING services in the cluster, with tags
    asg: Json | None = None
    launch_template: Json | None = None
    container_instances: tuple[Json, ...] = ()
    sg_rules: tuple[Json, ...] = ()  # ingress rules tagged with the stack
    revisions: tuple[tuple[str, dict[str, str]], ...] = ()  # ACTIVE revisions of the family; tags for the stack's
    inactive_revisions: tuple[str, ...] = ()  # INACTIVE revisions ghostha registered (deregistered, not deleted)
    load_balancer: Json | None = None
    target_group: Json | None = None
    own_instance_ids: tuple[str, ...] = ()  # EC2 instances of the stack's group (its members, or tagged as ours)
    standalone_tasks: tuple[str, ...] = ()  # tasks in the cluster that no service of this stack started

    def owned(self, tags: Any) -> bool:
        return tag_dict(tags).get(TAG_KEY) == self.stack


def _cluster_services(aws: Aws, cluster: str, configured: str) -> tuple[Json, ...]:
    """ACTIVE and DRAINING services of the cluster, with tags. A deleted (DRAINING) service leaves ListServices at
    once, so the configured name is also described directly."""
    ecs = aws.client("ecs")
    out = listed_and_described(
        ecs,
        "list_services",
        "serviceArns",
        lambda arns: ecs.describe_services(cluster=cluster, services=arns, include=["TAGS"])["services"],
        10,
        cluster=cluster,
    )
    if not any(s.get("serviceName") == configured for s in out):
        out += tuple(ecs.describe_services(cluster=cluster, services=[configured], include=["TAGS"])["services"])
    return tuple(s for s in out if s.get("status") in ("ACTIVE", "DRAINING"))


def tagged_rules(aws: Aws, stack: str) -> tuple[Json, ...]:
    """The stack's ingress rules in every security group: after a `network.security_group` change the old group
    still holds the one ghostha added there."""
    rules: list[Json] = []
    pages = aws.client("ec2").get_paginator("describe_security_group_rules")
    for page in pages.paginate(Filters=[{"Name": f"tag:{TAG_KEY}", "Values": [stack]}]):
        rules += [r for r in page["SecurityGroupRules"] if not r.get("IsEgress")]
    return tuple(rules)


def _family_revisions(aws: Aws, family: str, status: str) -> list[str]:
    """The family's revisions of that status (ARNs only: one list call per 100)."""
    arns: list[str] = []
    for page in aws.client("ecs").get_paginator("list_task_definitions").paginate(familyPrefix=family, status=status):
        arns += [a for a in page["taskDefinitionArns"] if a.rsplit("/", 1)[-1].rsplit(":", 1)[0] == family]
    return arns


def _tagged_revisions(aws: Aws, stack: str) -> dict[str, dict[str, str]] | None:
    """The task-definition revisions carrying the stack's tag, by ARN, from the Resource Groups Tagging API (one
    call per 100, whatever the family's history); None when the caller may not use it (tag:GetResources)."""
    from botocore.exceptions import ClientError

    found: dict[str, dict[str, str]] = {}
    pages = aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
    try:
        for page in pages.paginate(
            ResourceTypeFilters=["ecs:task-definition"], TagFilters=[{"Key": TAG_KEY, "Values": [stack]}]
        ):
            for r in page.get("ResourceTagMappingList", []):
                found[str(r["ResourceARN"])] = tag_dict(r.get("Tags"))
    except ClientError as exc:
        if error_code(exc) in ("AccessDenied", "AccessDeniedException"):
            return None
        raise
    return found


def _revisions(aws: Aws, family: str, stack: str) -> tuple[tuple[tuple[str, dict[str, str]], ...], tuple[str, ...]]:
    """(ACTIVE revisions of the family with tags, INACTIVE revisions carrying the stack's tag).

    Without describing every revision: the tagging API names the stack's revisions, and the family's list calls
    say which of them still exist and in which status (the tagging API may still name a deleted resource). Only
    the ACTIVE revisions that are not the stack's are listed without tags. Without tag:GetResources, every
    revision is described for its tags, as before."""
    got = gather(
        {
            "active": lambda: _family_revisions(aws, family, "ACTIVE"),
            "inactive": lambda: _family_revisions(aws, family, "INACTIVE"),
            "tagged": lambda: _tagged_revisions(aws, stack),
        }
    )
    active: list[str] = got["active"]
    inactive: list[str] = got["inactive"]
    tagged: dict[str, dict[str, str]] | None = got["tagged"]
    if tagged is None:
        ecs = aws.client("ecs")

        def tags(arn: str) -> dict[str, str]:
            return tag_dict(ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"]).get("tags"))

        tagged = {
            a: t
            for a, t in gather({a: functools.partial(tags, a) for a in active + inactive}).items()
            if t.get(TAG_KEY) == stack
        }
    return (
        tuple((a, tagged.get(a, {})) for a in active),
        tuple(a for a in inactive if a in tagged),
    )


def observe_teardown(aws: Aws, cfg: Config) -> Inventory:
    first = gather(
        {
            "cluster": lambda: _cluster(aws, cfg.cluster.name),
            "services": lambda: maybe(lambda: _cluster_services(aws, cfg.cluster.name, cfg.service.name)) or (),
            "instances": lambda: _stack_instances(aws, cfg),
            "tasks": lambda: maybe(lambda: _cluster_task_groups(aws, cfg.cluster.name)) or (),
            "asg": lambda: _asg(aws, cfg.asg_name),
            "launch_template": lambda: _launch_template(aws, cfg.launch_template_name),
            "container_instances": lambda: maybe(lambda: cluster_instances(aws, cfg.cluster.name)) or (),
            "sg_rules": lambda: tagged_rules(aws, cfg.stack),
            "revisions": lambda: _revisions(aws, cfg.task.family, cfg.stack),
            "load_balancer": lambda: _load_balancer(aws, cfg.load_balancer.name),
            "target_group": lambda: _target_group(aws, cfg.load_balancer.target_group),
        }
    )
    members = [i["InstanceId"] for i in (first["asg"] or {}).get("Instances", [])]
    ours = {
        f"service:{s['serviceName']}" for s in first["services"] if tag_dict(s.get("tags")).get(TAG_KEY) == cfg.stack
    }
    return Inventory(
        stack=cfg.stack,
        cluster=first["cluster"],
        services=first["services"],
        asg=first["asg"],
        launch_template=first["launch_template"],
        container_instances=first["container_instances"],
        sg_rules=first["sg_rules"],
        revisions=first["revisions"][0],
        inactive_revisions=first["revisions"][1],
        load_balancer=first["load_balancer"],
        target_group=first["target_group"],
        own_instance_ids=tuple(sorted(set(first["instances"]) | set(members))),
        standalone_tasks=tuple(arn for arn, group in first["tasks"] if group not in ours),
    )


def _stack_instances(aws: Aws, cfg: Config) -> tuple[str, ...]:
    """EC2 instances (not terminated) tagged as the stack's: what the group launched, even once it is gone."""
    return tuple(str(i["InstanceId"]) for i in _live_instances(aws, f"tag:{TAG_KEY}", cfg.stack))


def _cluster_task_groups(aws: Aws, cluster: str) -> tuple[tuple[str, str], ...]:
    """(task ARN, group) of every task in the cluster that is meant to run."""
    tasks = service_tasks(aws, cluster, None)
    return tuple((str(t["taskArn"]), str(t.get("group") or "")) for t in tasks)


# --- doctor's reads beyond `up`'s ----------------------------------------------------------------------------


def _refused(exc: Exception) -> bool:
    code = error_code(exc)
    return code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation") or "NotAuthorized" in code


def instance_type_info(aws: Aws, instance_type: str) -> Json | None:
    """DescribeInstanceTypes for one type (vCPUs, memory); None when the region does not offer it."""
    from botocore.exceptions import ClientError

    try:
        found = aws.client("ec2").describe_instance_types(InstanceTypes=[instance_type])["InstanceTypes"]
    except ClientError as exc:
        if error_code(exc) in ("InvalidInstanceType", "InvalidParameterValue"):
            return None
        raise
    return found[0] if found else None


def short(arn: Any, missing: str = "none") -> str:
    """The last part of an ARN (ghost:3, a service name, a task id), or `missing`."""
    return str(arn).rsplit("/", 1)[-1] if arn else missing


def ci_resource(ci: Json, name: str, key: str = "remainingResources") -> int:
    """A container instance's CPU or MEMORY (integer resources) in `remainingResources` or `registeredResources`."""
    return next((int(r.get("integerValue", 0)) for r in ci.get(key, []) if r.get("name") == name), 0)


def ci_attribute(ci: Json, name: str) -> str | None:
    """A container instance's attribute (ecs.availability-zone, ecs.instance-type, ecs.ami-id, …), or None."""
    return next((str(a.get("value")) for a in ci.get("attributes", []) if a.get("name") == name), None)


def target_group_attributes(aws: Aws, tg_arn: str) -> dict[str, str]:
    resp = aws.client("elbv2").describe_target_group_attributes(TargetGroupArn=tg_arn)
    return {a["Key"]: str(a.get("Value", "")) for a in resp["Attributes"]}


def _role_policies(aws: Aws, role: str) -> tuple[str, ...]:
    arns: list[str] = []
    paginator = aws.client("iam").get_paginator("list_attached_role_policies")
    for page in paginator.paginate(RoleName=role):
        arns += [p["PolicyArn"] for p in page["AttachedPolicies"]]
    return tuple(arns)


def _instances_and_images(aws: Aws, ids: list[str], ami: str | None) -> tuple[tuple[Json, ...], dict[str, Json]]:
    ec2 = aws.client("ec2")
    instances: list[Json] = []
    for part in chunks(ids, 1000):
        for page in ec2.get_paginator("describe_instances").paginate(InstanceIds=part):
            instances += [i for r in page["Reservations"] for i in r["Instances"]]
    image_ids = sorted({str(i["ImageId"]) for i in instances if i.get("ImageId")} | ({ami} if ami else set()))
    images = maybe(lambda: ec2.describe_images(ImageIds=image_ids)["Images"]) if image_ids else []
    return tuple(instances), {str(img["ImageId"]): img for img in images or []}


def _role(aws: Aws, name: str) -> Json | None:
    resp = maybe(lambda: aws.client("iam").get_role(RoleName=name))
    return resp["Role"] if resp else None


def doctor_reads(aws: Aws, cfg: Config, obs: Observed) -> Observed:
    """What the audit reads beyond `up`'s snapshot, in one more concurrent round (each read needs an id from the
    first). IAM reads that AWS refuses (a deploy user may lack iam:Get*) are noted in `unread`, not raised."""
    from dataclasses import replace

    from botocore.exceptions import ClientError

    def tolerant(what: str, call: Callable[[], Any], default: Any) -> Callable[[], Any]:
        def run() -> Any:
            try:
                return call()
            except ClientError as exc:
                if _refused(exc):
                    return _Unread(f"{what}: {error_code(exc)}", default)
                raise

        return run

    calls: dict[str, Callable[[], Any]] = {
        "service_linked_role": tolerant("iam:GetRole AWSServiceRoleForECS", lambda: _role(aws, SLR_NAME), None),
    }
    if obs.target_group:
        arn = obs.target_group["TargetGroupArn"]
        calls["target_group_attributes"] = lambda: target_group_attributes(aws, arn)
    roles = [r["RoleName"] for r in (obs.instance_profile or {}).get("Roles", [])]
    if roles:
        calls["instance_role_policies"] = tolerant(
            f"iam:ListAttachedRolePolicies {roles[0]}", lambda: _role_policies(aws, roles[0]), None
        )
    ids = [ci["ec2InstanceId"] for ci in obs.container_instances if ci.get("ec2InstanceId")]
    calls["instances"] = lambda: _instances_and_images(aws, ids, obs.ami_id)
    svc_td = (obs.service or {}).get("taskDefinition") if obs.service_active else None
    if svc_td and svc_td != (obs.task_definition or {}).get("taskDefinitionArn"):
        calls["service_task_definition"] = lambda: maybe(
            lambda: aws.client("ecs").describe_task_definition(taskDefinition=svc_td)["taskDefinition"]
        )
    if cfg.service.role:
        role = cfg.service.role.rsplit("/", 1)[-1]
        calls["service_role"] = tolerant(f"iam:GetRole {role}", lambda: _role(aws, role), None)
    got = gather(calls)
    unread = tuple(v.what for v in got.values() if isinstance(v, _Unread))
    got = {k: (v.default if isinstance(v, _Unread) else v) for k, v in got.items()}
    ec2_instances, images = got["instances"]
    return replace(
        obs,
        target_group_attributes=got.get("target_group_attributes", {}),
        instance_role_policies=got.get("instance_role_policies"),
        ec2_instances=ec2_instances,
        images=images,
        service_task_definition=got.get("service_task_definition") or (obs.task_definition if svc_td else None),
        service_linked_role=got["service_linked_role"],
        service_role=got.get("service_role"),
        unread=unread,
    )


SLR_NAME = "AWSServiceRoleForECS"


@dataclass(frozen=True)
class _Unread:
    what: str
    default: Any
