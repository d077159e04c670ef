"""The sandbox's Auto Scaling, launch-template and container-instance-draining rules, through boto3's public API.

Each test cites the AWS documentation of the behaviour it pins; the sandbox is checked against AWS, not the
other way round.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from ghostha.sandbox import scaling
from ghostha.sandbox.server import Sandbox
from tests.conftest import (
    ECS_AMI,
    capacity,
    container_instances,
    dynamic_revision,
    open_dynamic_ports,
    running_tasks,
    service,
    settle,
    user_data,
)

ECS_AMI_PARAMETER = ECS_AMI.removeprefix("resolve:ssm:")


def group(box: Sandbox, name: str = "ghost-ha-asg") -> dict[str, Any]:
    found = box.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return dict(found[0]) if found else {}


def activities(box: Sandbox, name: str = "ghost-ha-asg") -> list[dict[str, Any]]:
    auto = box.client("autoscaling")
    return list(auto.describe_scaling_activities(AutoScalingGroupName=name)["Activities"])


def instance(box: Sandbox, instance_id: str) -> dict[str, Any]:
    reservations = box.client("ec2").describe_instances(InstanceIds=[instance_id])["Reservations"]
    return dict(reservations[0]["Instances"][0])


def template_group(box: Sandbox, name: str = "lt-group", count: int = 1, **data: Any) -> str:
    """A launch template (the ECS AMI, t3.small, the story's profile, unless `data` says otherwise) and a group."""
    assert box.seeded is not None
    template = {
        "ImageId": ECS_AMI,
        "InstanceType": "t3.small",
        "UserData": user_data("ghost-ha"),
        "IamInstanceProfile": {"Name": "ecsInstanceRole"},
        **data,
    }
    box.client("ec2").create_launch_template(LaunchTemplateName=name, LaunchTemplateData=template)
    box.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=name,
        LaunchTemplate={"LaunchTemplateName": name, "Version": "$Latest"},
        MinSize=count,
        MaxSize=count,
        DesiredCapacity=count,
        VPCZoneIdentifier=",".join(box.seeded.subnets),
    )
    return name


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


# --- 1. scaling activities -------------------------------------------------------------------------------


def test_launches_are_activities_in_progress_then_successful(box: Sandbox) -> None:
    """EC2 Auto Scaling API Reference, "DescribeScalingActivities" and "Activity"
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_DescribeScalingActivities.html,
    https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_Activity.html): each launch is an activity with
    an ActivityId, Description, Cause, StartTime/EndTime, Progress and a StatusCode that is InProgress until the
    instance is in service, then Successful; the instance is Pending in the group meanwhile."""
    capacity(box)
    acts = activities(box)
    ids = {i["InstanceId"] for i in group(box)["Instances"]}
    assert len(acts) == 2
    assert {a["Description"] for a in acts} == {f"Launching a new EC2 instance: {i}" for i in ids}
    assert {a["StatusCode"] for a in acts} == {"InProgress"}
    assert all(a["AutoScalingGroupName"] == "ghost-ha-asg" and a["ActivityId"] for a in acts)
    assert all("increasing the capacity from" in a["Cause"] and "to 2." in a["Cause"] for a in acts)
    assert {i["LifecycleState"] for i in group(box)["Instances"]} == {"Pending"}
    box.advance(scaling.LAUNCH_SECONDS - 5)
    assert {a["StatusCode"] for a in activities(box)} == {"InProgress"}
    box.advance(5)
    done = activities(box)
    assert {(a["StatusCode"], a["Progress"]) for a in done} == {("Successful", 100)}
    assert all(a["EndTime"] > a["StartTime"] for a in done)
    assert {i["LifecycleState"] for i in group(box)["Instances"]} == {"InService"}


def test_activities_are_listed_newest_first(box: Sandbox) -> None:
    """API_DescribeScalingActivities: activities are returned newest first (the console's activity history)."""
    name = capacity(box)
    settle(box, 30)
    first = group(box)["Instances"][0]["InstanceId"]
    box.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=first, ShouldDecrementDesiredCapacity=False
    )
    starts = [a["StartTime"] for a in activities(box, name)]
    assert starts == sorted(starts, reverse=True)
    assert activities(box, name)[0]["Description"].startswith("Launching a new EC2 instance: i-")
    assert any(a["Description"] == f"Terminating EC2 instance: {first}" for a in activities(box, name)[:2])


