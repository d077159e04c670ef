"""Eventual consistency: the sandbox's switch (reads lag behind writes for a few simulated seconds), and `up` and
`teardown` right on the first try with it on."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    ctrl_c_on_sleep,
    dynamic_ports_rule,
    dynamic_revision,
    run_cli,
    service,
    write_config,
)

LAG = 10.0


@pytest.fixture
def lagging(box: Sandbox) -> Sandbox:
    box.consistency_lag = LAG
    return box


def test_lag_is_off_by_default(box: Sandbox) -> None:
    """Without the switch a new service is described at once (the rest of the suite relies on it)."""
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    service(box, dynamic_revision(box))
    assert box.client("ecs").describe_services(cluster="ghost-ha", services=["ghost"])["services"]


def test_new_service_is_missing_for_a_moment(lagging: Sandbox) -> None:
    """ "The Amazon ECS API follows an eventual consistency model ... the result of an API command you run that
    affects your Amazon ECS resources might not be immediately visible to all subsequent commands you run."
    (Amazon ECS API Reference, RunTask / CreateService,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateService.html). DescribeServices names an
    unknown service in `failures` with reason MISSING (API_DescribeServices.html); terraform-provider-aws retries
    DescribeServices after CreateService for this reason."""
    box = lagging
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha")
    box.advance(LAG)
    service(box, dynamic_revision(box))
    resp = ecs.describe_services(cluster="ghost-ha", services=["ghost"])
    assert resp["services"] == []
    assert resp["failures"][0]["reason"] == "MISSING"
    with pytest.raises(ClientError) as exc:
        ecs.list_tasks(cluster="ghost-ha", serviceName="ghost")
    assert exc.value.response["Error"]["Code"] == "ServiceNotFoundException"
    box.advance(LAG)
    assert ecs.describe_services(cluster="ghost-ha", services=["ghost"])["services"][0]["serviceName"] == "ghost"
    assert ecs.list_tasks(cluster="ghost-ha", serviceName="ghost")["taskArns"] == []


def test_new_cluster_is_unknown_to_list_container_instances(lagging: Sandbox) -> None:
    """Same ECS eventual consistency model (Amazon ECS API Reference,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CreateCluster.html): right after CreateCluster,
    ListContainerInstances can raise ClusterNotFoundException."""
    ecs = lagging.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha")
    with pytest.raises(ClientError) as exc:
        ecs.list_container_instances(cluster="ghost-ha")
    assert exc.value.response["Error"]["Code"] == "ClusterNotFoundException"
    lagging.advance(LAG)
    assert ecs.list_container_instances(cluster="ghost-ha")["containerInstanceArns"] == []


def test_new_ingress_rule_is_not_described_yet(lagging: Sandbox) -> None:
    """ "The Amazon EC2 API follows an eventual consistency model ... the result of an API command you run that
    affects your Amazon EC2 resources might not be immediately visible to all subsequent commands you run."
    (Amazon EC2 Developer Guide, "Eventual consistency in the Amazon EC2 API",
    https://docs.aws.amazon.com/ec2/latest/devguide/eventual-consistency.html). The rule exists all the same: a
    second authorization gets InvalidPermission.Duplicate."""
    box = lagging
    assert box.seeded is not None
    ec2 = box.client("ec2")

    def group_ids() -> list[str]:
        sg = ec2.describe_security_groups(GroupIds=[box.seeded.instance_sg])["SecurityGroups"][0]  # type: ignore[union-attr]
        return [p["GroupId"] for perm in sg["IpPermissions"] for p in perm.get("UserIdGroupPairs", [])]

    ec2.authorize_security_group_ingress(GroupId=box.seeded.instance_sg, IpPermissions=dynamic_ports_rule(box))
    assert box.seeded.alb_sg not in group_ids()
    with pytest.raises(ClientError) as exc:
        ec2.authorize_security_group_ingress(GroupId=box.seeded.instance_sg, IpPermissions=dynamic_ports_rule(box))
    assert exc.value.response["Error"]["Code"] == "InvalidPermission.Duplicate"
    box.advance(LAG)
    assert box.seeded.alb_sg in group_ids()


def test_deregistered_revision_may_still_be_active_to_delete(lagging: Sandbox) -> None:
    """ "You must deregister a task definition revision before you delete it" and DeleteTaskDefinitions reports
    per-revision problems in `failures` without raising (Amazon ECS API Reference, DeleteTaskDefinitions,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteTaskDefinitions.html); with the ECS API's
    eventual consistency a revision deregistered a moment ago can still be found ACTIVE."""
    ecs = lagging.client("ecs")
    arn = dynamic_revision(lagging)
    ecs.deregister_task_definition(taskDefinition=arn)
    resp = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert resp["taskDefinitions"] == []
    assert resp["failures"][0]["arn"] == arn
    assert "ACTIVE" in resp["failures"][0]["reason"]
    lagging.advance(LAG)
    resp = ecs.delete_task_definitions(taskDefinitions=[arn])
    assert resp["failures"] == []


# --- ghostha with the switch on -------------------------------------------------------------------------------


def test_up_succeeds_with_lagging_reads(lagging: Sandbox, tmp_path: Path) -> None:
    """The new cluster unknown to ListContainerInstances, the new service MISSING and unknown to ListTasks:
    `up` retries those reads within its deadline and ends HEALTHY, without a traceback."""
    cfg = write_config(lagging, tmp_path / "g.yaml")
    ran = run_cli(lagging, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    assert "Traceback" not in ran.err
    ecs = lagging.client("ecs")
    svc = ecs.describe_services(cluster="ghost-ha", services=["ghost"])["services"][0]
    assert svc["runningCount"] == svc["desiredCount"] > 0


def test_quick_rerun_after_interrupted_up_does_not_duplicate_the_rule(lagging: Sandbox, tmp_path: Path) -> None:
    """`up` stopped right after it authorized the ALB's rule, and run again at once: the rule is not described
    yet, so `up` asks again, AWS answers InvalidPermission.Duplicate, and `up` takes it as done."""
    box = lagging
    assert box.seeded is not None
    cfg = write_config(box, tmp_path / "g.yaml")
    first = run_cli(box, ["--config", str(cfg), "up", "--yes"], sleep=ctrl_c_on_sleep(box, 1))
    assert first.exit_code != 0
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0, ran.err
    assert "Traceback" not in ran.err
    box.advance(LAG)
    sg = box.client("ec2").describe_security_groups(GroupIds=[box.seeded.instance_sg])["SecurityGroups"][0]
    pairs = [
        p["GroupId"] for perm in sg["IpPermissions"] if perm.get("FromPort") == 32768 for p in perm["UserIdGroupPairs"]
    ]
    assert pairs == [box.seeded.alb_sg]


def test_teardown_names_the_revisions_it_could_not_delete(deployed: Path, box: Sandbox) -> None:
    """DeleteTaskDefinitions answers a revision it still finds ACTIVE in `failures[]`, without raising: teardown
    says which revisions are left and why, exits 1, and a later run deletes them."""
    ecs = box.client("ecs")
    mine = [
        a
        for a in ecs.list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]
        if ecs.list_tags_for_resource(resourceArn=a)["tags"]
    ]
    assert mine
    box.consistency_lag = 1000.0  # the deregistration stays invisible to DeleteTaskDefinitions for this run
    ran = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert ran.exit_code == 1, ran.err
    assert "torn down" not in ran.out
    for arn in mine:
        assert arn.rsplit("/", 1)[-1] in ran.err
    assert "still in ACTIVE status" in ran.err
    box.advance(1000.0)
    again = run_cli(box, ["--config", str(deployed), "teardown", "--yes"])
    assert again.exit_code == 0, again.err
    assert not ecs.list_task_definitions(familyPrefix="ghost", status="INACTIVE")["taskDefinitionArns"]
