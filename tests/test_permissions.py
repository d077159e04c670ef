"""The IAM actions each command calls, recorded from the sandbox's request log, against the shipped policy and the
README's permissions section (plus the permissions AWS checks that no API call shows).

Each recorded request is also turned into the authorizations AWS makes for it (`resolve`): the resource it acts
on, an ARN built from the request's parameters, and the context AWS evaluates conditions on — the tags the
request sets (aws:RequestTag/…, aws:TagKeys), and the tags the resource carries in the sandbox at that moment
(aws:ResourceTag/…, and the service's own …:ResourceTag/…). Every such check of every command must be allowed by
`iam-policy.json` (tests/test_policy_eval.py evaluates it); what ghostha must not do is denied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ghostha import policy
from ghostha.config import TAG_KEY, load
from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, short_draining, write_config
from tests.test_policy_eval import Check, allowed

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
# request signing names that differ from IAM's service prefixes
PREFIX = {"tagging": "tag", "elasticloadbalancing": "elasticloadbalancing"}
# AWS checks these without an API call of their own: each with why (README "Permissions")
IMPLICIT = {
    "ecs:TagResource": "CreateCluster, CreateService and RegisterTaskDefinition with tags",
    "ec2:CreateTags": "CreateLaunchTemplate and AuthorizeSecurityGroupIngress with tags",
    "autoscaling:CreateOrUpdateTags": "CreateAutoScalingGroup with tags",
    "ec2:RunInstances": "checked when an Auto Scaling group is created or updated with a launch template",
    "ssm:GetParameters": "CreateLaunchTemplate and CreateLaunchTemplateVersion with a resolve:ssm: image",
    "iam:PassRole": "the launch template's instance profile, when the group launches instances",
    "iam:CreateServiceLinkedRole": "Auto Scaling creates its service-linked role on first use",
}
# called only on a path the story above does not take: action → (the boto3 method, when)
RARE = {
    "ecs:DeregisterContainerInstance": ("deregister_container_instance", "teardown, for an instance left registered"),
    "ecs:ListTaskDefinitionFamilies": ("list_task_definition_families", "init, to name the families to choose from"),
}
SHIPPED = json.loads((ROOT / "iam-policy.json").read_text())


def actions(requests: list[tuple[str, str]]) -> set[str]:
    return {f"{PREFIX.get(service, service)}:{action}" for service, action in requests}


# --- each request as the authorizations AWS makes for it ----------------------------------------------------


def _request_ctx(tags: dict[str, str]) -> dict[str, Any]:
    ctx: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        ctx["aws:TagKeys"] = sorted(tags)
    return ctx


def _resource_ctx(prefix: str, tags: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tags.items():
        out[f"aws:ResourceTag/{k}"] = v
        out[f"{prefix}:ResourceTag/{k}"] = v
    return out


def _indexed(p: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    """`Prefix.1.Key=…, Prefix.1.Value=…` (a query-protocol list of structures) as a list of dicts."""
    out: dict[int, dict[str, str]] = {}
    for key, value in p.items():
        if key.startswith(prefix + "."):
            n, _, rest = key[len(prefix) + 1 :].partition(".")
            if n.isdigit():
                out.setdefault(int(n), {})[rest] = value
    return [out[n] for n in sorted(out)]


def _ec2_tag_spec(p: dict[str, Any], resource_type: str) -> dict[str, str]:
    for spec in _indexed(p, "TagSpecification"):
        if spec.get("ResourceType") == resource_type:
            keys = {k.split(".")[1]: v for k, v in spec.items() if k.startswith("Tag.") and k.endswith(".Key")}
            return {v: spec.get(f"Tag.{n}.Value", "") for n, v in keys.items()}
    return {}


class Resolver:
    """Turns one recorded request into the checks AWS makes, reading tags from moto's backends at that moment."""

    def __init__(self, box: Sandbox) -> None:
        self.region = box.region

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{ACCOUNT}:{resource}"

    # moto's backends
    def ecs(self) -> Any:
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][self.region]

    def ec2(self) -> Any:
        from moto.ec2.models import ec2_backends

        return ec2_backends[ACCOUNT][self.region]

    def asg(self) -> Any:
        from moto.autoscaling.models import autoscaling_backends

        return autoscaling_backends[ACCOUNT][self.region]

    def ecs_tags(self, thing: Any) -> dict[str, str]:
        return {t["key"]: t["value"] for t in (getattr(thing, "tags", None) or [])}

    def cluster(self, name: str) -> tuple[str, dict[str, str]]:
        short = name.rsplit("/", 1)[-1]
        found = self.ecs().clusters.get(short)
        return self.arn("ecs", f"cluster/{short}"), self.ecs_tags(found)

    def template(self, p: dict[str, Any]) -> tuple[str, dict[str, str]]:
        ec2 = self.ec2()
        lt_id = p.get("LaunchTemplateId") or ec2.launch_template_name_to_ids.get(p.get("LaunchTemplateName"), "lt-new")
        return self.arn("ec2", f"launch-template/{lt_id}"), dict(ec2.tags.get(lt_id, {}))

    def group(self, name: str) -> tuple[str, dict[str, str]]:
        g = self.asg().autoscaling_groups.get(name)
        tags = {t["Key"]: t["Value"] for t in (g.tags if g else [])}
        arn = g.arn if g else self.arn("autoscaling", f"autoScalingGroup:new:autoScalingGroupName/{name}")
        return arn, tags

    def launch_checks(self, lt: dict[str, Any], why: str) -> list[Check]:
        """Auto Scaling checks ec2:RunInstances (and iam:PassRole on the instance profile's role) when a group is
        created or updated with a launch template."""
        arn, tags = self.template(lt)
        instance = self.arn("ec2", "instance/*")
        checks = [
            Check("ec2:RunInstances", arn, _resource_ctx("ec2", tags) | {"ec2:LaunchTemplate": arn}, why),
            Check("ec2:RunInstances", instance, {"ec2:LaunchTemplate": arn}, why),
            # the template's tag specification tags each instance at launch
            Check("ec2:CreateTags", instance, {"ec2:CreateAction": "RunInstances"}, why),
        ]
        lt_id = arn.rsplit("/", 1)[-1]
        template = self.ec2().launch_templates.get(lt_id)
        if template is not None:
            profile = (template.latest_version().data.get("IamInstanceProfile") or {}).get("Name")
            if profile:
                from moto.iam.models import iam_backends

                for role in iam_backends[ACCOUNT]["global"].get_instance_profile(profile).roles:
                    checks.append(Check("iam:PassRole", role.arn, {"iam:PassedToService": "ec2.amazonaws.com"}, why))
        return checks

    def __call__(self, service: str, action: str, p: dict[str, Any]) -> list[Check]:
        act = f"{PREFIX.get(service, service)}:{action}"
        why = act
        if act in policy.READ or act in policy.UNSCOPABLE:
            return [Check(act, "*", {}, why)]
        if act.startswith("ecs:"):
            return self.ecs_call(act, action, p)
        if act in ("ec2:CreateLaunchTemplate", "ec2:CreateLaunchTemplateVersion", "ec2:DeleteLaunchTemplate"):
            arn, tags = self.template(p)
            if action == "CreateLaunchTemplate":
                new = _ec2_tag_spec(p, "launch-template")
                checks = [
                    Check(act, arn, _request_ctx(new), why),
                    Check("ec2:CreateTags", arn, _request_ctx(new) | {"ec2:CreateAction": action}, why),
                ]
            else:
                checks = [Check(act, arn, _resource_ctx("ec2", tags), why)]
            image = str(p.get("LaunchTemplateData.ImageId", ""))
            if image.startswith("resolve:ssm:"):
                name = image.removeprefix("resolve:ssm:").lstrip("/")
                checks.append(Check("ssm:GetParameters", f"arn:aws:ssm:{self.region}::parameter/{name}", {}, why))
            return checks
        if act in ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"):
            sg = p["GroupId"]
            checks = [
                Check(
                    act, self.arn("ec2", f"security-group/{sg}"), _resource_ctx("ec2", self.ec2().tags.get(sg, {})), why
                )
            ]
            if action == "AuthorizeSecurityGroupIngress":
                new = _ec2_tag_spec(p, "security-group-rule")
                rule = self.arn("ec2", "security-group-rule/sgr-new")
                checks += [
                    Check(act, rule, _request_ctx(new), why),
                    Check("ec2:CreateTags", rule, _request_ctx(new) | {"ec2:CreateAction": action}, why),
                ]
            return checks
        if act.startswith("autoscaling:"):
            if action == "TerminateInstanceInAutoScalingGroup":
                name = next(
                    g.name
                    for g in self.asg().autoscaling_groups.values()
                    if any(i.instance.id == p["InstanceId"] for i in g.instance_states)
                )
            else:
                name = p["AutoScalingGroupName"]
            arn, tags = self.group(name)
            lt = {k.split(".", 1)[1]: v for k, v in p.items() if k.startswith("LaunchTemplate.")}
            if action == "CreateAutoScalingGroup":
                new = {t["Key"]: t.get("Value", "") for t in _indexed(p, "Tags.member")}
                tagging = Check("autoscaling:CreateOrUpdateTags", arn, _request_ctx(new), why)  # Tags given
                return [Check(act, arn, _request_ctx(new), why), tagging, *self.launch_checks(lt, why)]
            checks = [Check(act, arn, _resource_ctx("autoscaling", tags), why)]
            if action == "UpdateAutoScalingGroup":
                g = self.asg().autoscaling_groups[name]
                template = getattr(g, "ec2_launch_template", None)
                checks += self.launch_checks(lt or ({"LaunchTemplateId": template.id} if template else {}), why)
            return checks
        if act == "elasticloadbalancing:DeregisterTargets":
            from moto.elbv2.models import elbv2_backends

            arn = p["TargetGroupArn"]
            tags = elbv2_backends[ACCOUNT][self.region].tagging_service.get_tag_dict_for_resource(arn)
            return [Check(act, arn, _resource_ctx("elasticloadbalancing", tags), why)]
        raise AssertionError(f"no resource rule for {act}: add one to Resolver")

    def ecs_call(self, act: str, action: str, p: dict[str, Any]) -> list[Check]:
        why = act
        ecs = self.ecs()
        cluster_name = str(p.get("cluster") or "default").rsplit("/", 1)[-1]
        cluster_arn, cluster_tags = self.cluster(cluster_name)
        on_cluster = {"ecs:cluster": cluster_arn}
        new = {t["key"]: t.get("value", "") for t in p.get("tags") or []}

        def created(arn: str) -> list[Check]:
            checks = [Check(act, arn, _request_ctx(new) | on_cluster, why)]
            if new:
                checks.append(Check("ecs:TagResource", arn, _request_ctx(new) | {"ecs:CreateAction": action}, why))
            return checks

        if action == "CreateCluster":
            return created(self.arn("ecs", f"cluster/{p['clusterName']}"))
        if action == "CreateService":
            checks = created(self.arn("ecs", f"service/{cluster_name}/{p['serviceName']}"))
            if p.get("role"):
                role = p["role"] if p["role"].startswith("arn:") else f"arn:aws:iam::{ACCOUNT}:role/{p['role']}"
                checks.append(Check("iam:PassRole", role, {"iam:PassedToService": "ecs.amazonaws.com"}, why))
            return checks
        if action == "RegisterTaskDefinition":
            family = p["family"]
            n = len(ecs.task_definitions.get(family, {})) + 1
            checks = created(self.arn("ecs", f"task-definition/{family}:{n}"))
            for key in ("taskRoleArn", "executionRoleArn"):
                if p.get(key):
                    checks.append(
                        Check("iam:PassRole", p[key], {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, why)
                    )
            return checks
        if action in ("UpdateService", "DeleteService"):
            svc = ecs.services.get(f"{cluster_name}:{str(p['service']).rsplit('/', 1)[-1]}")
            arn = self.arn("ecs", f"service/{cluster_name}/{str(p['service']).rsplit('/', 1)[-1]}")
            return [Check(act, arn, _resource_ctx("ecs", self.ecs_tags(svc)) | on_cluster, why)]
        if action in ("DeleteCluster", "DeregisterContainerInstance"):
            return [Check(act, cluster_arn, _resource_ctx("ecs", cluster_tags), why)]
        if action == "UpdateContainerInstancesState":
            return [
                Check(
                    act, self.arn("ecs", f"container-instance/{cluster_name}/{ci.rsplit('/', 1)[-1]}"), on_cluster, why
                )
                for ci in p["containerInstances"]
            ]
        if action == "StopTask":
            task_id = str(p["task"]).rsplit("/", 1)[-1]
            task = next((t for t in ecs.tasks.get(cluster_name, {}).values() if t.task_arn.endswith(task_id)), None)
            arn = self.arn("ecs", f"task/{cluster_name}/{task_id}")
            return [Check(act, arn, _resource_ctx("ecs", self.ecs_tags(task)) | on_cluster, why)]
        if action == "DeleteTaskDefinitions":
            checks = []
            for arn in p["taskDefinitions"]:
                family, _, rev = arn.rsplit("/", 1)[-1].partition(":")
                td = ecs.task_definitions.get(family, {}).get(int(rev))
                checks.append(Check(act, arn, _resource_ctx("ecs", self.ecs_tags(td)), why))
            return checks
        raise AssertionError(f"no resource rule for {act}: add one to Resolver")


# --- the recording --------------------------------------------------------------------------------------------


class Recorder:
    """Wraps the sandbox's request log: each request's checks, resolved before moto handles it."""

    def __init__(self, box: Sandbox) -> None:
        self.box = box
        self.resolve = Resolver(box)
        self.checks: list[Check] = []
        self.errors: list[str] = []
        self._inner = box._record

    def __enter__(self) -> Recorder:
        def record(environ: Any) -> None:
            self._inner(environ)
            req = self.box.requests[-1]
            try:
                with self.box.lock:
                    self.checks += self.resolve(req[0], req[1], getattr(req, "params", {}))
            except Exception as exc:  # reported by the test, not as the sandbox's 500
                self.errors.append(f"{req[0]} {req[1]}: {type(exc).__name__}: {exc}")

        self.box._record = record  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        self.box._record = self._inner  # type: ignore[method-assign]


def record(box: Sandbox, rec: Recorder, args: list[str], ok: tuple[int, ...] = (0,)) -> tuple[set[str], list[Check]]:
    box.requests.clear()
    rec.checks, rec.errors = [], []
    ran = run_cli(box, args)
    assert rec.errors == [], rec.errors
    assert ran.exit_code in ok, ran.err
    return actions(box.requests), list(rec.checks)


Recorded = dict[str, set[str]]


@pytest.fixture(scope="module")
def story(
    sandbox_server: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Recorded, dict[str, list[Check]], Path]:
    """Each command's actions and checks over the story: init, up from the seed, status, doctor, a converged up,
    an up that replaces the instances and updates the service, an up that renames the service (replacing it),
    drill, teardown."""
    box = sandbox_server
    box.reset()
    tmp = tmp_path_factory.mktemp("perm")
    acts: Recorded = {}
    checks: dict[str, list[Check]] = {}

    def step(command: str, args: list[str], ok: tuple[int, ...] = (0,)) -> None:
        a, c = record(box, rec, args, ok)
        acts[command] = acts.get(command, set()) | a
        checks[command] = checks.get(command, []) + c

    with Recorder(box) as rec:
        step(
            "init",
            ["--endpoint-url", box.endpoint, "init", "--output", str(tmp / "i.yaml"), "--load-balancer", "ghost-elb"],
        )
        cfg = write_config(box, tmp / "g.yaml")
        step("up", ["--config", str(cfg), "up", "--yes"])
        step("status", ["--config", str(cfg), "status"])
        step("doctor", ["--config", str(cfg), "doctor"], ok=(0, 1))  # 1: the story's Ghost uses SQLite
        # init copying from a running service reads more (its tasks, instances, groups)
        step(
            "init",
            [
                "--endpoint-url",
                box.endpoint,
                "init",
                "--output",
                str(tmp / "j.yaml"),
                "--from-service",
                "ghost-ha/ghost",
            ],
        )
        step("up", ["--config", str(cfg), "up", "--yes"])
        changed = write_config(
            box, tmp / "g2.yaml", **{"cluster.instance_type": "t3.medium", "service.health_check_grace_seconds": 90}
        )
        step("up", ["--config", str(changed), "up", "--yes"])
        renamed = write_config(
            box,
            tmp / "g4.yaml",
            **{"cluster.instance_type": "t3.medium", "service.health_check_grace_seconds": 90, "service.name": "blog"},
        )
        step("up", ["--config", str(renamed), "up", "--yes", "--replace-service"])
        # drill against the data plane: a graceful task kill and a graceful instance kill cover every call it makes
        box.start_dataplane()
        try:
            short_draining(box)
            site = write_config(
                box,
                tmp / "g3.yaml",
                site_url=box.site_url,
                **{
                    "cluster.instance_type": "t3.medium",
                    "service.health_check_grace_seconds": 90,
                    "service.name": "blog",
                },
            )
            fast = ["--json", "--connections", "1", "--rate", "2", "--yes", "--graceful"]
            step("drill", ["--config", str(site), "drill", *fast])
            step("drill", ["--config", str(site), "drill", *fast, "--kill", "instance"])
            step("drill", ["--config", str(site), "drill", "--json", "--connections", "1", "--yes"], (0, 1))
        finally:
            box.stop_dataplane()
        step("teardown", ["--config", str(renamed), "teardown", "--yes"])
    box.reset()
    return acts, checks, renamed


@pytest.fixture(scope="module")
def recorded(story: tuple[Recorded, dict[str, list[Check]], Path]) -> Recorded:
    return story[0]


def test_the_shipped_policy_is_the_one_ghostha_policy_prints() -> None:
    assert policy.document() == SHIPPED, "iam-policy.json is out of date: regenerate it from ghostha.policy.document()"


def test_recorded_actions_are_in_the_policy_and_the_policy_has_nothing_unused(recorded: Recorded) -> None:
    every = set().union(*recorded.values())
    named = policy.actions(SHIPPED)
    assert every - named == set(), "called but not in iam-policy.json"
    assert named - every - set(IMPLICIT) - set(RARE) == set(), "in iam-policy.json but never called"
    assert set(IMPLICIT) | set(RARE) <= named


def test_every_check_of_every_command_is_allowed_by_the_shipped_policy(
    story: tuple[Recorded, dict[str, list[Check]], Path],
) -> None:
    _, checks, _ = story
    for command, found in checks.items():
        denied = [str(c) for c in found if not allowed(SHIPPED, c)]
        assert denied == [], f"`ghostha {command}` would be denied: {denied}"
    every = {c.action for found in checks.values() for c in found}
    # the implicit checks the recording derives from the calls that cause them
    assert {"ecs:TagResource", "ec2:CreateTags", "ec2:RunInstances", "iam:PassRole", "ssm:GetParameters"} <= every
    scoped = [c for found in checks.values() for c in found if c.resource != "*"]
    assert any("aws:ResourceTag/ghostha:stack" in c.context for c in scoped), "no destructive call saw its tags"


def test_the_policy_for_one_stack_allows_that_stack_and_nothing_of_another(
    story: tuple[Recorded, dict[str, list[Check]], Path],
) -> None:
    _, checks, cfg_path = story
    cfg = load(str(cfg_path))
    mine = policy.document(policy.scope_of(cfg))
    for command, found in checks.items():
        denied = [str(c) for c in found if not allowed(mine, c)]
        assert denied == [], f"`ghostha {command}` would be denied by `ghostha policy`: {denied}"
    other = {f"aws:ResourceTag/{TAG_KEY}": "other-stack", f"autoscaling:ResourceTag/{TAG_KEY}": "other-stack"}
    for c in (c for found in checks.values() for c in found):
        if any(k.startswith("aws:ResourceTag/") for k in c.context):
            stolen = Check(c.action, c.resource, {**c.context, **other}, c.why)
            assert not allowed(mine, stolen), f"{stolen} allowed on another stack's resource"


# --- what ghostha must not be able to do ----------------------------------------------------------------------

R = f"arn:aws:ecs:us-east-1:{ACCOUNT}"
THEIRS: dict[str, str] = {}  # a resource ghostha did not create: no ghostha:stack tag
OURS = {f"aws:ResourceTag/{TAG_KEY}": "ghost-ha", f"autoscaling:ResourceTag/{TAG_KEY}": "ghost-ha"}
ASG = f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:1a2b:autoScalingGroupName/web-ecs"  # as ghostha names
LT = f"arn:aws:ec2:us-east-1:{ACCOUNT}:launch-template/lt-0abc"


@pytest.mark.parametrize(
    "check",
    [
        Check("ecs:DeleteCluster", f"{R}:cluster/prod", THEIRS),
        Check("ecs:DeleteService", f"{R}:service/prod/api", THEIRS),
        Check("ecs:UpdateService", f"{R}:service/prod/api", THEIRS),
        Check("ecs:StopTask", f"{R}:task/prod/0123456789abcdef0123456789abcdef", THEIRS),
        Check("ecs:DeleteTaskDefinitions", f"{R}:task-definition/api:3", THEIRS),
        Check("ecs:DeregisterContainerInstance", f"{R}:cluster/prod", THEIRS),
        Check("autoscaling:DeleteAutoScalingGroup", ASG, THEIRS),
        Check("autoscaling:UpdateAutoScalingGroup", ASG, THEIRS),
        Check("autoscaling:TerminateInstanceInAutoScalingGroup", ASG, THEIRS),
        # a group not named as ghostha names its groups, even carrying the tag; tagging a group outside a create
        Check("autoscaling:DeleteAutoScalingGroup", ASG.replace("web-ecs", "web"), OURS),
        Check("autoscaling:CreateOrUpdateTags", ASG.replace("web-ecs", "web"), {f"aws:RequestTag/{TAG_KEY}": "x"}),
        Check("ec2:DeleteLaunchTemplate", LT, THEIRS),
        Check("ec2:CreateLaunchTemplateVersion", LT, THEIRS),
        Check("ec2:RunInstances", LT, THEIRS),  # launching from someone else's template
        # creating without the tag, or tagging anything directly
        Check("ecs:CreateCluster", f"{R}:cluster/x", {}),
        Check("ecs:CreateService", f"{R}:service/x/y", {}),
        Check("autoscaling:CreateAutoScalingGroup", ASG, {}),
        Check("ec2:CreateLaunchTemplate", LT, {}),
        Check("ecs:TagResource", f"{R}:cluster/prod", {f"aws:RequestTag/{TAG_KEY}": "x"}),
        Check("ec2:CreateTags", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1", {}),
        Check("ec2:CreateTags", LT, {}),  # tagging an existing template: no ec2:CreateAction
        # passing a role to another service, creating another service's role
        Check("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/admin", {"iam:PassedToService": "lambda.amazonaws.com"}),
        Check(
            "iam:CreateServiceLinkedRole",
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/rds.amazonaws.com/AWSServiceRoleForRDS",
            {"iam:AWSServiceName": "rds.amazonaws.com"},
        ),
        # actions ghostha never calls
        Check("ec2:TerminateInstances", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1", OURS),
        Check(
            "elasticloadbalancing:DeleteTargetGroup",
            f"arn:aws:elasticloadbalancing:us-east-1:{ACCOUNT}:targetgroup/ghost-tg/1",
            {},
        ),
        Check("iam:CreateRole", "*", {}),
    ],
    ids=lambda c: f"{c.action}-{c.resource.rsplit(':', 1)[-1]}",
)
def test_what_ghostha_must_not_do_is_denied(check: Check) -> None:
    assert not allowed(SHIPPED, check)


@pytest.mark.parametrize(
    "check",
    [
        Check("ecs:DeleteCluster", f"{R}:cluster/ghost-ha", OURS),
        Check("ecs:DeregisterContainerInstance", f"{R}:cluster/ghost-ha", OURS),  # RARE: not in the story
        Check("autoscaling:DeleteAutoScalingGroup", ASG, OURS),
        # the family's task or execution role copied into the new revision; a configured service.role
        Check(
            "iam:PassRole",
            f"arn:aws:iam::{ACCOUNT}:role/ghostTaskRole",
            {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
        ),
        Check(
            "iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/ecsServiceRole", {"iam:PassedToService": "ecs.amazonaws.com"}
        ),
        Check(
            "iam:CreateServiceLinkedRole",
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/ecs.amazonaws.com/AWSServiceRoleForECS",
            {"iam:AWSServiceName": "ecs.amazonaws.com"},
        ),
        Check(
            "iam:CreateServiceLinkedRole",
            f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling",
            {"iam:AWSServiceName": "autoscaling.amazonaws.com"},
        ),
    ],
    ids=lambda c: c.action,
)
def test_the_same_calls_on_ghosthas_own_resources_are_allowed(check: Check) -> None:
    """The denials above are the tag's doing, not a missing action: the same calls on tagged resources pass."""
    assert allowed(SHIPPED, check)


def test_rare_actions_are_still_called_somewhere() -> None:
    """An action listed as rare stays in the policy only while the code still calls it."""
    code = "".join(p.read_text() for p in (ROOT / "ghostha").rglob("*.py") if "sandbox" not in p.parts)
    for action, (method, _when) in RARE.items():
        called = f".{method}(" in code or f'"{method}"' in code
        assert called, f"{action} is no longer called: drop it from iam-policy.json and RARE"


def test_readme_lists_every_action_of_each_command(recorded: Recorded) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Permissions") :]
    section = section[: section.index("\n## ", 1)]
    for command, acts in recorded.items():
        part = section[section.index(f"`ghostha {command}`") :]
        part = part[: part.index("\n- **", 1)] if "\n- **" in part[1:] else part
        missing = sorted(a for a in acts if f"`{a}`" not in part)
        assert missing == [], f"README's permissions for {command} lack {missing}"
    flat = " ".join(section.split())
    for action, why in IMPLICIT.items():
        assert f"`{action}`" in flat and why.split(",")[0] in flat, action


def test_roles_of_the_family_are_passed_to_ecs_tasks_and_allowed(box: Sandbox, tmp_path: Path) -> None:
    """A revision with a task and an execution role: registering ghostha's copy passes both roles to
    ecs-tasks.amazonaws.com (ECS guide, "Amazon ECS task execution IAM role"), which the policy allows."""
    ecs = box.client("ecs")
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    roles = {k: f"arn:aws:iam::{ACCOUNT}:role/{k}" for k in ("taskRoleArn", "executionRoleArn")}
    keep = ("family", "containerDefinitions", "networkMode", "requiresCompatibilities", "cpu", "memory")
    ecs.register_task_definition(**{k: td[k] for k in keep if k in td}, **roles)
    cfg = write_config(box, tmp_path / "g.yaml")
    with Recorder(box) as rec:
        record(box, rec, ["--config", str(cfg), "up", "--yes"])
    passed = [
        c
        for c in rec.checks
        if c.action == "iam:PassRole" and c.context.get("iam:PassedToService") != "ec2.amazonaws.com"
    ]
    assert {c.resource for c in passed} == set(roles.values())
    assert all(c.context["iam:PassedToService"] == "ecs-tasks.amazonaws.com" for c in passed)
    assert all(allowed(SHIPPED, c) for c in rec.checks), [str(c) for c in rec.checks if not allowed(SHIPPED, c)]
