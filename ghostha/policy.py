"""The IAM policy that runs every ghostha command, scoped where AWS allows it.

`document()` is the stack-agnostic form shipped as `iam-policy.json`: resource-type ARN patterns, and on every
action that changes or deletes something ghostha created, a condition that the resource carries the
`ghostha:stack` tag (any value). `document(scope_of(cfg))` is the same policy for one stack (`ghostha policy`):
its region, its names and `ghostha:stack=<stack>` exactly.

Which action takes which resource type and condition key is AWS's Service Authorization Reference ("Actions,
resources, and condition keys for Amazon Elastic Container Service / Amazon EC2 / Amazon EC2 Auto Scaling /
Elastic Load Balancing V2 / AWS Identity and Access Management / AWS Systems Manager / AWS STS / Resource Groups
Tagging"); the table in the README's "Permissions" section quotes what each statement relies on, and
tests/test_permissions.py checks every call the test suite records against this document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ghostha.config import TAG_KEY

if TYPE_CHECKING:
    from ghostha.config import Config

Json = dict[str, Any]

# Actions AWS gives no resource type (Service Authorization Reference: no value in the "Resource types" column,
# so the statement's Resource must be "*"), and reads ghostha makes of resources it did not create (the ALB, the
# target group, the old service, the family's own revisions, the instance profile and its role, the AMI's SSM
# parameter): left at "*" on purpose, a tag condition would deny them.
READ = (
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeScalingActivities",
    "ec2:DescribeImages",
    "ec2:DescribeInstanceTypeOfferings",
    "ec2:DescribeInstanceTypes",
    "ec2:DescribeInstances",
    "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates",
    "ec2:DescribeSecurityGroupRules",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ecs:DescribeClusters",
    "ecs:DescribeContainerInstances",
    "ecs:DescribeServices",
    "ecs:DescribeTaskDefinition",
    "ecs:DescribeTasks",
    "ecs:ListContainerInstances",
    "ecs:ListServices",
    "ecs:ListTaskDefinitionFamilies",
    "ecs:ListTaskDefinitions",
    "ecs:ListTasks",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroupAttributes",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "iam:GetInstanceProfile",
    "iam:GetRole",
    "iam:ListAttachedRolePolicies",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "sts:GetCallerIdentity",
    "tag:GetResources",
)
# writes AWS gives no resource type: they cannot be scoped at all
UNSCOPABLE = ("ecs:DeregisterTaskDefinition",)
# creations: allowed only when the request tags the new resource with ghostha:stack (aws:RequestTag)
CREATE = (
    "autoscaling:CreateAutoScalingGroup",
    "ec2:AuthorizeSecurityGroupIngress",  # its security-group-rule resource (the group itself: UNTAGGED below)
    "ec2:CreateLaunchTemplate",
    "ecs:CreateCluster",
    "ecs:CreateService",
    "ecs:RegisterTaskDefinition",
)
# changes and deletions of what ghostha created: only on resources that carry the tag (aws:ResourceTag)
CHANGE = (
    "ec2:CreateLaunchTemplateVersion",
    "ec2:DeleteLaunchTemplate",
    "ecs:DeleteCluster",
    "ecs:DeleteService",
    "ecs:DeleteTaskDefinitions",
    "ecs:DeregisterContainerInstance",  # its resource is the cluster
    "ecs:StopTask",  # service tasks carry the service's tags (propagateTags SERVICE)
    "ecs:UpdateService",
)
CHANGE_GROUP = (  # the same for the Auto Scaling group, with Auto Scaling's own key (autoscaling:ResourceTag)
    "autoscaling:DeleteAutoScalingGroup",
    "autoscaling:SetDesiredCapacity",
    "autoscaling:TerminateInstanceInAutoScalingGroup",
    "autoscaling:UpdateAutoScalingGroup",
)
# changes to resources ghostha acts on but does not tag: scoped by resource type (by name for one stack) only
UNTAGGED = (
    "ec2:AuthorizeSecurityGroupIngress",  # the instances' security group (the user's)
    "ecs:UpdateContainerInstancesState",  # container instances carry no tags of ghostha's
    "elasticloadbalancing:DeregisterTargets",  # the user's target group
)
# AWS authorizes it on the security group only, not on the rule (so the rule's tag cannot be required), and ghostha
# revokes its rule from whichever group holds it (a group the config no longer names, too): any group, by type
REVOKE = ("ec2:RevokeSecurityGroupIngress",)
# permissions AWS checks with no API call of their own (each with its condition)
TAG_ON_CREATE_ECS = ("CreateCluster", "CreateService", "RegisterTaskDefinition")  # ecs:TagResource, ecs:CreateAction
TAG_ON_CREATE_EC2 = ("AuthorizeSecurityGroupIngress", "CreateLaunchTemplate")  # ec2:CreateTags, ec2:CreateAction
PASSED_TO = ("ec2.amazonaws.com", "ecs-tasks.amazonaws.com", "ecs.amazonaws.com")
SERVICE_LINKED = {
    "autoscaling.amazonaws.com": "AWSServiceRoleForAutoScaling",
    "ecs.amazonaws.com": "AWSServiceRoleForECS",
}


@dataclass(frozen=True)
class Scope:
    """What the policy is scoped to: `*` everywhere (any stack), or one stack's region and names."""

    stack: str | None = None
    region: str = "*"
    cluster: str = "*"
    service: str = "*"
    family: str = "*"
    group: str = "*-ecs"  # ghostha names its group <stack>-ecs (config.asg_name)
    target_group: str = "*"
    security_group: str = "*"


