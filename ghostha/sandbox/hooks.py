"""Where the sandbox reaches into moto's internals, and the check that those internals are still there.

moto models a target group's targets by instance id alone, so `(i-1, 32769)` replaces `(i-1, 32768)`, and every
target is `healthy` the instant it is registered. The Auto Scaling group puts every instance in its first subnet,
drops the launch template's instance profile and metadata options, launches a `resolve:ssm:` image id as the
literal string, and records no scaling activity. ECS tasks drift one state towards STOPPED each time they are
described. The patches below fix exactly these; the simulation (sim.py) drives the rest through moto's backends.

Auto Scaling's own request handlers are replaced in scaling.py (activities, deletion, busy-group errors); the
launch hook below records each launch there, resolves `resolve:ssm:` image ids and refuses what EC2 refuses.

Everything in moto that the sandbox touches is listed in `REQUIRED`: `check()` verifies it, so that a moto
upgrade that moves it fails loudly with a message instead of silently breaking the simulation.
"""

from __future__ import annotations

import contextlib
import inspect
from importlib.metadata import version
from typing import Any

try:
    from moto.autoscaling import exceptions as asg_exceptions
    from moto.autoscaling import models as asg_models
    from moto.autoscaling import responses as asg_responses
    from moto.autoscaling.models import FakeAutoScalingGroup
    from moto.ec2.models import amis as ec2_amis
    from moto.ec2.models import ec2_backends
    from moto.ec2.models import instances as ec2_instances
    from moto.ec2.models import launch_templates as ec2_launch_templates
    from moto.ec2.models.instance_types import InstanceTypeOfferingBackend
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses
    from moto.elbv2 import models as elbv2_models
    from moto.iam import models as iam_models
    from moto.moto_api import state_manager
    from moto.ssm import models as ssm_models
except ImportError as exc:  # pragma: no cover - depends on the install
    raise ImportError("the ghostha sandbox needs moto's server extra: pip install 'ghostha[sandbox]'") from exc

TESTED_MOTO = ">=5.2.1,<5.3"

# (object, attribute, what it must be): the internals the sandbox relies on.
REQUIRED: list[tuple[Any, str, str]] = [
    (ec2_launch_templates.LaunchTemplate, "create_version", "method"),
    (elbv2_models.FakeTargetGroup, "register", "method"),
    (elbv2_models.FakeTargetGroup, "deregister", "method"),
    (elbv2_models.FakeTargetGroup, "health_for", "method"),
    (elbv2_models.FakeTargetGroup, "deregister_terminated_instances", "method"),
    (elbv2_models, "FakeHealthStatus", "class"),
    (FakeAutoScalingGroup, "replace_autoscaling_group_instances", "method"),
    (FakeAutoScalingGroup, "active_instances", "method"),
    (ecs_models, "Task", "class"),
    (ecs_models, "Container", "class"),
    (ecs_models.EC2ContainerServiceBackend, "register_container_instance", "method"),
    (ecs_models.EC2ContainerServiceBackend, "describe_task_definition", "method"),
    (ecs_models.EC2ContainerServiceBackend, "_calculate_task_resource_requirements", "method"),
    (ecs_models.EC2ContainerServiceBackend, "_get_cluster", "method"),
    (ecs_models, "ecs_backends", "object"),
    (elbv2_models, "elbv2_backends", "object"),
    (state_manager, "set_transition", "method"),
    (InstanceTypeOfferingBackend, "describe_instance_type_offerings", "method"),
    (InstanceTypeOfferingBackend, "matches_filters", "method"),
    # the ECS request handlers that guard.py wraps or replaces
    *[
        (ecs_responses.EC2ContainerServiceResponse, name, "method")
        for name in (
            "create_service",
            "update_service",
            "delete_service",
            "delete_cluster",
            "list_tasks",
            "list_container_instances",
            "list_services",
            "stop_task",
            "register_container_instance",
            "register_task_definition",
            "describe_tasks",
            "describe_container_instances",
            "run_task",
            "_include_in_response",
            "_exclude_from_response",
            "_get_param",
            "_get_params",
        )
    ],
    (ecs_responses, "ActionResult", "class"),
    (ecs_responses, "DESCRIBE_TASKS_TAGS", "object"),
    # Auto Scaling (scaling.py and the launch hook)
    *[
        (asg_responses.AutoScalingResponse, name, "method")
        for name in (
            "describe_scaling_activities",
            "delete_auto_scaling_group",
            "update_auto_scaling_group",
            "set_desired_capacity",
            "terminate_instance_in_auto_scaling_group",
            "_get_param",
            "_get_bool_param",
        )
    ],
    (asg_exceptions, "AutoscalingClientError", "class"),
    (asg_exceptions, "ValidationError", "class"),
    (asg_models, "InstanceState", "class"),
    (asg_models, "ASG_NAME_TAG", "object"),
    (FakeAutoScalingGroup, "get_propagated_tags", "method"),
    (asg_models.AutoScalingBackend, "notify_terminate_instances", "method"),
    (ec2_launch_templates.LaunchTemplate, "get_version", "method"),
    (ec2_instances.InstanceBackend, "run_instances", "method"),
    (ec2_instances.InstanceBackend, "terminate_instances", "method"),
    (iam_models.IAMBackend, "get_instance_profiles", "method"),
    (iam_models, "iam_backends", "object"),
    (ssm_models.SimpleSystemManagerBackend, "get_parameter", "method"),
    (ssm_models, "ssm_backends", "object"),
    (iam_models, "AWSManagedPolicy", "class"),
    (iam_models, "aws_managed_policies_data", "object"),
]

