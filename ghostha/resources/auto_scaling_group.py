"""The Auto Scaling group `<stack>-ecs`: `instance_count` container instances over the subnets, launched from the
launch template's `$Latest` version; sizes and subnets change in place.

Instances launched from an older template spec (their `ghostha:instance-spec` tag differs) are replaced one at a
time without losing capacity: the group grows by one, the newcomer registers, the old instance's container
instance is set DRAINING so ECS moves its tasks (within the service's minimum healthy / maximum percent), and
once the service is whole and healthy again the old instance is terminated with the group shrinking back. This is
ghostha's own rolling replacement rather than `StartInstanceRefresh`: an instance refresh knows nothing of ECS,
so it would terminate an instance while its tasks still serve traffic unless lifecycle hooks drain it, and it
replaces by shrinking capacity first (MinHealthyPercentage) where two instances leave no room for that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ghostha.config import TAG_KEY, Config
from ghostha.errors import AwsError, from_boto
from ghostha.observe import Inventory, Json, Observed, cluster_instances, tag_dict
from ghostha.resources import launch_template
from ghostha.resources.base import HINT, Change, Context, Item, Step, diff_fields

KEYS = ("cluster.instance_count", "network.subnets")
DELETING = "Delete in progress"


@dataclass(frozen=True)
class GroupSpec:
    min_size: int
    max_size: int
    desired_capacity: int
    subnets: tuple[str, ...]


LABELS = {
    "min_size": "min size",
    "max_size": "max size",
    "desired_capacity": "desired capacity",
    "subnets": "subnets",
}


def desired(cfg: Config) -> GroupSpec:
    n = cfg.cluster.instance_count
    return GroupSpec(n, n, n, tuple(sorted(cfg.network.subnets)))


def actual(obs: Observed) -> GroupSpec | None:
    g = obs.asg
    if g is None or g.get("Status") == DELETING:
        return None
    subnets = tuple(sorted(s for s in str(g.get("VPCZoneIdentifier") or "").split(",") if s))
    return GroupSpec(int(g["MinSize"]), int(g["MaxSize"]), int(g["DesiredCapacity"]), subnets)


def diff(have: GroupSpec, want: GroupSpec) -> list[Change]:
    return diff_fields(asdict(have), asdict(want), LABELS, frozenset())


def outdated(cfg: Config, obs: Observed) -> list[str]:
    """The group's live instances not launched from the wanted template spec, oldest first."""
    digest = launch_template.desired(cfg).digest
    live = [i for i in obs.instances if (i.get("State") or {}).get("Name") in ("pending", "running")]
    live.sort(key=lambda i: str(i.get("LaunchTime", "")))
    return [str(i["InstanceId"]) for i in live if tag_dict(i.get("Tags")).get(launch_template.SPEC_TAG) != digest]


def plan(cfg: Config, obs: Observed, template_changes: list[Change]) -> tuple[list[Step], list[Step]]:
    """(steps before the instances are waited for, the rolling replacement to run once the service is healthy)."""
    name, n = cfg.asg_name, cfg.cluster.instance_count
    steps: list[Step] = []
    if obs.asg is not None and obs.asg.get("Status") == DELETING:
        steps.append(
            Step("wait-asg-gone", f"Auto Scaling group {name}", "its deletion to finish", run=_wait_gone(name))
        )
    have, want = actual(obs), desired(cfg)
    if have is None:
        steps.append(
            Step(
                "create-auto-scaling-group",
                f"Auto Scaling group {name}",
                f"{n} instances over {', '.join(cfg.network.subnets)}",
                "autoscaling",
                "create_auto_scaling_group",
                {
                    "AutoScalingGroupName": name,
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
                            "ResourceId": name,
                            "ResourceType": "auto-scaling-group",
                        }
                    ],
                },
            )
        )
    elif changes := diff(have, want):
        steps.append(
            Step(
                "update-auto-scaling-group",
                f"Auto Scaling group {name}",
                "; ".join(str(c) for c in changes),
                "autoscaling",
                "update_auto_scaling_group",
                {
                    "AutoScalingGroupName": name,
                    "MinSize": n,
                    "MaxSize": n,
                    "DesiredCapacity": n,
                    "VPCZoneIdentifier": ",".join(cfg.network.subnets),
                },
                changes=tuple(str(c) for c in changes),
                retry_codes=("ScalingActivityInProgress",),
            )
        )
    steps.append(
        Step(
            "wait-instances",
            f"{n} container instances in cluster {cfg.cluster.name}",
            "ACTIVE, agent connected",
            run=wait_instances_step,
        )
    )
    old = [] if have is None else outdated(cfg, obs)
    roll: list[Step] = []
    if old:
        why = "; ".join(str(c) for c in template_changes) or "launched from an older template version"
        roll.append(
            Step(
                "replace-instances",
                f"{len(old)} instances of {name}",
                f"one at a time, keeping the service whole: {', '.join(old)}",
                changes=(why,),
                run=lambda ctx: replace_instances(ctx, old),
                changes_aws=True,
            )
        )
    return steps, roll


