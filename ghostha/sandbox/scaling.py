"""Auto Scaling as AWS runs it where moto does not: scaling activities, failed launches, slow terminations and
deletions, and the errors AWS gives while a group is busy.

- Every launch and termination is a scaling activity (DescribeScalingActivities, newest first). A launch is
  `InProgress` for `LAUNCH_SECONDS`, then `Successful`; the instance is `Pending` in the group meanwhile.
- A launch whose template names an AMI that does not exist, a `resolve:ssm:` parameter that does not exist, or
  an instance profile IAM does not know, creates no instance: a `Failed` activity with EC2's message. The group
  tries again after `RETRY_SECONDS`, doubling up to `RETRY_MAX_SECONDS` (an update of the group retries at once).
- A terminated instance (TerminateInstanceInAutoScalingGroup, ForceDelete) is `shutting-down` for
  `TERMINATE_SECONDS`, then `terminated`; its activity is `InProgress` until then. One terminated through EC2
  (moto: at once) leaves the group with a Successful terminating activity, and is replaced.
- DeleteAutoScalingGroup(ForceDelete=True) leaves the group `Status: "Delete in progress"` until its instances
  are terminated, then it is gone. Without ForceDelete, AWS refuses while activities are in progress
  (ScalingActivityInProgress) or instances remain (ResourceInUse).
- UpdateAutoScalingGroup and SetDesiredCapacity fail with ScalingActivityInProgress while an activity is in
  progress, and with a ValidationError on a group being deleted.

This module owns the activity records (on each group, `sim_activities`) and the request handlers it replaces;
the simulation (sim.py) moves them on with the clock, and hooks.py's launch hook records each launch here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from moto.autoscaling import responses as asg_responses
from moto.autoscaling.exceptions import AutoscalingClientError, ValidationError
from moto.autoscaling.models import AutoScalingBackend, FakeAutoScalingGroup
from moto.core.responses import ActionResult, EmptyResult
from moto.iam.models import iam_backends
from moto.moto_api._internal import mock_random
from moto.ssm.models import ssm_backends

from ghostha.sandbox.clock import SimClock
from ghostha.sandbox.hooks import replace_handlers

# An instance is InService about when it has booted, which is also when the sandbox's ECS agent registers it
# (sim.BOOT_SECONDS): so once the container instances are there, their launches have succeeded.
LAUNCH_SECONDS = 30.0
# EC2 gives a terminating instance's OS time to shut down; half a minute is typical for a small Linux instance.
TERMINATE_SECONDS = 30.0
# After a failed launch Auto Scaling tries again, backing off; the sandbox doubles from 30 s up to 5 minutes.
RETRY_SECONDS = 30.0
RETRY_MAX_SECONDS = 300.0
DELETING = "Delete in progress"
IN_PROGRESS = "InProgress"

Response = asg_responses.AutoScalingResponse
_original: dict[str, Any] = {}
CLOCK: SimClock | None = None


class ScalingActivityInProgressFault(AutoscalingClientError):
    code = "ScalingActivityInProgress"


class ResourceInUseFault(AutoscalingClientError):
    code = "ResourceInUse"


def clock() -> SimClock:
    if CLOCK is None:
        raise RuntimeError("the sandbox's Auto Scaling simulation is not installed")
    return CLOCK


def _stamp(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def activities(group: Any) -> list[dict[str, Any]]:
    """The group's activities, newest first."""
    acts: list[dict[str, Any]] = group.__dict__.setdefault("sim_activities", [])
    return acts


def in_progress(group: Any) -> dict[str, Any] | None:
    return next((a for a in activities(group) if a["StatusCode"] == IN_PROGRESS), None)


def record(group: Any, description: str, cause: str, instance: Any = None, **extra: Any) -> dict[str, Any]:
    """Add an activity (InProgress unless `extra` says otherwise) and return it."""
    now = clock().now()
    details = {}
    if instance is not None:
        details = {"Subnet ID": instance.subnet_id, "Availability Zone": instance.placement.zone}
    act: dict[str, Any] = {
        "ActivityId": str(mock_random.uuid4()),
        "AutoScalingGroupName": group.name,
        "AutoScalingGroupARN": group.arn,
        "Description": description,
        "Cause": cause,
        "StartTime": now,
        "EndTime": None,
        "StatusCode": IN_PROGRESS,
        "Progress": 30,
        "Details": json.dumps(details),
        "sim_instance": instance,
        "sim_started": clock().seconds(),
        **extra,
    }
    activities(group).insert(0, act)
    return act


def finish(act: dict[str, Any], status: str = "Successful") -> None:
    act.update(StatusCode=status, Progress=100, EndTime=clock().now())


