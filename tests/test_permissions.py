"""The IAM actions each command calls, recorded from the sandbox's request log, against the shipped policy and the
README's permissions section (plus the permissions AWS checks that no API call shows)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, short_draining, write_config

ROOT = Path(__file__).resolve().parent.parent
# request signing names that differ from IAM's service prefixes
PREFIX = {"tagging": "tag", "elasticloadbalancing": "elasticloadbalancing"}
# AWS checks these without an API call of their own: each with why (README "Permissions")
IMPLICIT = {
    "ecs:TagResource": "CreateCluster, CreateService and RegisterTaskDefinition with tags",
    "iam:PassRole": "the launch template's instance profile, when the group launches instances",
    "iam:CreateServiceLinkedRole": "Auto Scaling creates its service-linked role on first use",
}
# called only on a path the story above does not take: action → (the boto3 method, when)
RARE = {
    "ecs:DeregisterContainerInstance": ("deregister_container_instance", "teardown, for an instance left registered"),
    "ecs:ListTaskDefinitionFamilies": ("list_task_definition_families", "init, to name the families to choose from"),
}


def actions(requests: list[tuple[str, str]]) -> set[str]:
    return {f"{PREFIX.get(service, service)}:{action}" for service, action in requests}


def record(box: Sandbox, args: list[str], ok: tuple[int, ...] = (0,)) -> set[str]:
    box.requests.clear()
    ran = run_cli(box, args)
    assert ran.exit_code in ok, ran.err
    return actions(box.requests)


@pytest.fixture(scope="module")
def recorded(sandbox_server: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> dict[str, set[str]]:
    """Each command's actions over the story: init, up from the seed, status, a converged up, an up that replaces
    the instances and updates the service, teardown."""
    box = sandbox_server
    box.reset()
    tmp = tmp_path_factory.mktemp("perm")
    out: dict[str, set[str]] = {}
    out["init"] = record(
        box, ["--endpoint-url", box.endpoint, "init", "--output", str(tmp / "i.yaml"), "--load-balancer", "ghost-elb"]
    )
    cfg = write_config(box, tmp / "g.yaml")
    out["up"] = record(box, ["--config", str(cfg), "up", "--yes"])
    out["status"] = record(box, ["--config", str(cfg), "status"])
    out["doctor"] = record(box, ["--config", str(cfg), "doctor"], ok=(0, 1))  # 1: the story's Ghost uses SQLite
    # init copying from a running service reads more (its tasks, instances, groups); a family that does not
    # exist makes it list the families
    out["init"] |= record(
        box,
        ["--endpoint-url", box.endpoint, "init", "--output", str(tmp / "j.yaml"), "--from-service", "ghost-ha/ghost"],
    )
    out["up"] |= record(box, ["--config", str(cfg), "up", "--yes"])
    changed = write_config(
        box, tmp / "g2.yaml", **{"cluster.instance_type": "t3.medium", "service.health_check_grace_seconds": 90}
    )
    out["up"] |= record(box, ["--config", str(changed), "up", "--yes"])
    # drill against the data plane: a graceful task kill and a graceful instance kill cover every call it makes
    box.start_dataplane()
    try:
        short_draining(box)
        site = write_config(
            box,
            tmp / "g3.yaml",
            site_url=box.site_url,
            **{"cluster.instance_type": "t3.medium", "service.health_check_grace_seconds": 90},
        )
        fast = ["--json", "--connections", "1", "--rate", "2", "--yes", "--graceful"]
        out["drill"] = record(box, ["--config", str(site), "drill", *fast])
        out["drill"] |= record(box, ["--config", str(site), "drill", *fast, "--kill", "instance"])
        out["drill"] |= record(box, ["--config", str(site), "drill", "--json", "--connections", "1", "--yes"], (0, 1))
    finally:
        box.stop_dataplane()
    out["teardown"] = record(box, ["--config", str(changed), "teardown", "--yes"])
    box.reset()
    return out


def policy_actions() -> set[str]:
    doc = json.loads((ROOT / "iam-policy.json").read_text())
    found: set[str] = set()
    for st in doc["Statement"]:
        acts = st["Action"]
        found |= {acts} if isinstance(acts, str) else set(acts)
    return found


def test_recorded_actions_are_in_the_policy_and_the_policy_has_nothing_unused(recorded: dict[str, set[str]]) -> None:
    every = set().union(*recorded.values())
    policy = policy_actions()
    assert every - policy == set(), "called but not in iam-policy.json"
    assert policy - every - set(IMPLICIT) - set(RARE) == set(), "in iam-policy.json but never called"
    assert set(IMPLICIT) | set(RARE) <= policy


def test_rare_actions_are_still_called_somewhere() -> None:
    """An action listed as rare stays in the policy only while the code still calls it."""
    code = "".join(p.read_text() for p in (ROOT / "ghostha").rglob("*.py") if "sandbox" not in p.parts)
    for action, (method, _when) in RARE.items():
        called = f".{method}(" in code or f'"{method}"' in code
        assert called, f"{action} is no longer called: drop it from iam-policy.json and RARE"


def test_readme_lists_every_action_of_each_command(recorded: dict[str, set[str]]) -> None:
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
