"""The launch template `<stack>-ecs`: what every container instance is launched from.

The AMI is `resolve:ssm:<parameter>` when the config names an SSM parameter: EC2 resolves it at each launch (EC2
User Guide, "Use a Systems Manager parameter instead of an AMI ID"), so a new ECS AMI release is not a change
here. Any change makes a new version (the group launches `$Latest`); the instances launched from an older one are
then replaced one at a time (see auto_scaling_group). Each instance is tagged with a digest of the template's
spec, so ghostha can tell which instances are out of date on AWS and in the sandbox alike.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Any

from ghostha.config import TAG_KEY, Config
from ghostha.observe import Inventory, Json, Observed
from ghostha.resources.base import Change, Item, Step, aws_tags, diff_fields

KEYS = (
    "cluster.instance_type",
    "cluster.ami",
    "cluster.instance_profile",
    "cluster.key_name",
    "network.security_group",
)
SPEC_TAG = "ghostha:instance-spec"
HOP_LIMIT = 1  # bridge-mode containers cannot reach the instance role's credentials (Ghost needs none)
_CLUSTER_RE = re.compile(r"ECS_CLUSTER=([A-Za-z0-9_-]+)")


@dataclass(frozen=True)
class LaunchTemplateSpec:
    image: str
    instance_type: str
    instance_profile: str | None
    security_groups: tuple[str, ...]
    user_data: str
    key_name: str | None
    imds: str  # "HttpTokens/hop limit"

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


LABELS = {
    "image": "AMI",
    "instance_type": "instance type",
    "instance_profile": "instance profile",
    "security_groups": "security groups",
    "user_data": "user data",
    "key_name": "key pair",
    "imds": "instance metadata (tokens/hop limit)",
}


def image(cfg: Config) -> str:
    ami = cfg.cluster.ami
    return f"resolve:ssm:{ami.removeprefix('ssm:')}" if ami.startswith("ssm:") else ami


def user_data_script(cluster: str) -> str:
    return f"#!/bin/bash\necho ECS_CLUSTER={cluster} >> /etc/ecs/ecs.config\n"


def desired(cfg: Config) -> LaunchTemplateSpec:
    return LaunchTemplateSpec(
        image=image(cfg),
        instance_type=cfg.cluster.instance_type,
        instance_profile=cfg.cluster.instance_profile,
        security_groups=(cfg.network.security_group,),
        user_data=user_data_script(cfg.cluster.name),
        key_name=cfg.cluster.key_name,
        imds=f"required/{HOP_LIMIT}",
    )


def decode_user_data(data: Any) -> str:
    """User data as text: base64 as EC2 keeps it, once more when it came through a launch template into an
    instance (moto), plain text as it is."""
    text = str(data or "")
    for _ in range(2):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            break
    return text


def actual(obs: Observed) -> LaunchTemplateSpec | None:
    lt = obs.launch_template
    if lt is None:
        return None
    data: Json = lt.get("LatestData") or {}
    profile = data.get("IamInstanceProfile") or {}
    name = profile.get("Name") or (str(profile["Arn"]).rsplit("/", 1)[-1] if profile.get("Arn") else None)
    md = data.get("MetadataOptions") or {}
    return LaunchTemplateSpec(
        image=str(data.get("ImageId", "")),
        instance_type=str(data.get("InstanceType", "")),
        instance_profile=name,
        security_groups=tuple(sorted(data.get("SecurityGroupIds") or [])),
        user_data=decode_user_data(data.get("UserData")),
        key_name=data.get("KeyName"),
        imds=f"{md.get('HttpTokens', 'optional')}/{md.get('HttpPutResponseHopLimit', 1)}",
    )


def cluster_of(spec: LaunchTemplateSpec) -> str | None:
    """The cluster the template's user data sends instances to."""
    match = _CLUSTER_RE.search(spec.user_data)
    return match.group(1) if match else None


def diff(have: LaunchTemplateSpec, want: LaunchTemplateSpec) -> list[Change]:
    changes = diff_fields(asdict(have), asdict(want), LABELS, frozenset(LABELS))
    return [Change(c.field, cluster_of(have), cluster_of(want), True) if c.field == "user data" else c for c in changes]


def template_data(cfg: Config, spec: LaunchTemplateSpec) -> Json:
    data: Json = {
        "ImageId": spec.image,
        "InstanceType": spec.instance_type,
        "IamInstanceProfile": {"Name": spec.instance_profile},
        "SecurityGroupIds": list(spec.security_groups),
        "UserData": base64.b64encode(spec.user_data.encode()).decode(),
        "MetadataOptions": {"HttpTokens": "required", "HttpEndpoint": "enabled", "HttpPutResponseHopLimit": HOP_LIMIT},
        "TagSpecifications": [
            {
                "ResourceType": "instance",
                "Tags": [
                    *aws_tags(cfg),
                    {"Key": "Name", "Value": f"{cfg.stack}-ecs"},
                    {"Key": SPEC_TAG, "Value": spec.digest},
                ],
            }
        ],
    }
    if spec.key_name:
        data["KeyName"] = spec.key_name
    return data


def plan(cfg: Config, obs: Observed) -> tuple[list[Step], list[Change]]:
    """The steps, and the changes that make the running instances out of date."""
    want = desired(cfg)
    have = actual(obs)
    name = cfg.launch_template_name
    if have is None:
        return [
            Step(
                "create-launch-template",
                f"launch template {name}",
                f"{want.instance_type}, {want.image}, profile {want.instance_profile}, IMDSv2, "
                f"ECS_CLUSTER={cfg.cluster.name}",
                "ec2",
                "create_launch_template",
                {
                    "LaunchTemplateName": name,
                    "LaunchTemplateData": template_data(cfg, want),
                    "TagSpecifications": [{"ResourceType": "launch-template", "Tags": aws_tags(cfg)}],
                },
            )
        ], []
    changes = diff(have, want)
    if not changes:
        return [], []
    return [
        Step(
            "update-launch-template",
            f"launch template {name}",
            "new version; instances launched from older ones are replaced one at a time",
            "ec2",
            "create_launch_template_version",
            {"LaunchTemplateName": name, "LaunchTemplateData": template_data(cfg, want)},
            changes=tuple(str(c) for c in changes),
        )
    ], changes


def teardown(cfg: Config, inv: Inventory, keep: str | None) -> tuple[list[Item], list[Step]]:
    lt = inv.launch_template
    if lt is None:
        return [], []
    name = lt["LaunchTemplateName"]
    if not inv.owned(lt.get("Tags")):
        return [Item("launch template", name, "leave", "not tagged as this stack's")], []
    if keep:
        return [Item("launch template", name, "leave", keep)], []
    return [Item("launch template", name, "delete")], [
        Step(
            "delete-launch-template",
            f"launch template {name}",
            "",
            "ec2",
            "delete_launch_template",
            {"LaunchTemplateId": lt["LaunchTemplateId"]},
        )
    ]


__all__ = ["KEYS", "SPEC_TAG", "TAG_KEY", "LaunchTemplateSpec", "desired", "diff", "plan", "teardown"]