def launch_cause(group: Any, live: int) -> str:
    return (
        f"At {_stamp(clock().now())} an instance was started in response to a difference between desired and "
        f"actual capacity, increasing the capacity from {live} to {group.desired_capacity}."
    )


def launch_problem(group: Any, data: dict[str, Any]) -> tuple[str | None, str | None]:
    """(resolved image id, None) for a launch EC2 would accept, else (None, StatusMessage) as AWS words it."""
    ec2 = group.autoscaling_backend.ec2_backend
    account, region = ec2.account_id, ec2.region_name
    image = str(data.get("ImageId") or "")
    if image.startswith("resolve:ssm:"):
        name = image.removeprefix("resolve:ssm:")
        param = ssm_backends[account][region].get_parameter(name)
        if param is None:
            return None, f"The SSM parameter {name} does not exist. Launching EC2 instance failed."
        image = str(param.value)
    if image not in ec2.amis:
        return None, f"The image id '[{image}]' does not exist. Launching EC2 instance failed."
    profile = data.get("IamInstanceProfile") or {}
    iam = iam_backends[account]["global"]
    known = {p.name for p in iam.get_instance_profiles()} | {p.arn for p in iam.get_instance_profiles()}
    for key, field in (("Name", "name"), ("Arn", "arn")):
        value = profile.get(key)
        if value and value not in known:
            return None, (
                f"Value ({value}) for parameter iamInstanceProfile.{field} is invalid. Invalid IAM Instance "
                f"Profile {key if key == 'Arn' else 'name'}. Launching EC2 instance failed."
            )
    return image, None


def launch_failed(group: Any, live: int, message: str) -> None:
    """Record a failed launch and when the group tries again."""
    act = record(
        group,
        f"Launching a new EC2 instance.  Status Reason: {message}",
        launch_cause(group, live),
        StatusMessage=message,
    )
    finish(act, "Failed")
    delay = getattr(group, "sim_retry_delay", 0.0) or RETRY_SECONDS
    group.sim_retry_at = clock().seconds() + delay
    group.sim_retry_delay = min(delay * 2, RETRY_MAX_SECONDS)


def may_launch(group: Any) -> bool:
    return getattr(group, "status", None) != DELETING and clock().seconds() >= getattr(group, "sim_retry_at", 0.0)


def launched(group: Any, instance: Any, live: int) -> None:
    group.sim_retry_at = 0.0
    group.sim_retry_delay = 0.0
    record(group, f"Launching a new EC2 instance: {instance.id}", launch_cause(group, live), instance)


def terminate(group: Any, state: Any, cause: str) -> dict[str, Any]:
    """Take an instance out of service: `shutting-down` now, `terminated` after TERMINATE_SECONDS."""
    inst = state.instance
    state.lifecycle_state = "Terminating"
    if inst.state in ("pending", "running"):
        inst._state.name, inst._state.code = "shutting-down", 32
    for act in activities(group):
        if act["StatusCode"] == IN_PROGRESS and act["sim_instance"] is inst:
            finish(act, "Cancelled")  # a launch cut short
    return record(group, f"Terminating EC2 instance: {inst.id}", cause, inst, Progress=50)


def advance(group: Any, now: float) -> None:
    """Move the group's activities on to `now`: launches succeed, terminations end, a deleted group goes."""
    ec2 = group.autoscaling_backend.ec2_backend
    for act in activities(group):
        if act["StatusCode"] != IN_PROGRESS or act["sim_instance"] is None:
            continue
        inst = act["sim_instance"]
        if act["Description"].startswith("Terminating"):
            if now - act["sim_started"] >= TERMINATE_SECONDS:
                if inst.state != "terminated":
                    ec2.terminate_instances([inst.id])
                group.instance_states = [s for s in group.instance_states if s.instance is not inst]
                finish(act)
        elif now - act["sim_started"] >= LAUNCH_SECONDS:
            for s in group.instance_states:
                if s.instance is inst and s.lifecycle_state == "Pending":
                    s.lifecycle_state = "InService"
            finish(act)
    if getattr(group, "status", None) == DELETING and not group.instance_states:
        group.autoscaling_backend.autoscaling_groups.pop(group.name, None)


def _group(self: Any) -> Any:
    name = self._get_param("AutoScalingGroupName")
    group = self.autoscaling_backend.autoscaling_groups.get(name)
    if group is None:
        raise ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup '{name}' not found")
    return group


def _not_busy(group: Any) -> None:
    if getattr(group, "status", None) == DELETING:
        raise ValidationError("The AutoScaling group may not be modified while it is pending delete")
    act = in_progress(group)
    if act is not None:
        raise ScalingActivityInProgressFault(
            f"Scaling activity {act['ActivityId']} is in progress and blocks this action."
        )


# --- request handlers ------------------------------------------------------------------------------------


