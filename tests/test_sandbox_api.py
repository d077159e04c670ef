"""The sandbox's ECS API answers as AWS's does (issue #12, fidelity items 3, 5 and 6), checked through boto3.

Each expected value comes from AWS's documentation or, for error wording, from AWS's answers quoted in public
issue threads; where AWS's exact words could not be found, the test says so and checks only the error code.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ghostha.sandbox.server import Sandbox
from tests.conftest import capacity, container_instances, settle

HEX_ID = re.compile(r"^[0-9a-f]{32}$")


def _container(**over: Any) -> dict[str, Any]:
    return {"name": "web", "image": "ghost:5", "memoryReservation": 512, **over}


def _register_error(box: Sandbox, **kwargs: Any) -> dict[str, str]:
    params: dict[str, Any] = {"family": "ghost", "containerDefinitions": [_container()], **kwargs}
    with pytest.raises(ClientError) as err:
        box.client("ecs").register_task_definition(**params)
    return dict(err.value.response["Error"])


# --- 3. RegisterTaskDefinition rejects what AWS rejects -------------------------------------------------------


# (request, AWS's message or None where AWS's words were not found)
REJECTED: dict[str, tuple[dict[str, Any], str | None]] = {
    # "Container list cannot be empty." (AWS's answer quoted in awsdocs/aws-cloudformation-user-guide#454)
    "empty containerDefinitions": ({"containerDefinitions": []}, "Container list cannot be empty."),
    # family: "Up to 255 letters (uppercase and lowercase), numbers, underscores, and hyphens are allowed";
    # AWS's answer quoted in aws/amazon-ecs-cli#37
    "family 'bad family!'": ({"family": "bad family!"}, "Family contains invalid characters."),
    # networkMode: "The valid values are none, bridge, awsvpc, and host"; AWS's message not found
    "network mode foo": ({"networkMode": "foo"}, None),
    # name: "If you're linking multiple containers ... the name"; AWS's answer quoted in Shippable/support#2946
    "duplicate container names": (
        {"containerDefinitions": [_container(), _container()]},
        "Container names must be unique within a Task Definition.",
    ),
    # "All tasks must have at least one essential container"; AWS's answer quoted in eagletmt/hako#68
    "no essential container": (
        {"containerDefinitions": [_container(essential=False)]},
        "Task definition doesn't have any essential container.",
    ),
    # memory: "don't specify less than 6 MiB of memory for your containers"; AWS's message not found
    "memory 2": ({"containerDefinitions": [_container(memory=2, memoryReservation=None)]}, None),
    # memoryReservation: "If you specify both, memory must be greater than memoryReservation"; message not found
    "memoryReservation above memory": (
        {"containerDefinitions": [_container(memory=256, memoryReservation=512)]},
        None,
    ),
    # PortMapping.containerPort is a port (1-65535); AWS's answer for a bad one, quoted in aws/aws-cli#7288
    "container port 70000": (
        {"containerDefinitions": [_container(portMappings=[{"containerPort": 70000}])]},
        "Invalid 'containerPort' setting for container 'web'.",
    ),
    # PortMapping.hostPort with awsvpc: "hostPort can either be kept blank or be the same value as
    # containerPort"; AWS's answer quoted in aws/amazon-ecs-cli#1014
    "awsvpc with host port != container port": (
        {
            "networkMode": "awsvpc",
            "containerDefinitions": [_container(portMappings=[{"containerPort": 2368, "hostPort": 80}])],
        },
        "When networkMode=awsvpc, the host ports and container ports in port mappings must match.",
    ),
    # PortMapping.protocol: "The protocol used for the port mapping. Valid values are tcp and udp"; the API's
    # message not found (the console says "Valid values for portMapping protocol are tcp and udp")
    "protocol xyz": (
        {"containerDefinitions": [_container(portMappings=[{"containerPort": 2368, "protocol": "xyz"}])]},
        None,
    ),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_register_task_definition_rejects_what_aws_rejects(box: Sandbox, case: str) -> None:
    """RegisterTaskDefinition refuses each with a ClientException.

    AWS: "RegisterTaskDefinition" and "ContainerDefinition", "PortMapping" (Amazon ECS API Reference),
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html.
    """
    request, message = REJECTED[case]
    for c in request.get("containerDefinitions", []):
        for key in [k for k, v in c.items() if v is None]:
            del c[key]
    error = _register_error(box, **request)
    assert error["Code"] == "ClientException"
    if message is not None:
        assert error["Message"] == message
    before = box.client("ecs").list_task_definitions(familyPrefix="ghost")["taskDefinitionArns"]
    assert len(before) == 1, "nothing was registered (the seed's revision only)"


def test_register_task_definition_still_accepts_a_valid_one(box: Sandbox) -> None:
    """The rules refuse only what AWS refuses: memory equal to the reservation, awsvpc with equal ports and a
    non-essential sidecar beside an essential container are all valid (ContainerDefinition, Amazon ECS API
    Reference, https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerDefinition.html)."""
    td = box.client("ecs").register_task_definition(
        family="ghost_2-x",
        networkMode="awsvpc",
        containerDefinitions=[
            _container(memory=512, portMappings=[{"containerPort": 2368, "hostPort": 2368, "protocol": "udp"}]),
            _container(name="sidecar", essential=False),
        ],
    )["taskDefinition"]
    assert td["revision"] == 1


# --- 5. lists and lookups --------------------------------------------------------------------------------------


def _standalone(box: Sandbox, port: int | None = 0, memory: int = 256) -> str:
    mapping = [{"containerPort": 2368, "hostPort": port}] if port is not None else []
    return str(
        box.client("ecs").register_task_definition(
            family="probe",
            containerDefinitions=[_container(memoryReservation=memory, portMappings=mapping)],
        )["taskDefinition"]["taskDefinitionArn"]
    )


def _cluster_with_instances(box: Sandbox, count: int = 2) -> None:
    capacity(box, count=count)
    settle(box, 30)
    assert len(container_instances(box)) == count


def test_describe_tasks_answers_an_unknown_id_as_a_missing_failure(box: Sandbox) -> None:
    """DescribeTasks of an unknown task: no exception, a `failures` entry with reason MISSING ("The specified
    task wasn't found"). AWS: "API failure reasons" (Amazon ECS Developer Guide),
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html."""
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    unknown = "0123456789abcdef0123456789abcdef"
    out = box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[unknown])
    assert out["tasks"] == []
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]
    assert out["failures"][0]["arn"].endswith(f"task/ghost-ha/{unknown}")


def test_describe_services_and_container_instances_answer_missing_failures(box: Sandbox) -> None:
    """DescribeServices and DescribeContainerInstances of unknown ones: `failures` with reason MISSING. AWS: "API
    failure reasons" (Amazon ECS Developer Guide),
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html."""
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha")
    services = ecs.describe_services(cluster="ghost-ha", services=["nope"])
    assert services["services"] == [] and [f["reason"] for f in services["failures"]] == ["MISSING"]
    cis = ecs.describe_container_instances(cluster="ghost-ha", containerInstances=["0123456789abcdef0123456789abcdef"])
    assert cis["containerInstances"] == [] and [f["reason"] for f in cis["failures"]] == ["MISSING"]


def test_describe_tasks_refuses_more_than_100_ids(box: Sandbox) -> None:
    """DescribeTasks takes "A list of up to 100 task IDs or full ARN entries"; AWS answers more with
    InvalidParameterException "taskIds can have at most 100 items." (quoted in gchq/sleeper#555). AWS:
    "DescribeTasks" (Amazon ECS API Reference), https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DescribeTasks.html.
    """
    box.client("ecs").create_cluster(clusterName="ghost-ha")
    with pytest.raises(ClientError) as err:
        box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[f"{i:032x}" for i in range(101)])
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert err.value.response["Error"]["Message"] == "taskIds can have at most 100 items."


def test_stopped_tasks_leave_the_lists_about_an_hour_after_stopping(box: Sandbox) -> None:
    """ListTasks: "Recently stopped tasks might appear in the returned results. Currently, stopped tasks appear
    in the returned results for at least one hour." After that hour DescribeTasks answers MISSING. AWS:
    "ListTasks" (Amazon ECS API Reference), https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html.
    """
    _cluster_with_instances(box, 1)
    ecs = box.client("ecs")
    arn = ecs.run_task(cluster="ghost-ha", taskDefinition=_standalone(box))["tasks"][0]["taskArn"]
    settle(box, 15)
    ecs.stop_task(cluster="ghost-ha", task=arn, reason="done")
    settle(box, 60)
    assert ecs.list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"] == [arn]
    assert ecs.describe_tasks(cluster="ghost-ha", tasks=[arn])["tasks"][0]["lastStatus"] == "STOPPED"
    settle(box, 3000, step=300)
    assert ecs.list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"] == [arn], "still within the hour"
    settle(box, 600, step=300)
    assert ecs.list_tasks(cluster="ghost-ha", desiredStatus="STOPPED")["taskArns"] == []
    gone = ecs.describe_tasks(cluster="ghost-ha", tasks=[arn])
    assert gone["tasks"] == [] and gone["failures"] == [{"arn": arn, "reason": "MISSING"}]


def test_terminated_instance_leaves_an_inactive_container_instance(box: Sandbox) -> None:
    """A terminated instance's container instance is deregistered: it leaves ListContainerInstances (whose status
    filter has no INACTIVE) and DescribeContainerInstances shows it INACTIVE. AWS: "DeregisterContainerInstance"
    ("If you terminate a running container instance, Amazon ECS automatically deregisters the instance from your
    cluster") and "ContainerInstance" (status "ACTIVE, INACTIVE, DEREGISTERING, or DRAINING") (Amazon ECS API
    Reference), https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeregisterContainerInstance.html,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ContainerInstance.html. How long AWS keeps it
    describable is not documented; the sandbox keeps it an hour."""
    _cluster_with_instances(box, 1)
    ecs = box.client("ecs")
    ci = container_instances(box)[0]
    box.client("autoscaling").update_auto_scaling_group(
        AutoScalingGroupName="ghost-ha-asg", MinSize=0, MaxSize=0, DesiredCapacity=0
    )
    settle(box, 60)
    assert ecs.list_container_instances(cluster="ghost-ha")["containerInstanceArns"] == []
    described = ecs.describe_container_instances(cluster="ghost-ha", containerInstances=[ci["containerInstanceArn"]])
    assert [c["status"] for c in described["containerInstances"]] == ["INACTIVE"]
    assert described["containerInstances"][0]["ec2InstanceId"] == ci["ec2InstanceId"]
    assert ecs.describe_clusters(clusters=["ghost-ha"])["clusters"][0]["registeredContainerInstancesCount"] == 0
    settle(box, 3600, step=600)
    later = ecs.describe_container_instances(cluster="ghost-ha", containerInstances=[ci["containerInstanceArn"]])
    assert later["containerInstances"] == [] and [f["reason"] for f in later["failures"]] == ["MISSING"]


def test_garbage_next_token_is_an_invalid_parameter(box: Sandbox) -> None:
    """A nextToken AWS did not hand out is refused with InvalidParameterException, not a server error ("This
    token should be treated as an opaque identifier"; the API's exact message was not found). AWS: "ListTasks"
    and "Common Errors" (Amazon ECS API Reference),
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListTasks.html."""
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha")
    for call in (ecs.list_tasks, ecs.list_container_instances):
        with pytest.raises(ClientError) as err:
            call(cluster="ghost-ha", nextToken="garbage!")
        assert err.value.response["Error"]["Code"] == "InvalidParameterException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_max_results_above_100_is_refused_and_pages_chain(box: Sandbox) -> None:
    """maxResults: "This value can be between 1 and 100"; above is an InvalidParameterException (its message was
    not found). Pages of maxResults chain by nextToken. AWS: "ListContainerInstances" (Amazon ECS API Reference),
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListContainerInstances.html."""
    _cluster_with_instances(box, 2)
    ecs = box.client("ecs")
    with pytest.raises(ClientError) as err:
        ecs.list_container_instances(cluster="ghost-ha", maxResults=200)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    first = ecs.list_container_instances(cluster="ghost-ha", maxResults=1)
    second = ecs.list_container_instances(cluster="ghost-ha", maxResults=1, nextToken=first["nextToken"])
    assert "nextToken" not in second
    assert {*first["containerInstanceArns"], *second["containerInstanceArns"]} == {
        ci["containerInstanceArn"] for ci in container_instances(box)
    }


def test_task_and_container_instance_ids_are_32_hex_characters(box: Sandbox) -> None:
    """Task and container-instance ids are 32 hex characters without dashes, as in AWS's own example output:
    "task/MyCluster/4d590253bb114126b7afa7b58EXAMPLE", "container-instance/test/025c7e2c5e054a6790a29fc1fEXAMPLE"
    (the last 7 characters masked). AWS: "describe-tasks" (AWS CLI Command Reference, example 1),
    https://docs.aws.amazon.com/cli/latest/reference/ecs/describe-tasks.html."""
    _cluster_with_instances(box, 1)
    ci = container_instances(box)[0]
    assert HEX_ID.match(ci["containerInstanceArn"].rsplit("/", 1)[-1])
    task = box.client("ecs").run_task(cluster="ghost-ha", taskDefinition=_standalone(box))["tasks"][0]
    assert HEX_ID.match(task["taskArn"].rsplit("/", 1)[-1])


# --- 6. RunTask goes through the scheduler -------------------------------------------------------------------


def test_run_task_never_puts_two_host_port_80_tasks_on_one_instance(box: Sandbox) -> None:
    """Two tasks mapping host port 80 cannot share an instance; RunTask places them on two instances and, when no
    instance is left, answers a failure with reason RESOURCE:PORTS and the container instance's ARN ("For
    RESOURCE:PORTS ... the ports required by the task are already in use on the container instance"). AWS: "API
    failure reasons" (Amazon ECS Developer Guide),
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html."""
    _cluster_with_instances(box, 2)
    ecs = box.client("ecs")
    td = _standalone(box, port=80)
    first = ecs.run_task(cluster="ghost-ha", taskDefinition=td, count=2)
    assert first["failures"] == []
    assert len({t["containerInstanceArn"] for t in first["tasks"]}) == 2
    third = ecs.run_task(cluster="ghost-ha", taskDefinition=td)
    assert third["tasks"] == []
    assert sorted(third["failures"], key=lambda f: f["arn"]) == sorted(
        ({"arn": ci["containerInstanceArn"], "reason": "RESOURCE:PORTS"} for ci in container_instances(box)),
        key=lambda f: f["arn"],
    )
    settle(box, 15)
    running = ecs.describe_tasks(cluster="ghost-ha", tasks=[t["taskArn"] for t in first["tasks"]])["tasks"]
    assert {t["lastStatus"] for t in running} == {"RUNNING"}
    assert {t["containers"][0]["networkBindings"][0]["hostPort"] for t in running} == {80}


def test_run_task_reports_resource_memory_when_nothing_fits(box: Sandbox) -> None:
    """A task reserving more memory than any instance has left fails with RESOURCE:MEMORY per container instance
    ("the amount of memory requested by the task isn't available on the given container instance"). AWS: "API
    failure reasons" (Amazon ECS Developer Guide),
    https://docs.aws.amazon.com/AmazonECS/latest/developerguide/api_failures_messages.html."""
    _cluster_with_instances(box, 1)
    ecs = box.client("ecs")
    big = _standalone(box, port=None, memory=1500)  # a t3.small registers 1900 MiB
    assert len(ecs.run_task(cluster="ghost-ha", taskDefinition=big)["tasks"]) == 1
    out = ecs.run_task(cluster="ghost-ha", taskDefinition=big)
    ci = container_instances(box)[0]
    assert out["tasks"] == []
    assert out["failures"] == [{"arn": ci["containerInstanceArn"], "reason": "RESOURCE:MEMORY"}]


def test_run_task_takes_dynamic_host_ports_and_a_family_group(box: Sandbox) -> None:
    """Host port 0 in bridge mode takes a port from the ephemeral range, and a standalone task's group is
    `family:<family>` by default. AWS: "PortMapping" and "RunTask" (group: "The task group ... family:my-family-name")
    (Amazon ECS API Reference), https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PortMapping.html,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html."""
    _cluster_with_instances(box, 1)
    ecs = box.client("ecs")
    tasks = ecs.run_task(cluster="ghost-ha", taskDefinition=_standalone(box, port=0), count=2)["tasks"]
    ports = {t["containers"][0]["networkBindings"][0]["hostPort"] for t in tasks}
    assert len(ports) == 2 and all(32768 <= p <= 60999 for p in ports)
    assert {t["group"] for t in tasks} == {"family:probe"}


def test_run_task_on_a_cluster_without_instances_is_an_invalid_parameter(box: Sandbox) -> None:
    """RunTask (EC2) on a cluster with no container instance: InvalidParameterException "No Container Instances
    were found in your cluster." (AWS's answer quoted in aws/amazon-ecs-cli#1122 and
    jenkinsci/amazon-ecs-plugin#217; moto answers an HTTP 500). AWS: "RunTask" (Amazon ECS API Reference),
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html."""
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="ghost-ha")
    with pytest.raises(ClientError) as err:
        ecs.run_task(cluster="ghost-ha", taskDefinition=_standalone(box), launchType="EC2")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    assert err.value.response["Error"]["Message"] == "No Container Instances were found in your cluster."


def test_list_services_hides_a_deleted_service_and_pages_by_ten(box: Sandbox) -> None:
    """ECS API reference, DeleteService: once deleted, the service moves from ACTIVE to DRAINING and "is no longer
    visible in the console or in the ListServices API operation" (it stays describable: DRAINING, then INACTIVE);
    ListServices: "If this parameter isn't used, then ListServices returns up to 10 results"
    (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeleteService.html,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ListServices.html)."""
    ecs = box.client("ecs")
    ecs.create_cluster(clusterName="many")
    for i in range(12):
        ecs.create_service(cluster="many", serviceName=f"s{i:02d}", taskDefinition="ghost", desiredCount=0)
    first = ecs.list_services(cluster="many")
    assert len(first["serviceArns"]) == 10 and "nextToken" in first
    rest = ecs.list_services(cluster="many", nextToken=first["nextToken"])
    assert len(rest["serviceArns"]) == 2 and "nextToken" not in rest
    ecs.delete_service(cluster="many", service="s00", force=True)
    listed = ecs.list_services(cluster="many", maxResults=100)["serviceArns"]
    assert len(listed) == 11 and not any(a.endswith("/s00") for a in listed)
    described = ecs.describe_services(cluster="many", services=["s00"])["services"]
    assert described[0]["status"] in ("DRAINING", "INACTIVE")
