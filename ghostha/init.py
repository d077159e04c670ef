"""`ghostha init`: a commented config written from what the account already holds.

Starts from the names a user knows (the ALB, optionally the target group, the task family, the old service) and
finds the ids they do not: the ALB's VPC, subnets and security groups, the target group attached to it, the
instances' security group, the family's container and port, the instance profile. Only describe/list/get calls.
Every value carries a comment saying where it came from; what cannot be decided is written as `TODO` with the
candidates listed, so the config fails to load (or `up`'s preflight fails) until the user has chosen.

Nothing here prints: `discover` returns a Draft, `render_config` turns it into the file's text, `write` writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ghostha.aws import Aws
from ghostha.config import DEFAULT_AMI
from ghostha.errors import ConfigError, GhosthaError
from ghostha.observe import Json, maybe

TODO = "TODO"
DEFAULT_STACK = "ghost-ha"
DEFAULT_FAMILY = "ghost"


class InitError(ConfigError):
    """What init was told to start from does not exist or does not fit (exit 2, nothing written)."""


@dataclass(frozen=True)
class Entry:
    value: Any
    source: str  # where the value came from, written as its comment
    todo: str | None = None  # what the user must choose (with the candidates), when init could not


@dataclass
class Draft:
    """The config init would write: dotted key → entry, plus a few facts for the file's header."""

    entries: dict[str, Entry] = field(default_factory=dict)
    account: str | None = None
    region: str | None = None

    def set(self, key: str, value: Any, source: str, todo: str | None = None) -> None:
        self.entries[key] = Entry(value, source, todo)

    @property
    def todos(self) -> list[str]:
        return [f"{key}: {e.todo}" for key, e in self.entries.items() if e.todo]


# --- reading the account ------------------------------------------------------------------------------------


def _names(items: list[Json], key: str) -> str:
    names = [str(i[key]) for i in items]
    return ", ".join(names[:20]) + (f" (+{len(names) - 20} more)" if len(names) > 20 else "") if names else "none"


def _load_balancer(aws: Aws, name: str | None, region: str | None) -> tuple[Json, str]:
    elbv2 = aws.client("elbv2")
    if name:
        resp = maybe(lambda: elbv2.describe_load_balancers(Names=[name]))
        if resp and resp["LoadBalancers"]:
            lb: Json = resp["LoadBalancers"][0]
            return lb, f"--load-balancer {name}"
    everything: list[Json] = []
    for page in elbv2.get_paginator("describe_load_balancers").paginate():
        everything += page["LoadBalancers"]
    albs = [lb for lb in everything if lb.get("Type") == "application"]
    if name:
        raise InitError(
            f"load balancer {name} not found in {region}",
            hint=f"application load balancers in {region}: {_names(albs, 'LoadBalancerName')}",
        )
    if len(albs) == 1:
        return albs[0], f"the only application load balancer in {region}"
    if not albs:
        raise InitError(
            f"no application load balancer in {region}",
            hint="create one (with a listener forwarding to a target group of type instance), or check --region",
        )
    raise InitError(
        f"{len(albs)} application load balancers in {region}: which one fronts the blog?",
        hint=f"pass --load-balancer NAME, one of: {_names(albs, 'LoadBalancerName')}",
    )


