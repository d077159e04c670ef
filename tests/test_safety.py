"""Safe defaults (issue #12): IMDSv2 with hop limit 1 on every instance, reserved `aws:` tags never copied into
the new revision, and secret-looking environment values never shown in any output."""

from __future__ import annotations

from pathlib import Path

from ghostha.sandbox.seed import ghost_container
from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, write_config

SECRET = "hunter2-s3cr3t-value"


def test_instances_require_imdsv2_with_hop_limit_1(box: Sandbox, deployed: Path) -> None:
    """EC2 user guide, "Configure the instance metadata options": HttpTokens required is IMDSv2 only; a hop
    limit of 1 keeps bridge-mode containers (one hop further) from reading the instance role's credentials."""
    ec2 = box.client("ec2")
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:ghostha:stack", "Values": ["ghost-ha"]}])
    instances = [i for r in reservations["Reservations"] for i in r["Instances"]]
    assert len(instances) == 2
    for i in instances:
        md = i["MetadataOptions"]
        assert (md["HttpTokens"], md["HttpPutResponseHopLimit"]) == ("required", 1), md


def _revision_with(box: Sandbox, tags: list[dict[str, str]], env: list[dict[str, str]]) -> None:
    ecs = box.client("ecs")
    url = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]["containerDefinitions"][0]
    container = ghost_container(next(e["value"] for e in url["environment"] if e["name"] == "url"))
    container["environment"] = container["environment"] + env
    ecs.register_task_definition(family="ghost", networkMode="bridge", containerDefinitions=[container], tags=tags)


def test_reserved_aws_tags_are_not_copied_into_the_new_revision(box: Sandbox, tmp_path: Path) -> None:
    """ECS API reference, "RegisterTaskDefinition", tags: "Do not use aws:, AWS:, or any upper or lowercase
    combination of such as a prefix for either keys or values as it is reserved for Amazon Web Services use."
    Revisions made by CloudFormation carry such tags; a copy that sent them would be refused."""
    _revision_with(
        box,
        [{"key": "aws:cloudformation:stack-name", "value": "blog"}, {"key": "team", "value": "web"}],
        [],
    )
    cfg = write_config(box, tmp_path / "g.yaml")
    assert run_cli(box, ["--config", str(cfg), "up", "--yes"]).exit_code == 0
    tags = box.client("ecs").describe_task_definition(taskDefinition="ghost", include=["TAGS"])["tags"]
    keys = {t["key"] for t in tags}
    assert "team" in keys and "ghostha:stack" in keys
    assert not any(k.lower().startswith("aws:") for k in keys)


def test_secret_environment_values_never_appear_in_any_output(box: Sandbox, tmp_path: Path) -> None:
    _revision_with(
        box,
        [],
        [
            {"name": "database__connection__password", "value": SECRET},
            {"name": "mail__options__auth__pass", "value": SECRET},
            {"name": "API_TOKEN", "value": SECRET},
        ],
    )
    cfg = write_config(box, tmp_path / "g.yaml")
    outputs = []
    for args in (
        ["up", "--dry-run"],
        ["-v", "up", "--yes"],
        ["status"],
        ["status", "--json"],
        ["doctor"],
        ["doctor", "--json"],
        ["teardown", "--dry-run"],
    ):
        ran = run_cli(box, ["--config", str(cfg), *args])
        outputs.append(ran.out + ran.err)
        assert ran.exit_code in (0, 1), ran.out + ran.err
    assert all(SECRET not in text for text in outputs)