# Constructor parameters the simulation passes by name.
REQUIRED_PARAMS: list[tuple[Any, set[str]]] = [
    (
        ecs_models.Task.__init__,
        {"cluster", "task_definition", "container_instance_arn", "resource_requirements", "backend", "group"},
    ),
    (elbv2_models.FakeHealthStatus.__init__, {"instance_id", "port", "health_port", "status", "reason"}),
    (asg_models.InstanceState.__init__, {"instance", "lifecycle_state", "protected_from_scale_in"}),
]

# Instance attributes of moto's models that the simulation reads or writes.
REQUIRED_ATTRS: dict[str, set[str]] = {
    "EC2ContainerServiceBackend": {
        "clusters",
        "services",
        "tasks",
        "container_instances",
        "task_definitions",
    },
    "Service": {"desired_count", "running_count", "pending_count", "deployments", "events", "load_balancers"},
    "Task": {
        "desired_status",
        "container_instance_arn",
        "task_definition_arn",
        "stopped_reason",
        "containers",
    },
    "ContainerInstance": {"ec2_instance_id", "status", "registered_resources", "remaining_resources"},
    "FakeTargetGroup": {"targets", "port", "vpc_id", "load_balancer_arns"},
    "FakeAutoScalingGroup": {
        "autoscaling_backend",
        "instance_states",
        "desired_capacity",
        "min_size",
        "max_size",
        "vpc_zone_identifier",
        "ec2_launch_template",
        "launch_template_version",
        "launch_config",
    },
    "InstanceState": {"instance", "lifecycle_state"},
    # the EC2 instance's state object (set to shutting-down by hand) and the options run_instances passes on
    "Instance": {"_state", "metadata_options"},
    "AmiBackend": {"amis"},
}


def check() -> list[str]:
    """What in moto the sandbox relies on is missing or changed: one line each, empty when all is well."""
    problems: list[str] = []
    for obj, attr, kind in REQUIRED:
        value = getattr(obj, attr, None)
        if value is None or (kind == "method" and not callable(value)):
            problems.append(f"{getattr(obj, '__name__', obj)}.{attr} ({kind}) is missing")
    for func, params in REQUIRED_PARAMS:
        missing = params - set(inspect.signature(func).parameters)
        if missing:
            problems.append(f"{func.__qualname__} no longer takes {sorted(missing)}")
    sources = {
        "EC2ContainerServiceBackend": inspect.getsource(ecs_models.EC2ContainerServiceBackend.__init__),
        "Service": inspect.getsource(ecs_models.Service.__init__),
        "Task": inspect.getsource(ecs_models.Task.__init__),
        "ContainerInstance": inspect.getsource(ecs_models.ContainerInstance.__init__),
        "FakeTargetGroup": inspect.getsource(elbv2_models.FakeTargetGroup.__init__),
        "FakeAutoScalingGroup": inspect.getsource(FakeAutoScalingGroup.__init__)
        + inspect.getsource(FakeAutoScalingGroup._set_launch_configuration)
        + inspect.getsource(FakeAutoScalingGroup.set_desired_capacity),
        "InstanceState": inspect.getsource(asg_models.InstanceState.__init__),
        "Instance": inspect.getsource(ec2_instances.Instance.__init__),
        "AmiBackend": inspect.getsource(ec2_amis.AmiBackend.__init__),
    }
    for cls, attrs in REQUIRED_ATTRS.items():
        for attr in sorted(attrs):
            if f"self.{attr}" not in sources[cls]:
                problems.append(f"{cls} no longer sets self.{attr}")
    return problems


def ensure_compatible() -> None:
    problems = check()
    if problems:
        raise RuntimeError(
            f"moto {version('moto')} is not compatible with the ghostha sandbox (tested with moto{TESTED_MOTO}): "
            + "; ".join(problems)
        )