def _target_group(aws: Aws, lb: Json, name: str | None, service_tg: str | None) -> tuple[Json | None, str, str | None]:
    """(target group or None, source, todo)."""
    elbv2 = aws.client("elbv2")
    lb_name = lb["LoadBalancerName"]
    attached: list[Json] = elbv2.describe_target_groups(LoadBalancerArn=lb["LoadBalancerArn"])["TargetGroups"]
    if name:
        resp = maybe(lambda: elbv2.describe_target_groups(Names=[name]))
        if not resp or not resp["TargetGroups"]:
            raise InitError(
                f"target group {name} not found",
                hint=f"target groups attached to {lb_name}: {_names(attached, 'TargetGroupName')}",
            )
        tg: Json = resp["TargetGroups"][0]
        if lb["LoadBalancerArn"] not in tg.get("LoadBalancerArns", []):
            raise InitError(
                f"target group {name} is not attached to load balancer {lb_name} (no listener forwards to it)",
                hint=f"add a listener rule forwarding to it, or pass one of: {_names(attached, 'TargetGroupName')}",
            )
        return tg, f"--target-group {name}, attached to {lb_name}", None
    if service_tg:
        for tg in attached:
            if tg["TargetGroupArn"] == service_tg:
                return tg, f"the old service's target group, attached to {lb_name}", None
    if len(attached) == 1:
        return attached[0], f"the only target group attached to {lb_name}", None
    if not attached:
        raise InitError(
            f"no target group is attached to load balancer {lb_name}",
            hint="create a target group of type instance and a listener of the ALB forwarding to it",
        )
    todo = f"choose the blog's target group on {lb_name}: " + ", ".join(
        f"{tg['TargetGroupName']} (port {tg.get('Port')}, type {tg.get('TargetType')})" for tg in attached
    )
    return None, f"{len(attached)} target groups are attached to {lb_name}", todo


@dataclass(frozen=True)
class OldService:
    """What `--from-service CLUSTER/SERVICE` tells: the service, and the EC2 instances its tasks run on."""

    label: str
    service: Json
    instances: tuple[Json, ...]
    instances_source: str


def _old_service(aws: Aws, spec: str) -> OldService:
    cluster, _, name = spec.partition("/")
    if not cluster or not name:
        raise InitError(f"--from-service {spec!r} must be CLUSTER/SERVICE", hint="e.g. --from-service default/ghost")
    ecs = aws.client("ecs")
    resp = maybe(lambda: ecs.describe_services(cluster=cluster, services=[name]))
    services = [s for s in (resp or {}).get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise InitError(f"service {name} not found in cluster {cluster}", hint="check --from-service CLUSTER/SERVICE")
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=name):
        arns += page["taskArns"]
    ci_arns: set[str] = set()
    for i in range(0, len(arns), 100):
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns[i : i + 100])["tasks"]
        ci_arns |= {t["containerInstanceArn"] for t in tasks if t.get("containerInstanceArn")}
    source = f"the instances running {spec}'s tasks"
    if not ci_arns:  # no task running: the cluster's instances are the best witness left
        for page in ecs.get_paginator("list_container_instances").paginate(cluster=cluster):
            ci_arns |= set(page["containerInstanceArns"])
        source = f"the instances of cluster {cluster}"
    ids: list[str] = []
    ci_list = sorted(ci_arns)
    for i in range(0, len(ci_list), 100):
        described = ecs.describe_container_instances(cluster=cluster, containerInstances=ci_list[i : i + 100])
        ids += [ci["ec2InstanceId"] for ci in described["containerInstances"]]
    instances: list[Json] = []
    if ids:
        for page in aws.client("ec2").get_paginator("describe_instances").paginate(InstanceIds=ids):
            instances += [inst for r in page["Reservations"] for inst in r["Instances"]]
    return OldService(spec, services[0], tuple(instances), source)


def _admits(group: Json, sources: set[str]) -> bool:
    return any(
        pair.get("GroupId") in sources for perm in group.get("IpPermissions", []) for pair in perm["UserIdGroupPairs"]
    )


