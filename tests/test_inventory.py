"""Teardown's inventory of task-definition revisions: found by tag, without describing every revision."""

from __future__ import annotations

from pathlib import Path

from ghostha.sandbox.server import Sandbox
from tests.conftest import copy_revision, run_cli


def test_tagging_api_finds_tagged_revisions_despite_an_untagged_cluster(box: Sandbox) -> None:
    """GetResources with ResourceTypeFilters and TagFilters returns the tagged resources of those types
    (Resource Groups Tagging API Reference, GetResources,
    https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html). moto's
    GetResources fails on an untagged ECS cluster only when asked for every type; filtered by
    ecs:task-definition it answers."""
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="untagged")
    td = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]
    arn = ecs.register_task_definition(
        family="ghost",
        containerDefinitions=td["containerDefinitions"],
        tags=[{"key": "ghostha:stack", "value": "s1"}],
    )["taskDefinition"]["taskDefinitionArn"]
    got = box.client("resourcegroupstaggingapi").get_resources(
        ResourceTypeFilters=["ecs:task-definition"], TagFilters=[{"Key": "ghostha:stack", "Values": ["s1"]}]
    )["ResourceTagMappingList"]
    assert [r["ResourceARN"] for r in got] == [arn]


def test_teardown_does_not_describe_each_revision_of_a_long_history(deployed: Path, box: Sandbox) -> None:
    """A family with ~30 revisions (a long CI history): teardown's inventory finds ghostha's revision by tag and
    describes none of the revisions for their tags; it still deletes only ghostha's and leaves the others."""
    ecs = box.client("ecs")
    latest = ecs.describe_task_definition(taskDefinition="ghost")["taskDefinition"]["taskDefinitionArn"]
    for _ in range(28):
        latest = copy_revision(box, latest)
    old = ecs.list_task_definitions(familyPrefix="ghost", status="INACTIVE")["taskDefinitionArns"]
    ours = [
        a
        for a in ecs.list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]
        if ecs.list_tags_for_resource(resourceArn=a)["tags"]
    ]
    assert len(ours) == 1 and not old
    total = len(ecs.list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"])
    assert total >= 30
    box.requests.clear()
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 0, ran.err
    described = [r for r in box.requests if r[1] == "DescribeTaskDefinition"]
    assert described == []
    left = ecs.list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]
    assert len(left) == total - 1 and ours[0] not in left
    assert ours[0].rsplit("/", 1)[-1] in ran.out
