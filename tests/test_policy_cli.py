"""`ghostha policy`: the IAM policy for the config's stack, and its stack-agnostic form (iam-policy.json)."""

from __future__ import annotations

import json
from pathlib import Path

from ghostha import policy
from ghostha.config import load
from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, write_config
from tests.test_policy_eval import Check, allowed

ROOT = Path(__file__).resolve().parent.parent


def test_policy_for_the_configs_stack(box: Sandbox, tmp_path: Path) -> None:
    cfg_path = write_config(box, tmp_path / "g.yaml", region="eu-west-1", **{"cluster.name": "blog-cluster"})
    ran = run_cli(box, ["--config", str(cfg_path), "policy"])
    assert ran.exit_code == 0, ran.err
    doc = json.loads(ran.out)
    assert doc == policy.document(policy.scope_of(load(str(cfg_path))))
    text = json.dumps(doc)
    assert "arn:aws:ecs:eu-west-1:*:cluster/blog-cluster" in text
    assert "arn:aws:autoscaling:eu-west-1:*:autoScalingGroup:*:autoScalingGroupName/ghost-ha-ecs" in text
    assert '"aws:ResourceTag/ghostha:stack": "ghost-ha"' in text
    assert '"StringLike"' not in text, "one stack: every tag condition names it exactly"
    mine = {"aws:ResourceTag/ghostha:stack": "ghost-ha"}
    cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/blog-cluster"
    assert allowed(doc, Check("ecs:DeleteCluster", cluster, mine))
    assert not allowed(doc, Check("ecs:DeleteCluster", "arn:aws:ecs:eu-west-1:123456789012:cluster/other", mine))
    assert not allowed(doc, Check("ecs:DeleteCluster", cluster.replace("eu-west-1", "us-east-1"), mine))
    # ghostha's rule is revoked from whichever group holds it (also one the config no longer names)
    old_group = "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0old"
    assert allowed(doc, Check("ec2:RevokeSecurityGroupIngress", old_group, {}))
    assert not allowed(doc, Check("ec2:AuthorizeSecurityGroupIngress", old_group, {}))
    # tagging only as part of a creation, with the stack's tag: both conditions hold together
    tag = {"aws:RequestTag/ghostha:stack": "ghost-ha"}
    template = "arn:aws:ec2:eu-west-1:123456789012:launch-template/lt-1"
    assert allowed(doc, Check("ecs:TagResource", cluster, tag | {"ecs:CreateAction": "CreateCluster"}))
    assert not allowed(doc, Check("ecs:TagResource", cluster, tag))
    assert allowed(doc, Check("ec2:CreateTags", template, tag | {"ec2:CreateAction": "CreateLaunchTemplate"}))
    assert not allowed(doc, Check("ec2:CreateTags", template, tag))
    assert not allowed(doc, Check("ec2:CreateTags", template, {"ec2:CreateAction": "CreateLaunchTemplate"}))


def test_region_from_the_command_line_wins(box: Sandbox, tmp_path: Path) -> None:
    cfg_path = write_config(box, tmp_path / "g.yaml", region="eu-west-1")
    ran = run_cli(box, ["--config", str(cfg_path), "--region", "ap-south-1", "policy"])
    assert ran.exit_code == 0, ran.err
    assert ":ap-south-1:" in ran.out and ":eu-west-1:" not in ran.out


def test_any_stack_prints_the_shipped_file_without_a_config(box: Sandbox, tmp_path: Path) -> None:
    ran = run_cli(box, ["--config", str(tmp_path / "missing.yaml"), "policy", "--any-stack"])
    assert ran.exit_code == 0, ran.err
    assert json.loads(ran.out) == json.loads((ROOT / "iam-policy.json").read_text())


def test_without_a_config_it_is_a_config_error(box: Sandbox, tmp_path: Path) -> None:
    ran = run_cli(box, ["--config", str(tmp_path / "missing.yaml"), "policy"])
    assert ran.exit_code == 2
    assert ran.err.startswith("error: config file") and "Traceback" not in ran.err