def _instance_security_group(
    aws: Aws, vpc: str, alb_groups: list[str], old: OldService | None
) -> tuple[str, str, str | None]:
    """(value, source, todo) for network.security_group."""
    groups: list[Json] = []
    for page in (
        aws.client("ec2")
        .get_paginator("describe_security_groups")
        .paginate(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    ):
        groups += page["SecurityGroups"]
    by_id = {g["GroupId"]: g for g in groups}
    alb = set(alb_groups)
    alb_text = ", ".join(alb_groups) or "none"

    def choose(gids: list[str], source: str, among: str = "") -> tuple[str, str, str | None]:
        listed = ", ".join(f"{g} ({by_id[g].get('GroupName', '')})" for g in gids)
        return TODO, source, f"choose the instances' security group{among}: {listed}"

    if old is not None and old.instances:
        used = sorted({g["GroupId"] for inst in old.instances for g in inst.get("SecurityGroups", [])} & set(by_id))
        admitting = [gid for gid in used if _admits(by_id[gid], alb)]
        if len(used) == 1:
            return used[0], f"used by {old.instances_source}", None
        if len(admitting) == 1:
            return admitting[0], f"used by {old.instances_source}; admits the ALB's group {alb_text}", None
        if used:
            return choose(used, f"{old.instances_source} use {len(used)} groups", " among the old instances' ones")
    candidates = sorted(gid for gid, g in by_id.items() if gid not in alb and _admits(g, alb))
    if len(candidates) == 1:
        return candidates[0], f"in {vpc}, its ingress admits the ALB's security group {alb_text}", None
    if candidates:
        return choose(candidates, f"{len(candidates)} groups in {vpc} admit the ALB's security group {alb_text}")
    return (
        TODO,
        f"no security group in {vpc} admits the ALB's security group {alb_text}",
        f"create a security group in {vpc} for the instances (ghostha adds the rule admitting the ALB), "
        "and put its id here",
    )


def _family(aws: Aws, name: str | None, old: OldService | None) -> tuple[Json | None, str, str | None]:
    """(latest ACTIVE revision or None, source, todo)."""
    ecs = aws.client("ecs")

    def latest(family: str) -> Json | None:
        resp = maybe(lambda: ecs.describe_task_definition(taskDefinition=family))
        return resp["taskDefinition"] if resp else None

    def families() -> list[str]:
        out: list[str] = []
        for page in ecs.get_paginator("list_task_definition_families").paginate(status="ACTIVE"):
            out += page["families"]
        return out

    if name:
        td = latest(name)
        if td is None:
            raise InitError(
                f"task definition family {name} has no ACTIVE revision",
                hint="families with ACTIVE revisions: " + (", ".join(families()[:20]) or "none"),
            )
        return td, f"--family {name}, its latest ACTIVE revision {td['revision']}", None
    if old is not None:
        family = str(old.service["taskDefinition"]).rsplit("/", 1)[-1].rsplit(":", 1)[0]
        td = latest(family)
        if td is not None:
            return td, f"{old.label}'s family, its latest ACTIVE revision {td['revision']}", None
    td = latest(DEFAULT_FAMILY)
    if td is not None:
        return td, f"ghostha's default family, its latest ACTIVE revision {td['revision']}", None
    found = families()
    if len(found) == 1:
        td = latest(found[0])
        if td is not None:
            return td, f"the only family with ACTIVE revisions, its latest revision {td['revision']}", None
    listed = ", ".join(found[:20]) or "none"
    return None, "no family named", f"choose the blog's task definition family (or pass --family): {listed}"


def _container(td: Json, tg: Json | None, old: OldService | None) -> tuple[tuple[str, int] | None, str, str | None]:
    """((container, container port) or None, source, todo): the mapping that carries the target group's traffic."""
    where = f"revision {td['family']}:{td['revision']}"
    containers = {c["name"]: c for c in td.get("containerDefinitions", [])}
    if old is not None and tg is not None:
        for lb in old.service.get("loadBalancers", []):
            if lb.get("targetGroupArn") == tg["TargetGroupArn"] and lb.get("containerName") in containers:
                pair = (str(lb["containerName"]), int(lb["containerPort"]))
                return pair, f"{old.label} sends {tg['TargetGroupName']}'s traffic to it", None
    mappings = [
        (c["name"], int(m["containerPort"]), m.get("hostPort"))
        for c in containers.values()
        for m in c.get("portMappings", [])
        if m.get("containerPort")
    ]
    if tg is not None:
        matching = [(n, p) for n, p, host in mappings if host == tg.get("Port")]
        if len(matching) == 1:
            return matching[0], f"{where} maps host port {tg['Port']} (the target group's port) to it today", None
    if len(mappings) == 1:
        name, port, _ = mappings[0]
        return (name, port), f"the only port mapping of {where}", None
    listed = ", ".join(f"{n}:{p} (host port {h})" for n, p, h in mappings) or "none"
    todo = f"choose the container and port Ghost serves on: {listed}"
    return None, f"{where} has {len(mappings)} port mappings", todo


def _instance_profile(aws: Aws, old: OldService | None) -> tuple[str, str, str | None]:
    iam = aws.client("iam")
    if maybe(lambda: iam.get_instance_profile(InstanceProfileName="ecsInstanceRole")):
        return "ecsInstanceRole", "the instance profile ecsInstanceRole exists in the account", None
    if old is not None:
        arns = sorted({str(i["IamInstanceProfile"]["Arn"]) for i in old.instances if i.get("IamInstanceProfile")})
        names = [a.rsplit("/", 1)[-1] for a in arns]
        if len(names) == 1:
            return names[0], f"the instance profile of {old.instances_source}", None
        if names:
            return TODO, f"{old.instances_source} use {len(names)} profiles", "choose one of: " + ", ".join(names)
    return (
        TODO,
        "no instance profile ecsInstanceRole in the account",
        (
            "create ecsInstanceRole (a role trusting ec2.amazonaws.com with AmazonEC2ContainerServiceforEC2Role) "
            "or name an existing instance profile"
        ),
    )


def _old_instance_value(old: OldService | None, key: str) -> str | None:
    """The old instances' instance type or key pair, when they agree on one."""
    if old is None:
        return None
    values = {str(i[key]) for i in old.instances if i.get(key)}
    return values.pop() if len(values) == 1 else None


def discover(
    aws: Aws,
    load_balancer: str | None = None,
    target_group: str | None = None,
    family: str | None = None,
    from_service: str | None = None,
    stack: str = DEFAULT_STACK,
) -> Draft:
    """Read the account (describe/list/get calls only) and draft the config."""
    draft = Draft(region=aws.region_name)
    ident = maybe(lambda: aws.client("sts").get_caller_identity())
    draft.account = str(ident["Account"]) if ident else None
    old = _old_service(aws, from_service) if from_service else None

    lb, lb_source = _load_balancer(aws, load_balancer, draft.region)
    lb_name = lb["LoadBalancerName"]
    zones = sorted(lb.get("AvailabilityZones", []), key=lambda z: z["ZoneName"])
    alb_groups = list(lb.get("SecurityGroups", []))
    service_tg = next((x.get("targetGroupArn") for x in old.service.get("loadBalancers", [])), None) if old else None
    tg, tg_source, tg_todo = _target_group(aws, lb, target_group, service_tg)
    sg, sg_source, sg_todo = _instance_security_group(aws, lb["VpcId"], alb_groups, old)
    td, td_source, td_todo = _family(aws, family, old)
    profile, profile_source, profile_todo = _instance_profile(aws, old)

    draft.set("stack", stack, "--stack" if stack != DEFAULT_STACK else "ghostha's default stack name")
    draft.set("region", draft.region, "the region init read" + (f" (account {draft.account})" if draft.account else ""))
    endpoint = aws.endpoint
    endpoint_source = "--endpoint-url" if aws.endpoint_url else "$AWS_ENDPOINT_URL" if endpoint else "AWS itself"
    draft.set("endpoint_url", endpoint, endpoint_source)
    azs = ", ".join(z["ZoneName"] for z in zones)
    draft.set(
        "network.subnets",
        [z["SubnetId"] for z in zones],
        f"{lb_name}'s subnets, one per AZ ({azs}) in {lb['VpcId']}: the instances go in the same AZs",
    )
    draft.set("network.security_group", sg, sg_source, sg_todo)
    draft.set("cluster.name", stack, "the stack's name")
    draft.set("cluster.instance_count", max(2, len(zones)), f"one per AZ of {lb_name}, at least two")
    itype = _old_instance_value(old, "InstanceType")
    draft.set(
        "cluster.instance_type", itype or "t3.small", f"as {old.instances_source}" if itype and old else "the default"
    )
    draft.set("cluster.ami", DEFAULT_AMI, "the ECS-optimized Amazon Linux 2023 AMI, resolved at each launch")
    draft.set("cluster.instance_profile", profile, profile_source, profile_todo)
    key = _old_instance_value(old, "KeyName")
    draft.set("cluster.key_name", key, f"as {old.instances_source}" if key and old else "no SSH key pair")
    if td is None:
        draft.set("task.family", TODO, td_source, td_todo)
        draft.set("task.container", TODO, "the family decides", "choose the family first")
        draft.set("task.container_port", TODO, "the family decides", "choose the family first")
    else:
        draft.set("task.family", td["family"], td_source)
        pair, c_source, c_todo = _container(td, tg, old)
        draft.set("task.container", pair[0] if pair else TODO, c_source, c_todo)
        draft.set("task.container_port", pair[1] if pair else TODO, "that mapping's container port", c_todo)
    draft.set("service.name", "ghost", "ghostha's default service name (in the stack's own cluster)")
    draft.set("service.desired_count", 6, "the story's six tasks, spread over the instances")
    draft.set("service.role", None, "ECS's service-linked role")
    draft.set("service.health_check_grace_seconds", 120, "the default")
    draft.set("service.minimum_healthy_percent", 50, "the default")
    draft.set("service.maximum_percent", 200, "the default")
    draft.set("load_balancer.name", lb_name, lb_source)
    draft.set("load_balancer.target_group", tg["TargetGroupName"] if tg else TODO, tg_source, tg_todo)
    return draft


# --- the file -----------------------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20).strip()
    return text.removesuffix("...").strip()


_COMMENT_COLUMN = 40


def render_config(draft: Draft, command: str) -> str:
    """The config file's text: the values in config.example.yaml's order, each with where it came from."""
    account = f"account {draft.account}" if draft.account else "the account"
    lines = [
        f"# ghostha config written by `{command}` from {account} in {draft.region}.",
        "# Each value says where it came from; see config.example.yaml for every key.",
        "# Left out, as no account can tell them: poll_seconds (default 5) and site_url (default http:// + the",
        "# ALB's DNS name; set it to your blog's address). A stand-in endpoint such as the sandbox advises both.",
    ]
    if draft.todos:
        lines.append(f"# {len(draft.todos)} value(s) marked TODO need your choice before `ghostha up`.")
    section = None
    for key, entry in draft.entries.items():
        parent, _, leaf = key.rpartition(".")
        indent = "  " if parent else ""
        if parent and parent != section:
            lines.append(f"{parent}:")
        section = parent or None
        if entry.todo:
            lines.append(f"{indent}# TODO: {entry.todo}")
        text = f"{indent}{leaf}: {_scalar(entry.value)}"
        if len(text) > _COMMENT_COLUMN - 2:  # a long value gets its comment on the line above
            lines += [f"{indent}# {entry.source}", text]
        else:
            lines.append(f"{text:<{_COMMENT_COLUMN}}# {entry.source}")
    return "\n".join(lines) + "\n"


def check_stack(stack: str) -> None:
    """The stack name is checked as the config checks it, before anything is read."""
    from ghostha.config import parse

    parse({"stack": stack, "network": {"subnets": ["subnet-0"], "security_group": "sg-0"}}, "--stack")


def check(draft: Draft, text: str, source: str) -> None:
    """A draft without TODOs must load as a config: a value init got wrong is caught before it is written."""
    if draft.todos:
        return
    from ghostha.config import parse

    parse(yaml.safe_load(text), source)


def write(path: Path, text: str, force: bool) -> None:
    """Write the file; an existing one only with `force`."""
    try:
        with path.open("w" if force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise InitError(
            f"{path} already exists; init never overwrites a file",
            hint="pass --force to replace it, or --output PATH to write elsewhere",
        ) from None
    except OSError as exc:
        raise GhosthaError(f"cannot write {path}: {exc.strerror}") from None