def describe_scaling_activities(self: Any) -> Any:
    name = self._get_param("AutoScalingGroupName")
    ids = set(self._get_param("ActivityIds", []) or [])
    groups = self.autoscaling_backend.autoscaling_groups
    found = [g for g in groups.values() if not name or g.name == name]
    acts = sorted((a for g in found for a in activities(g)), key=lambda a: a["StartTime"], reverse=True)
    if ids:
        acts = [a for a in acts if a["ActivityId"] in ids]
    size = min(int(self._get_param("MaxRecords") or 100), 100)
    start = int(self._get_param("NextToken") or 0)
    page: dict[str, Any] = {"Activities": acts[start : start + size]}
    if start + size < len(acts):
        page["NextToken"] = str(start + size)
    return ActionResult(page)


def delete_auto_scaling_group(self: Any) -> Any:
    group = _group(self)
    if getattr(group, "status", None) == DELETING:
        return EmptyResult()
    if not self._get_bool_param("ForceDelete", False):
        if in_progress(group) is not None:
            raise ScalingActivityInProgressFault(
                "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group."
            )
        if group.instance_states:
            raise ResourceInUseFault(
                "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance "
                "request(s) still in the group."
            )
        return _original["delete_auto_scaling_group"](self)
    live = len(group.instance_states)
    group.status = DELETING
    group.min_size = group.max_size = group.desired_capacity = 0
    for state in list(group.instance_states):
        if state.lifecycle_state != "Terminating":
            terminate(
                group,
                state,
                f"At {_stamp(clock().now())} a user request deleted the AutoScalingGroup, shrinking the capacity "
                f"from {live} to 0.",
            )
    advance(group, clock().seconds())
    return EmptyResult()


def update_auto_scaling_group(self: Any) -> Any:
    group = _group(self)
    _not_busy(group)
    group.sim_retry_at = group.sim_retry_delay = 0.0  # a changed group tries to launch again at once
    return _original["update_auto_scaling_group"](self)


def set_desired_capacity(self: Any) -> Any:
    _not_busy(_group(self))
    return _original["set_desired_capacity"](self)


def terminate_instance_in_auto_scaling_group(self: Any) -> Any:
    instance_id = self._get_param("InstanceId")
    decrement = self._get_bool_param("ShouldDecrementDesiredCapacity", False)
    for group in self.autoscaling_backend.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id != instance_id or state.lifecycle_state == "Terminating":
                continue
            before = int(group.desired_capacity or 0)
            cause = (
                f"At {_stamp(clock().now())} instance {instance_id} was taken out of service in response to a "
                "user request"
            )
            if decrement:
                if before <= int(group.min_size or 0):
                    raise ValidationError(
                        f"Currently, desiredSize equals minSize ({group.min_size}). Terminating instance without "
                        "replacement will violate group's min size constraint. Either set "
                        "shouldDecrementDesiredCapacity flag to false or lower group's min size."
                    )
                group.desired_capacity = before - 1
                cause += f", shrinking the capacity from {before} to {before - 1}."
            else:
                cause += "."
            return ActionResult({"Activity": terminate(group, state, cause)})
    raise ValidationError(f"Instance Id not found - No managed instance found for instance ID: {instance_id}")


PATCHES = {
    "describe_scaling_activities": describe_scaling_activities,
    "delete_auto_scaling_group": delete_auto_scaling_group,
    "update_auto_scaling_group": update_auto_scaling_group,
    "set_desired_capacity": set_desired_capacity,
    "terminate_instance_in_auto_scaling_group": terminate_instance_in_auto_scaling_group,
}


def active_instances(self: Any) -> list[Any]:
    """What counts towards the desired capacity: instances launching or in service (moto: in service only)."""
    return [s for s in self.instance_states if s.lifecycle_state in ("Pending", "InService")]


def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
    """An instance terminated through EC2 leaves its group (and is replaced) with a terminating activity."""
    for group in self.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id in instance_ids and state.lifecycle_state != "Terminating":
                cause = (
                    f"At {_stamp(clock().now())} an instance was taken out of service in response to an EC2 health "
                    "check indicating it has been terminated or stopped."
                )
                finish(record(group, f"Terminating EC2 instance: {state.instance.id}", cause, state.instance))
    _original["notify_terminate_instances"](self, instance_ids)


def install(sim_clock: SimClock) -> None:
    """Patch moto's Auto Scaling handlers (idempotent); activities are stamped with `sim_clock`."""
    global CLOCK
    CLOCK = sim_clock
    replace_handlers(Response, PATCHES, _original)
    FakeAutoScalingGroup.active_instances = active_instances  # type: ignore[method-assign]
    replace_handlers(AutoScalingBackend, {"notify_terminate_instances": notify_terminate_instances}, _original)