def test_launch_with_a_missing_instance_profile_fails_and_is_retried(box: Sandbox) -> None:
    """API_DescribeScalingActivities ("If an attempt to launch instances failed, the StatusCode value is Failed
    ... and the StatusMessage element in the response indicates the cause of the failure") and the EC2 Auto
    Scaling User Guide, "Troubleshoot Amazon EC2 Auto Scaling"
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-instancelaunchfailure.html). The StatusMessage
    as AWS words it (quoted from a real failed activity in a public deployment README): "Value (SSMInstanceProfile)
    for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name. Launching EC2 instance
    failed."; the Description is "Launching a new EC2 instance.  Status Reason: <message>" (hashicorp/terraform#14480
    shows one). No instance is created; the group keeps trying, backing off, and launches once the profile
    exists."""
    name = capacity(box, profile="ghost-profile")
    message = (
        "Value (ghost-profile) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name. "
        "Launching EC2 instance failed."
    )
    [failed] = activities(box, name)
    assert (failed["StatusCode"], failed["StatusMessage"], failed["Progress"]) == ("Failed", message, 100)
    assert failed["Description"] == f"Launching a new EC2 instance.  Status Reason: {message}"
    assert group(box, name)["Instances"] == []
    assert box.client("ec2").describe_instances()["Reservations"] == []
    box.advance(scaling.RETRY_SECONDS - 5)
    assert len(activities(box, name)) == 1, "no retry on every pass: the group backs off"
    box.advance(5)
    assert [a["StatusCode"] for a in activities(box, name)] == ["Failed", "Failed"]
    box.advance(scaling.RETRY_SECONDS)
    assert len(activities(box, name)) == 2, "the second wait is twice as long"
    iam = box.client("iam")
    iam.create_instance_profile(InstanceProfileName="ghost-profile")
    iam.add_role_to_instance_profile(InstanceProfileName="ghost-profile", RoleName="ecsInstanceRole")
    box.advance(scaling.RETRY_SECONDS)
    assert [a["StatusCode"] for a in activities(box, name)][:2] == ["InProgress", "InProgress"]
    assert len(group(box, name)["Instances"]) == 2


def test_launch_with_a_missing_ami_fails(box: Sandbox) -> None:
    """EC2 Auto Scaling User Guide, "Troubleshoot Amazon EC2 Auto Scaling"
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ts-as-instancelaunchfailure.html): a launch whose AMI
    does not exist fails, StatusMessage "The image id '[ami-…]' does not exist. Launching EC2 instance failed."
    (the wording as AWS reports it, quoted in kubernetes-sigs/cluster-api-provider-aws's node-group tests)."""
    name = template_group(box, ImageId="ami-0123456789abcdef0")
    [failed] = activities(box, name)
    assert failed["StatusCode"] == "Failed"
    assert (
        failed["StatusMessage"]
        == "The image id '[ami-0123456789abcdef0]' does not exist. Launching EC2 instance failed."
    )
    assert group(box, name)["Instances"] == []


def test_an_update_retries_a_failed_launch_at_once(box: Sandbox) -> None:
    """A fixed launch template takes effect on the next launch (API_UpdateAutoScalingGroup: a changed launch
    template applies to instances launched afterwards). That an update retries at once rather than at the next
    backoff step is the sandbox's choice, not documented AWS behaviour."""
    name = template_group(box, ImageId="ami-0123456789abcdef0")
    box.client("ec2").create_launch_template_version(
        LaunchTemplateName=name, SourceVersion="1", LaunchTemplateData={"ImageId": ECS_AMI}
    )
    box.client("autoscaling").update_auto_scaling_group(AutoScalingGroupName=name, MinSize=1)
    box.advance(1)
    assert activities(box, name)[0]["StatusCode"] == "InProgress"
    assert len(group(box, name)["Instances"]) == 1


def test_an_instance_terminated_through_ec2_leaves_with_an_activity_and_is_replaced(box: Sandbox) -> None:
    """EC2 Auto Scaling User Guide, "Health checks for instances in an Auto Scaling group": an instance that is
    terminated or stopped is unhealthy and replaced; its activity's Cause reads "At <time> an instance was taken
    out of service in response to an EC2 health check indicating it has been terminated or stopped." (as real
    activity histories quoted in public write-ups show it)."""
    name = capacity(box)
    settle(box, 30)
    victim = group(box, name)["Instances"][0]["InstanceId"]
    box.client("ec2").terminate_instances(InstanceIds=[victim])
    box.advance(1)
    [gone] = [a for a in activities(box, name) if a["Description"] == f"Terminating EC2 instance: {victim}"]
    assert gone["StatusCode"] == "Successful"
    assert gone["Cause"].endswith("in response to an EC2 health check indicating it has been terminated or stopped.")
    assert activities(box, name)[0]["Description"].startswith("Launching a new EC2 instance: i-")
    assert victim not in {i["InstanceId"] for i in group(box, name)["Instances"]}