def scope_of(cfg: Config, region: str | None = None) -> Scope:
    """The stack's scope; the region is `region` (--region), else the config's, else any."""
    return Scope(
        stack=cfg.stack,
        region=region or cfg.region or "*",
        cluster=cfg.cluster.name,
        service="*",  # a renamed service (--replace-service) is this stack's too: its tag says so
        family=cfg.task.family,
        group=cfg.asg_name,
        target_group=cfg.load_balancer.target_group,
        security_group=cfg.network.security_group,
    )


def _arn(service: str, resource: str, region: str, account: str = "*") -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _tag(key: str, s: Scope) -> Json:
    """The tag condition: the tag present (any stack), or equal to the stack."""
    if s.stack is None:
        return {"StringLike": {f"{key}/{TAG_KEY}": "*"}}
    return {"StringEquals": {f"{key}/{TAG_KEY}": s.stack}}


def _both(*conditions: Json) -> Json:
    """Conditions joined (all must hold): keys of one operator merged into one block."""
    out: Json = {}
    for cond in conditions:
        for op, block in cond.items():
            out.setdefault(op, {}).update(block)
    return out


def document(s: Scope | None = None) -> Json:
    s = s or Scope()
    r = s.region
    cluster = _arn("ecs", f"cluster/{s.cluster}", r)
    service = _arn("ecs", f"service/{s.cluster}/{s.service}", r)
    task = _arn("ecs", f"task/{s.cluster}/*", r)
    container_instance = _arn("ecs", f"container-instance/{s.cluster}/*", r)
    revision = _arn("ecs", f"task-definition/{s.family}:*", r)
    template = _arn("ec2", "launch-template/*", r)  # its ARN holds the id, not the name: scoped by tag only
    rule = _arn("ec2", "security-group-rule/*", r)
    group_sg = _arn("ec2", f"security-group/{s.security_group}", r)
    asg = _arn("autoscaling", f"autoScalingGroup:*:autoScalingGroupName/{s.group}", r)
    tg = _arn("elasticloadbalancing", f"targetgroup/{s.target_group}/*", r)
    roles = [f"arn:aws:iam::*:role/aws-service-role/{svc}/{name}" for svc, name in SERVICE_LINKED.items()]
    statements: list[Json] = [
        {"Sid": "Read", "Effect": "Allow", "Action": list(READ), "Resource": "*"},
        {"Sid": "NoResourceType", "Effect": "Allow", "Action": list(UNSCOPABLE), "Resource": "*"},
        {
            "Sid": "CreateOnlyTagged",
            "Effect": "Allow",
            "Action": list(CREATE),
            "Resource": [cluster, service, revision, template, rule, asg],
            "Condition": _tag("aws:RequestTag", s),
        },
        {
            "Sid": "TagOnCreateEcs",
            "Effect": "Allow",
            "Action": "ecs:TagResource",
            "Resource": [cluster, service, revision],
            "Condition": _both(
                {"StringEquals": {"ecs:CreateAction": list(TAG_ON_CREATE_ECS)}}, _tag("aws:RequestTag", s)
            ),
        },
        {
            "Sid": "TagOnCreateEc2",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": [template, rule],
            "Condition": _both(
                {"StringEquals": {"ec2:CreateAction": list(TAG_ON_CREATE_EC2)}}, _tag("aws:RequestTag", s)
            ),
        },
        {
            # CreateAutoScalingGroup with Tags also needs CreateOrUpdateTags (Service Authorization Reference, EC2
            # Auto Scaling). Auto Scaling has no CreateAction key, so this is scoped by the group's name pattern and
            # the tag instead: a direct CreateOrUpdateTags is possible on such groups
            "Sid": "TagGroupOnCreate",
            "Effect": "Allow",
            "Action": "autoscaling:CreateOrUpdateTags",
            "Resource": asg,
            "Condition": _tag("aws:RequestTag", s),
        },
        {
            # the launch template's tag specification tags each instance at launch: "ec2:CreateTags - To tag
            # instances and volumes on launch when a launch template with a tag specification is provided" (EC2
            # Auto Scaling user guide, "Permissions required to call Amazon EC2 Auto Scaling API actions")
            "Sid": "TagInstancesOnLaunch",
            "Effect": "Allow",
            "Action": "ec2:CreateTags",
            "Resource": _arn("ec2", "instance/*", r),
            "Condition": {"StringEquals": {"ec2:CreateAction": "RunInstances"}},
        },
        {
            "Sid": "ChangeOnlyTagged",
            "Effect": "Allow",
            "Action": list(CHANGE),
            "Resource": [cluster, service, task, revision, template],
            "Condition": _tag("aws:ResourceTag", s),
        },
        {
            "Sid": "ChangeOnlyTaggedGroup",
            "Effect": "Allow",
            "Action": list(CHANGE_GROUP),
            "Resource": asg,
            "Condition": _tag("autoscaling:ResourceTag", s),
        },
        {
            "Sid": "ChangeUntaggedByName",
            "Effect": "Allow",
            "Action": list(UNTAGGED),
            "Resource": [group_sg, container_instance, tg],
        },
        {
            "Sid": "RevokeRules",
            "Effect": "Allow",
            "Action": list(REVOKE),
            "Resource": _arn("ec2", "security-group/*", r),
        },
        {
            "Sid": "LaunchFromTaggedTemplate",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": template,
            "Condition": _tag("aws:ResourceTag", s),
        },
        {"Sid": "LaunchInstances", "Effect": "Allow", "Action": "ec2:RunInstances", "NotResource": template},
        {
            "Sid": "PassRoles",
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:aws:iam::*:role/*",
            "Condition": {"StringEquals": {"iam:PassedToService": list(PASSED_TO)}},
        },
        {
            "Sid": "ServiceLinkedRoles",
            "Effect": "Allow",
            "Action": "iam:CreateServiceLinkedRole",
            "Resource": roles,
            "Condition": {"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}},
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def actions(doc: Json) -> set[str]:
    """Every action a policy document names."""
    found: set[str] = set()
    for st in doc["Statement"]:
        acts = st["Action"]
        found |= {acts} if isinstance(acts, str) else set(acts)
    return found