# --- waits and the rolling replacement ----------------------------------------------------------------------


def failed_launch(ctx: Context, since: datetime | None) -> None:
    """Raise at once when the group's newest scaling activity since `since` failed (only the activities say why
    an instance never came: a bad instance profile, a missing AMI, no capacity in the AZ)."""
    auto = ctx.aws.client("autoscaling")
    acts = auto.describe_scaling_activities(AutoScalingGroupName=ctx.cfg.asg_name, MaxRecords=10).get("Activities")
    for act in acts or []:
        start = act.get("StartTime")
        if since is not None and isinstance(start, datetime) and start < since:
            break
        if act.get("StatusCode") in ("Failed", "Cancelled"):
            message = str(act.get("StatusMessage") or act.get("Description") or "no reason given")
            raise AwsError(
                f"Auto Scaling group {ctx.cfg.asg_name} could not launch an instance: {message}",
                hint=_launch_hint(message),
            )
        if act.get("StatusCode") == "Successful":
            break  # the newest result is a success: older failures are history


def _launch_hint(message: str) -> str:
    if "Instance Profile" in message:
        return "fix cluster.instance_profile (it must exist and hold a role EC2 can assume), then `ghostha up`"
    if "image id" in message.lower() or "AMI" in message:
        return "fix cluster.ami (an AMI id of this region, or an SSM parameter that resolves to one), then `ghostha up`"
    return "fix the cause above in the config or the account, then run `ghostha up` again"


def wait_instances_step(ctx: Context) -> str:
    from ghostha.waiting import wait_instances

    found = wait_instances(ctx.aws, ctx.cfg, ctx.deadline, ctx.progress, lambda: failed_launch(ctx, ctx.since))
    return f"{len(found)} registered"


def _group(ctx: Context) -> Json | None:
    auto = ctx.aws.client("autoscaling")
    groups = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[ctx.cfg.asg_name])["AutoScalingGroups"]
    return groups[0] if groups else None


def _wait_gone(name: str) -> Callable[[Context], str]:
    def run(ctx: Context) -> str:
        from ghostha.waiting import wait_for

        def left() -> str | None:
            auto = ctx.aws.client("autoscaling")
            groups = auto.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
            if not groups:
                return None
            return (
                f"group {name} ({groups[0].get('Status') or 'active'}, {len(groups[0].get('Instances', []))} instances)"
            )

        wait_for(ctx.deadline, ctx.progress, f"Auto Scaling group {name} to go", left, HINT)
        return "gone"

    return run


def _call_retrying(ctx: Context, what: str, call: Any) -> None:
    """An Auto Scaling call retried while a scaling activity is in progress."""
    from botocore.exceptions import ClientError

    from ghostha.errors import error_code
    from ghostha.waiting import wait_for

    def attempt() -> str | None:
        try:
            call()
        except ClientError as exc:
            if error_code(exc) == "ScalingActivityInProgress":
                return "a scaling activity is in progress"
            raise from_boto(exc) from None
        return None

    wait_for(ctx.deadline, ctx.progress, what, attempt, "run `ghostha up` again: it resumes the replacement")


def replace_instances(ctx: Context, old: list[str]) -> str:
    cfg, auto = ctx.cfg, ctx.aws.client("autoscaling")
    n = cfg.cluster.instance_count
    _call_retrying(
        ctx,
        f"room for one more instance in {cfg.asg_name}",
        lambda: auto.update_auto_scaling_group(AutoScalingGroupName=cfg.asg_name, MaxSize=n + 1),
    )
    for k, instance_id in enumerate(old, 1):
        ctx.progress.event(f"replacing instance {instance_id} ({k} of {len(old)})")
        _replace_one(ctx, instance_id)
    _call_retrying(
        ctx,
        f"{cfg.asg_name} back to {n} instances",
        lambda: auto.update_auto_scaling_group(
            AutoScalingGroupName=cfg.asg_name, MinSize=n, MaxSize=n, DesiredCapacity=n
        ),
    )
    return f"{len(old)} replaced"