# --- 2. resolve:ssm image ids ----------------------------------------------------------------------------


def test_resolve_ssm_image_id_is_resolved_at_each_launch(box: Sandbox) -> None:
    """EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID": a launch template's ImageId may be
    `resolve:ssm:<parameter>`; EC2 resolves it when it launches an instance, so each launch gets the parameter's
    value at that moment and the template itself never changes."""
    ec2, ssm = box.client("ec2"), box.client("ssm")
    ecs_ami = ssm.get_parameter(Name=ECS_AMI_PARAMETER)["Parameter"]["Value"]
    other = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"] if i["ImageId"] != ecs_ami)
    ssm.put_parameter(Name="/ghostha/test/ami", Value=ecs_ami, Type="String")
    name = template_group(box, ImageId="resolve:ssm:/ghostha/test/ami")
    first = group(box, name)["Instances"][0]["InstanceId"]
    assert instance(box, first)["ImageId"] == ecs_ami
    settle(box, 30)
    ssm.put_parameter(Name="/ghostha/test/ami", Value=other, Type="String", Overwrite=True)
    box.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=first, ShouldDecrementDesiredCapacity=False
    )
    [newcomer] = [i["InstanceId"] for i in group(box, name)["Instances"] if i["InstanceId"] != first]
    assert instance(box, newcomer)["ImageId"] == other
    data = ec2.describe_launch_template_versions(LaunchTemplateName=name)["LaunchTemplateVersions"][0]
    assert data["LaunchTemplateData"]["ImageId"] == "resolve:ssm:/ghostha/test/ami"


def test_resolve_ssm_with_an_unknown_parameter_fails_the_launch(box: Sandbox) -> None:
    """EC2 User Guide, "Use a Systems Manager parameter instead of an AMI ID": the parameter must exist when the
    instance launches; a launch that cannot resolve it fails (a Failed activity, no instance)."""
    name = template_group(box, ImageId="resolve:ssm:/ghostha/no/such/parameter")
    [failed] = activities(box, name)
    assert failed["StatusCode"] == "Failed"
    assert "/ghostha/no/such/parameter" in failed["StatusMessage"]
    assert failed["StatusMessage"].endswith("Launching EC2 instance failed.")
    assert group(box, name)["Instances"] == []


# --- 3 + 4. metadata options, instance types -------------------------------------------------------------