# --- target groups: targets keyed by (id, port), with state ---------------------------------------------


def target_key(target_id: str, port: int | str) -> str:
    return f"{target_id}:{port}"


def _tg_register(self: Any, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        if (instance := self.ec2_backend.get_instance_by_id(target["Id"])) and instance.state != "running":
            raise elbv2_models.TargetNotRunning(instance_id=target["Id"])
        port = int(target.get("Port", self.port))
        key = target_key(target["Id"], port)
        current = self.targets.get(key)
        if current and current["State"] != "draining":
            continue  # registering a registered target changes nothing, as on AWS
        self.targets[key] = {
            "Id": target["Id"],
            "Port": port,
            "State": "initial",
            "Reason": "Elb.RegistrationInProgress",
            "Description": "Target registration is in progress",
            "since": None,  # stamped with simulated time by the simulation
        }


def _tg_deregister(self: Any, targets: list[dict[str, Any]]) -> None:
    for target in targets:
        key = target_key(target["Id"], int(target.get("Port", self.port)))
        t = self.targets.get(key)
        if not t:
            raise elbv2_models.InvalidTargetError()
        if t["State"] != "draining":
            t.update(
                State="draining",
                Reason="Target.DeregistrationInProgress",
                Description="Target deregistration is in progress",
                since=None,
            )


def _tg_health_for(self: Any, target: dict[str, Any], ec2_backend: Any) -> Any:
    port = int(target.get("Port", self.port))
    t = self.targets.get(target_key(target["Id"], port))
    if t is None:
        return elbv2_models.FakeHealthStatus(
            target["Id"],
            port,
            self.health_check_port,
            "unused",
            "Target.NotRegistered",
            "Target is not registered to the target group",
        )
    reason = t["Reason"] if t["State"] != "healthy" else None
    description = t["Description"] if t["State"] != "healthy" else None
    return elbv2_models.FakeHealthStatus(t["Id"], t["Port"], self.health_check_port, t["State"], reason, description)


def _tg_deregister_terminated(self: Any, instance_ids: list[str]) -> None:
    # A terminated instance's targets drain; the simulation removes them after the deregistration delay.
    for t in self.targets.values():
        if t["Id"] in instance_ids and t["State"] != "draining":
            t.update(
                State="draining",
                Reason="Target.DeregistrationInProgress",
                Description="Target deregistration is in progress",
                since=None,
            )


# --- Auto Scaling: instances round-robin over the subnets, with the template's profile and IMDS options ---


def _asg_launch(self: Any, count_needed: int, propagated_tags: dict[str, str]) -> None:
    """Launch as Auto Scaling does: each launch an activity, a launch EC2 would refuse a Failed one (retried
    later), the template's `resolve:ssm:` image resolved, its instance profile and metadata options applied."""
    from moto.autoscaling.models import ASG_NAME_TAG, InstanceState

    from ghostha.sandbox import scaling

    if not scaling.may_launch(self):
        return
    ec2 = self.autoscaling_backend.ec2_backend
    propagated_tags[ASG_NAME_TAG] = self.name
    propagated_tags.update(self.instance_tags)
    subnet_ids = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
    if subnet_ids:
        from ghostha.sandbox.offerings import OFFERINGS

        # only into the AZs that offer the instance type (the sandbox's offerings switch)
        subnet_ids = [
            s for s in subnet_ids if OFFERINGS.offered(ec2.get_subnet(s).availability_zone, self.instance_type)
        ]
        if not subnet_ids:
            return
    launch_template = None
    data: dict[str, Any] = {"ImageId": self.image_id}
    if self.ec2_launch_template:
        version = self.ec2_launch_template.get_version(self.launch_template_version)
        launch_template = {"LaunchTemplateId": self.ec2_launch_template.id, "Version": str(version.number)}
        data = version.data
    elif self.launch_config is not None and self.launch_config.iam_instance_profile:
        data["IamInstanceProfile"] = {"Name": self.launch_config.iam_instance_profile}
    profile = data.get("IamInstanceProfile") or {}
    for _ in range(count_needed):
        live = len(self.active_instances())
        image_id, problem = scaling.launch_problem(self, data)
        if problem is not None or image_id is None:
            scaling.launch_failed(self, live, problem or "")
            return
        kwargs: dict[str, Any] = {
            "instance_type": self.instance_type,
            "tags": {"instance": dict(propagated_tags)},
            "launch_config": self.launch_config,
            "launch_template": launch_template,
            "is_instance_type_default": False,
            "metadata_options": data.get("MetadataOptions") or {},
        }
        if subnet_ids:
            # the subnet with the fewest of this group's live instances: round-robin over the AZs
            used = [s.instance.subnet_id for s in self.active_instances()]
            subnet_id = min(subnet_ids, key=lambda s: (used.count(s), subnet_ids.index(s)))
            kwargs["subnet_id"] = subnet_id
            kwargs["placement"] = ec2.get_subnet(subnet_id).availability_zone
        else:
            kwargs["placement"] = self.availability_zones[0]
        reservation = ec2.run_instances(image_id, 1, self.user_data, self.security_groups, **kwargs)
        for instance in reservation.instances:
            instance.autoscaling_group = self
            if profile:
                with contextlib.suppress(Exception):
                    ec2.associate_iam_instance_profile(
                        instance.id,
                        iam_instance_profile_name=profile.get("Name"),
                        iam_instance_profile_arn=profile.get("Arn"),
                    )
            self.instance_states.append(
                InstanceState(
                    instance,
                    lifecycle_state="Pending",
                    protected_from_scale_in=self.new_instances_protected_from_scale_in,
                )
            )
            scaling.launched(self, instance, live)


def _lt_create_version(self: Any, data: dict[str, Any], description: str) -> Any:
    """moto's CreateLaunchTemplateVersion keeps UserData as a plain string (CreateLaunchTemplate parses it), and a
    group launching from that version then fails an assertion: parse it the same way."""
    from moto.core.types import Base64EncodedString
    from moto.ec2.utils import parse_user_data

    if data.get("UserData") is not None and not isinstance(data["UserData"], Base64EncodedString):
        data = {**data, "UserData": parse_user_data(data["UserData"])}
    return _original_create_version(self, data, description)


_original_create_version: Any = None


def replace_handlers(cls: Any, patches: dict[str, Any], original: dict[str, Any]) -> None:
    """Put `patches` in place of a moto class's methods (request handlers), once; `original` keeps moto's own."""
    for name, func in patches.items():
        if name not in original:
            original[name] = getattr(cls, name)
            setattr(cls, name, func)


def pin_task_states() -> None:
    """moto moves a task one state towards STOPPED per describe; the simulation owns task states instead."""
    state_manager.set_transition("ecs::task", {"progression": "manual", "times": 10**12})


# AWS managed policies every account has and the story uses; moto loads all ~1,300 of them (2 s per reset) only
# with MOTO_IAM_LOAD_MANAGED_POLICIES, else none: the sandbox loads just these.
MANAGED_POLICIES = ("AmazonEC2ContainerServiceforEC2Role", "AmazonEC2ContainerServiceRole")
_POLICY_DATA: dict[str, Any] = {}


def load_managed_policies(account_id: str = "123456789012") -> None:
    """Make the story's AWS managed policies exist (after each reset), as they do in every AWS account."""
    import json

    if not _POLICY_DATA:
        data = json.loads(iam_models.aws_managed_policies_data)
        _POLICY_DATA.update({name: data[name] for name in MANAGED_POLICIES})
    backend = iam_models.iam_backends[account_id]["aws"]
    for name, data in _POLICY_DATA.items():
        policy = iam_models.AWSManagedPolicy.from_data(name, account_id, backend.region_name, data)
        backend.managed_policies.setdefault(policy.arn, policy)


_installed = False


def install() -> None:
    """Apply the patches (idempotent). Only the sandbox process calls this."""
    global _installed
    ensure_compatible()
    if not _installed:
        global _original_create_version
        _original_create_version = ec2_launch_templates.LaunchTemplate.create_version
        ec2_launch_templates.LaunchTemplate.create_version = _lt_create_version
        tg = elbv2_models.FakeTargetGroup
        tg.register = _tg_register
        tg.deregister = _tg_deregister
        tg.health_for = _tg_health_for
        tg.deregister_terminated_instances = _tg_deregister_terminated
        FakeAutoScalingGroup.replace_autoscaling_group_instances = _asg_launch
        _installed = True
    pin_task_states()


def user_data_text(instance: Any) -> str:
    """An EC2 instance's user data, decoded (moto keeps it base64-encoded, sometimes in a list)."""
    raw = instance.user_data
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not raw:
        return ""
    from ghostha.resources.launch_template import decode_user_data

    # user data reaches moto base64-encoded, and through a launch template once more
    return decode_user_data(raw.decode() if isinstance(raw, bytes) else str(raw))


def instance_profile_of(instance: Any) -> str | None:
    assoc = ec2_backends[instance.ec2_backend.account_id][instance.ec2_backend.region_name]
    a = assoc.iam_instance_profile_associations.get(instance.id)
    if a is None:
        return None
    return str(a.iam_instance_profile.arn)