def _replace_one(ctx: Context, instance_id: str) -> None:
    """Grow by one, let the newcomer register, drain the old instance, then terminate it (the group shrinks)."""
    from ghostha.waiting import service_whole, wait_for

    cfg, aws = ctx.cfg, ctx.aws
    auto, ecs = aws.client("autoscaling"), aws.client("ecs")
    n = cfg.cluster.instance_count
    hint = "run `ghostha up` again: it resumes the replacement"
    group = _group(ctx) or {}
    if instance_id not in {i["InstanceId"] for i in group.get("Instances", [])}:
        return
    if int(group.get("DesiredCapacity", n)) < n + 1:
        _call_retrying(
            ctx,
            f"a new instance in {cfg.asg_name}",
            lambda: auto.set_desired_capacity(AutoScalingGroupName=cfg.asg_name, DesiredCapacity=n + 1),
        )

    def newcomer_registered() -> str | None:
        failed_launch(ctx, ctx.since)
        active = [ci for ci in cluster_instances(aws, cfg.cluster.name) if ci.get("status") == "ACTIVE"]
        return None if len(active) >= n + 1 else f"{len(active)} of {n + 1} container instances registered"

    wait_for(ctx.deadline, ctx.progress, "the new instance to register", newcomer_registered, hint)
    ci = next((c for c in cluster_instances(aws, cfg.cluster.name) if c["ec2InstanceId"] == instance_id), None)
    if ci is not None and ci.get("status") != "DRAINING":
        ecs.update_container_instances_state(
            cluster=cfg.cluster.name, containerInstances=[ci["containerInstanceArn"]], status="DRAINING"
        )

    def drained() -> str | None:
        if ci is not None:
            left = ecs.list_tasks(cluster=cfg.cluster.name, containerInstance=ci["containerInstanceArn"])
            if left["taskArns"]:
                return f"{len(left['taskArns'])} tasks still on {instance_id}"
        return service_whole(aws, cfg, ctx.deadline.sleep)

    wait_for(ctx.deadline, ctx.progress, f"the tasks of {instance_id} to run elsewhere", drained, hint)
    _call_retrying(
        ctx,
        f"terminating {instance_id}",
        lambda: auto.terminate_instance_in_auto_scaling_group(
            InstanceId=instance_id, ShouldDecrementDesiredCapacity=True
        ),
    )

    def gone() -> str | None:
        if any(i["InstanceId"] == instance_id for i in (_group(ctx) or {}).get("Instances", [])):
            return f"{instance_id} still in the group"
        if any(c["ec2InstanceId"] == instance_id for c in cluster_instances(aws, cfg.cluster.name)):
            return f"{instance_id} still registered"
        return None

    wait_for(ctx.deadline, ctx.progress, f"{instance_id} to terminate", gone, hint)


# --- teardown -------------------------------------------------------------------------------------------------


def teardown(cfg: Config, inv: Inventory, keep: str | None) -> tuple[list[Item], list[Step]]:
    g = inv.asg
    if g is None:
        return [], []
    name = g["AutoScalingGroupName"]
    if not inv.owned(g.get("Tags")):
        return [Item("Auto Scaling group", name, "leave", "not tagged as this stack's")], []
    if keep:
        return [Item("Auto Scaling group", name, "leave", keep)], []
    n = len(g.get("Instances", []))
    wait = Step("wait-asg-gone", f"Auto Scaling group {name}", "gone", run=_wait_gone(name))
    if g.get("Status") == DELETING:
        return [Item("Auto Scaling group", name, "delete", f"already being deleted ({n} instances)")], [wait]
    return [Item("Auto Scaling group", name, "delete", f"and its {n} instances")], [
        Step(
            "delete-auto-scaling-group",
            f"Auto Scaling group {name}",
            "terminating its instances",
            "autoscaling",
            "delete_auto_scaling_group",
            {"AutoScalingGroupName": name, "ForceDelete": True},
            retry_codes=("ScalingActivityInProgress",),
        ),
        wait,
    ]


def deregister_instances(cfg: Config, inv: Inventory, keep: str | None) -> tuple[list[Item], list[Step]]:
    """The container instances of the group's own instances that are still registered (never others')."""
    if keep or inv.cluster is None or not inv.owned(inv.cluster.get("tags")):
        return [], []
    own = set(inv.own_instance_ids)
    mine = [ci for ci in inv.container_instances if ci.get("ec2InstanceId") in own]
    why = f"{len(mine)} of the group's instances; those still registered once the group is gone are deregistered"
    items = [Item("container instances", cfg.cluster.name, "delete", why)] if mine else []

    def run(ctx: Context) -> str:
        ecs = ctx.aws.client("ecs")
        done = 0
        for ci in cluster_instances(ctx.aws, cfg.cluster.name):
            if ci.get("ec2InstanceId") in own:
                ecs.deregister_container_instance(
                    cluster=cfg.cluster.name, containerInstance=ci["containerInstanceArn"], force=True
                )
                done += 1
        return f"{done} deregistered" if done else "none left registered"

    step = Step(
        "deregister-container-instances",
        f"container instances of {cfg.asg_name}",
        "those of the group's instances still registered",
        run=run,
        changes_aws=True,
    )
    return items, [step]