def test_instances_inherit_the_templates_metadata_options(box: Sandbox) -> None:
    """EC2 API Reference, "LaunchTemplateInstanceMetadataOptionsRequest"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_LaunchTemplateInstanceMetadataOptionsRequest.html):
    "The metadata options for the instance" launched from the template (HttpTokens, HttpPutResponseHopLimit,
    HttpEndpoint); DescribeInstances shows them as the instance's MetadataOptions."""
    options = {"HttpTokens": "required", "HttpPutResponseHopLimit": 1, "HttpEndpoint": "enabled"}
    name = template_group(box, MetadataOptions=options)
    got = instance(box, group(box, name)["Instances"][0]["InstanceId"])["MetadataOptions"]
    assert {k: got[k] for k in options} == options
    other = template_group(box, "lt-hop-2", MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
    got = instance(box, group(box, other)["Instances"][0]["InstanceId"])["MetadataOptions"]
    assert (got["HttpTokens"], got["HttpPutResponseHopLimit"]) == ("required", 2)


def test_describe_instance_types_answers_vcpus_and_memory(box: Sandbox) -> None:
    """EC2 API Reference, "DescribeInstanceTypes": VCpuInfo.DefaultVCpus and MemoryInfo.SizeInMiB per type
    (t3.small: 2 vCPUs, 2 GiB; t3.medium: 2 vCPUs, 4 GiB; per the EC2 instance types page)."""
    types = box.client("ec2").describe_instance_types(InstanceTypes=["t3.small", "t3.medium"])["InstanceTypes"]
    got = {t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"]) for t in types}
    assert got == {"t3.small": (2, 2048), "t3.medium": (2, 4096)}


# --- 5 + 6. deleting and updating a busy group -----------------------------------------------------------


def test_force_delete_shows_delete_in_progress_until_the_instances_are_gone(box: Sandbox) -> None:
    """EC2 Auto Scaling API Reference, "DeleteAutoScalingGroup" ("The force delete operation will also terminate
    the EC2 instances") and "AutoScalingGroup" (Status: "The current state of the group when the
    DeleteAutoScalingGroup operation is in progress", which is "Delete in progress"); EC2 User Guide, "Amazon
    EC2 instance state changes": a terminating instance is shutting-down, then terminated."""
    name = capacity(box)
    settle(box, 30)
    ids = [i["InstanceId"] for i in group(box, name)["Instances"]]
    box.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    g = group(box, name)
    assert g["Status"] == "Delete in progress"
    assert {i["LifecycleState"] for i in g["Instances"]} == {"Terminating"}
    assert {instance(box, i)["State"]["Name"] for i in ids} == {"shutting-down"}
    terminating = [a for a in activities(box, name) if a["Description"].startswith("Terminating")]
    assert {a["Description"] for a in terminating} == {f"Terminating EC2 instance: {i}" for i in ids}
    assert {a["StatusCode"] for a in terminating} == {"InProgress"}
    box.advance(scaling.TERMINATE_SECONDS - 5)
    assert group(box, name)["Status"] == "Delete in progress", "still there while its instances shut down"
    box.advance(5)
    assert group(box, name) == {}
    assert {instance(box, i)["State"]["Name"] for i in ids} == {"terminated"}


def test_delete_without_force_is_refused_while_busy_or_with_instances(box: Sandbox) -> None:
    """API_DeleteAutoScalingGroup: "If the group has instances or scaling activities in progress, you must specify
    the option to force the deletion in order for it to succeed." The errors, as AWS words them (quoted in
    cloud-custodian/cloud-custodian#1689 and #1686; terraform-provider-aws retries both on delete,
    internal/service/autoscaling/group.go): ScalingActivityInProgress "You cannot delete an AutoScalingGroup
    while there are scaling activities in progress for that group." and ResourceInUse "You cannot delete an
    AutoScalingGroup while there are instances or pending Spot instance request(s) still in the group."
    Both are HTTP 400 (ScalingActivityInProgressFault, ResourceInUseFault)."""
    name = capacity(box)
    auto = box.client("autoscaling")
    with pytest.raises(ClientError) as busy:
        auto.delete_auto_scaling_group(AutoScalingGroupName=name)
    assert error(busy) == (
        "ScalingActivityInProgress",
        "You cannot delete an AutoScalingGroup while there are scaling activities in progress for that group.",
        400,
    )
    settle(box, 30)
    with pytest.raises(ClientError) as in_use:
        auto.delete_auto_scaling_group(AutoScalingGroupName=name)
    assert error(in_use) == (
        "ResourceInUse",
        "You cannot delete an AutoScalingGroup while there are instances or pending Spot instance request(s) "
        "still in the group.",
        400,
    )
    assert group(box, name)["AutoScalingGroupName"] == name


def test_force_delete_succeeds_while_instances_launch(box: Sandbox) -> None:
    """API_DeleteAutoScalingGroup: with ForceDelete the deletion succeeds even with scaling activities in
    progress; the launches are cut short and the instances terminated."""
    name = capacity(box)
    box.client("autoscaling").delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    assert group(box, name)["Status"] == "Delete in progress"
    assert {a["StatusCode"] for a in activities(box, name) if a["Description"].startswith("Launching")} == {"Cancelled"}
    settle(box, scaling.TERMINATE_SECONDS)
    assert group(box, name) == {}
    assert container_instances(box) == [], "the instances never booted far enough to register"


def test_update_is_refused_while_an_activity_is_in_progress(box: Sandbox) -> None:
    """API_UpdateAutoScalingGroup lists ScalingActivityInProgress ("The operation can't be performed because there
    are scaling activities in progress", HTTP 400); AWS words it "Scaling activity <id> is in progress and blocks
    this action." (quoted in aws/aws-cli#2226). A group being deleted cannot be updated: "The AutoScaling group may
    not be modified while it is pending delete" (quoted in yaybu/touchdown#134)."""
    name = capacity(box)
    auto = box.client("autoscaling")
    with pytest.raises(ClientError) as busy:
        auto.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=3)
    code, message, status = error(busy)
    assert (code, status) == ("ScalingActivityInProgress", 400)
    assert message.startswith("Scaling activity ") and message.endswith(" is in progress and blocks this action.")
    assert message.split()[2] in {a["ActivityId"] for a in activities(box, name)}
    settle(box, 30)
    auto.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=3)
    assert group(box, name)["MaxSize"] == 3
    auto.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
    with pytest.raises(ClientError) as deleting:
        auto.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=4)
    assert error(deleting) == (
        "ValidationError",
        "The AutoScaling group may not be modified while it is pending delete",
        400,
    )


# --- 7. terminating one instance through the group -------------------------------------------------------


def test_terminate_instance_without_decrement_replaces_it(box: Sandbox) -> None:
    """API_TerminateInstanceInAutoScalingGroup: "This call simply makes a termination request. The instance is not
    terminated immediately. When an instance is terminated, the instance status changes to terminated." With
    ShouldDecrementDesiredCapacity false the group launches a replacement."""
    name = capacity(box)
    settle(box, 30)
    victim = group(box, name)["Instances"][0]["InstanceId"]
    act = box.client("autoscaling").terminate_instance_in_auto_scaling_group(
        InstanceId=victim, ShouldDecrementDesiredCapacity=False
    )["Activity"]
    assert (act["Description"], act["StatusCode"]) == (f"Terminating EC2 instance: {victim}", "InProgress")
    assert act["Cause"].endswith(f"instance {victim} was taken out of service in response to a user request.")
    assert instance(box, victim)["State"]["Name"] == "shutting-down"
    states = {i["InstanceId"]: i["LifecycleState"] for i in group(box, name)["Instances"]}
    assert states[victim] == "Terminating" and sorted(states.values()) == ["InService", "Pending", "Terminating"]
    assert activities(box, name)[0]["Description"].startswith("Launching a new EC2 instance: i-")
    settle(box, 30)
    assert instance(box, victim)["State"]["Name"] == "terminated"
    g = group(box, name)
    assert g["DesiredCapacity"] == 2
    assert victim not in {i["InstanceId"] for i in g["Instances"]}
    assert [i["LifecycleState"] for i in g["Instances"]] == ["InService", "InService"]
    assert len(container_instances(box)) == 2, "the newcomer registered; the victim was deregistered"


def test_terminate_instance_with_decrement_shrinks_the_group(box: Sandbox) -> None:
    """API_TerminateInstanceInAutoScalingGroup: with ShouldDecrementDesiredCapacity true the desired capacity drops
    by one and nothing replaces the instance; below the minimum size AWS refuses ("Currently, desiredSize equals
    minSize (2). Terminating instance without replacement will violate group's min size constraint. Either set
    shouldDecrementDesiredCapacity flag to false or lower group's min size.")."""
    name = capacity(box)
    settle(box, 30)
    auto = box.client("autoscaling")
    victim = group(box, name)["Instances"][0]["InstanceId"]
    with pytest.raises(ClientError) as below_min:
        auto.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert error(below_min)[0] == "ValidationError"
    assert error(below_min)[1].startswith("Currently, desiredSize equals minSize (2).")
    auto.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=1)
    act = auto.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)
    assert act["Activity"]["Cause"].endswith(", shrinking the capacity from 2 to 1.")
    assert group(box, name)["DesiredCapacity"] == 1
    settle(box, 60)
    assert [i["InstanceId"] != victim for i in group(box, name)["Instances"]] == [True]
    assert sum(a["Description"].startswith("Launching") for a in activities(box, name)) == 2, "no replacement"


# --- 8. container instance draining ----------------------------------------------------------------------


def drained_stack(box: Sandbox, minimum_healthy: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Six healthy tasks, 3 + 3 on two t3.medium instances (room for 7 each); returns (to drain, other)."""
    capacity(box, instance_type="t3.medium")
    settle(box, 30)
    td = dynamic_revision(box)
    open_dynamic_ports(box)
    service(box, td)
    box.client("ecs").update_service(
        cluster="ghost-ha",
        service="ghost",
        deploymentConfiguration={"minimumHealthyPercent": minimum_healthy, "maximumPercent": 200},
    )
    settle(box, 40)
    cis = container_instances(box)
    assert [c["runningTasksCount"] for c in cis] == [3, 3]
    return cis[0], cis[1]


def drain(box: Sandbox, ci: dict[str, Any], status: str = "DRAINING") -> None:
    box.client("ecs").update_container_instances_state(
        cluster="ghost-ha", containerInstances=[ci["containerInstanceArn"]], status=status
    )


def test_draining_starts_replacements_first_then_stops_within_minimum_healthy(box: Sandbox) -> None:
    """ECS Developer Guide, "Draining Amazon ECS container instances": no new task is placed on a DRAINING
    instance; its RUNNING service tasks are replaced according to minimumHealthyPercent and maximumPercent. With a
    minimum of 100% "the service scheduler can't remove existing tasks until the replacement tasks are considered
    healthy"; maximumPercent caps how many run meanwhile."""
    leaving, staying = drained_stack(box, minimum_healthy=100)
    drain(box, leaving)
    box.advance(5)
    tasks = running_tasks(box)
    on_leaving = [t for t in tasks if t["containerInstanceArn"] == leaving["containerInstanceArn"]]
    assert len(tasks) == 9, "three replacements started before anything stopped (maximum 200%)"
    assert {t["lastStatus"] for t in on_leaving} == {"RUNNING"} and len(on_leaving) == 3
    assert all(t["containerInstanceArn"] == staying["containerInstanceArn"] for t in tasks if t not in on_leaving)
    settle(box, 40)
    tasks = running_tasks(box)
    assert len(tasks) == 6
    assert {t["containerInstanceArn"] for t in tasks} == {staying["containerInstanceArn"]}
    stopped = box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[t["taskArn"] for t in on_leaving])["tasks"]
    assert {t["desiredStatus"] for t in stopped} == {"STOPPED"}
    assert all("DRAINING" in t["stoppedReason"] for t in stopped)
    [ci] = [c for c in container_instances(box) if c["containerInstanceArn"] == leaving["containerInstanceArn"]]
    assert (ci["status"], ci["runningTasksCount"]) == ("DRAINING", 0)


def test_draining_stops_pending_tasks_at_once_and_active_makes_it_placeable_again(box: Sandbox) -> None:
    """ECS Developer Guide, "Draining Amazon ECS container instances": "Any tasks that are part of a service that
    are in a PENDING state are stopped immediately"; setting the instance ACTIVE again lets the scheduler place
    tasks on it (UpdateContainerInstancesState). AZ rebalancing is off here: with it on, ECS would also move tasks
    back to the instance's AZ by itself (tests/test_sandbox_az.py)."""
    capacity(box, instance_type="t3.medium")
    settle(box, 30)
    leaving, staying = container_instances(box)
    td = dynamic_revision(box)
    open_dynamic_ports(box)
    service(box, td, availabilityZoneRebalancing="DISABLED")
    pending = [t for t in running_tasks(box) if t["containerInstanceArn"] == leaving["containerInstanceArn"]]
    assert {t["lastStatus"] for t in pending} == {"PENDING"} and len(pending) == 3
    drain(box, leaving)
    box.advance(1)
    gone = box.client("ecs").describe_tasks(cluster="ghost-ha", tasks=[t["taskArn"] for t in pending])["tasks"]
    assert {t["lastStatus"] for t in gone} == {"STOPPED"}
    settle(box, 40)
    assert {t["containerInstanceArn"] for t in running_tasks(box)} == {staying["containerInstanceArn"]}
    drain(box, leaving, "ACTIVE")
    box.client("ecs").update_service(cluster="ghost-ha", service="ghost", desiredCount=8)
    box.advance(5)
    on_leaving = [t for t in running_tasks(box) if t["containerInstanceArn"] == leaving["containerInstanceArn"]]
    assert len(on_leaving) == 2, "placeable again: the spread puts the new tasks there"


def test_a_group_launches_from_a_new_template_version_with_user_data(box: Sandbox) -> None:
    """EC2 API reference, "CreateLaunchTemplateVersion": a version's LaunchTemplateData takes base64 UserData like
    CreateLaunchTemplate's; a group on `$Latest` launches new instances from it (EC2 Auto Scaling user guide,
    "Launch templates"). moto stored such user data unparsed and failed the launch."""
    name = template_group(box, count=1)
    settle(box, 30)  # the first launch ends
    box.client("ec2").create_launch_template_version(
        LaunchTemplateName=name,
        LaunchTemplateData={
            "ImageId": ECS_AMI,
            "IamInstanceProfile": {"Name": "ecsInstanceRole"},
            "UserData": user_data("ghost-other"),
            "InstanceType": "t3.medium",
        },
    )
    auto = box.client("autoscaling")
    auto.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=2, DesiredCapacity=2)
    settle(box, 40)
    ids = [i["InstanceId"] for i in group(box, name)["Instances"]]
    assert len(ids) == 2
    assert sorted(instance(box, i)["InstanceType"] for i in ids) == ["t3.medium", "t3.small"]
