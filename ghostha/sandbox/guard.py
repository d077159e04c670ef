"""The ECS API as AWS answers it where moto answers otherwise: patches to moto's ECS request handlers.

- CreateService keeps what moto drops (placement strategy, deployment configuration, grace period, managed tags),
  rejects a second ACTIVE service of the same name, and checks the target group as AWS does (exists, type
  `instance` for bridge mode, attached to a load balancer). Its deployment starts IN_PROGRESS with no tasks.
- UpdateService rolls out: a new task definition, new load balancers (or forceNewDeployment) start a new PRIMARY
  deployment.
- DeleteService leaves the service DRAINING (the simulation makes it INACTIVE once its tasks stopped).
- DeleteCluster is refused while services, container instances or tasks remain.
- ListServices lists ACTIVE services only, 10 to a page unless asked for more.
- ListTasks honours serviceName and lists RUNNING tasks unless asked otherwise; it and
  ListContainerInstances answer in pages of 100, as AWS does (ecs_api.page).
- More of the ECS API (validation, lookups, ids, RunTask) is in ecs_api.py.
- With the eventual-consistency switch on (lag.py), ListTasks(serviceName) and ListContainerInstances do not
  know a service or cluster created a moment ago.
- StopTask stops through the simulation (reason, targets draining); RegisterContainerInstance does not
  register the same EC2 instance twice.
"""

from __future__ import annotations

import json
from typing import Any

from moto.ecs import responses as ecs_responses
from moto.ecs.exceptions import (
    ClusterNotFoundException,
    ECSException,
    InvalidParameterException,
    ServiceNotFoundException,
)
from moto.elbv2.models import elbv2_backends

from ghostha.sandbox import ecs_api, lag
from ghostha.sandbox.hooks import replace_handlers
from ghostha.sandbox.sim import Simulator, new_deployment

Response = ecs_responses.EC2ContainerServiceResponse
_original: dict[str, Any] = {}
ClientException = ecs_api.ClientException
_sim = ecs_api._sim  # the one simulation both modules act through (ecs_api.install sets it)


class ClusterContainsServicesException(ECSException):
    def __init__(self) -> None:
        super().__init__(
            "ClusterContainsServicesException",
            "The Cluster cannot be deleted while Services are active.",
        )


class ClusterContainsContainerInstancesException(ECSException):
    def __init__(self) -> None:
        super().__init__(
            "ClusterContainsContainerInstancesException",
            "The Cluster cannot be deleted while Container Instances are active or draining.",
        )


class ClusterContainsTasksException(ECSException):
    def __init__(self) -> None:
        super().__init__("ClusterContainsTasksException", "The Cluster cannot be deleted while Tasks are active.")


class ServiceNotActiveException(ECSException):
    def __init__(self) -> None:
        super().__init__("ServiceNotActiveException", "Service was not ACTIVE.")


def _check_target_groups(self: Any, load_balancers: list[dict[str, Any]], task_definition: str | None) -> None:
    elbv2 = elbv2_backends[self.current_account][self.region]
    network_mode = "bridge"
    if task_definition:
        network_mode = self.ecs_backend.describe_task_definition(task_definition).network_mode or "bridge"
    for lb in load_balancers or []:
        arn = lb.get("targetGroupArn")
        if not arn:
            continue
        tg = elbv2.target_groups.get(arn)
        if tg is None:
            raise InvalidParameterException(f"Unable to describe target group with ARN {arn}.")
        if network_mode == "bridge" and tg.target_type != "instance":
            raise InvalidParameterException(
                f"The provided target group {arn} has target type {tg.target_type}, which is incompatible with "
                "the bridge network mode specified in the task definition."
            )
        if not tg.load_balancer_arns:
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not have an associated load balancer."
            )


def _binpack_first(strategy: list[dict[str, Any]]) -> bool:
    return bool(strategy) and strategy[0].get("type") == "binpack"


def create_service(self: Any) -> Any:
    cluster = self.ecs_backend._get_cluster(self._get_param("cluster", "default"))
    name = self._get_param("serviceName")
    for svc in self.ecs_backend.services.values():
        if svc.cluster_name == cluster.name and svc.name == name and svc.status in ("ACTIVE", "DRAINING"):
            raise InvalidParameterException("Creation of service was not idempotent.")
    _check_target_groups(self, self._get_param("loadBalancers"), self._get_param("taskDefinition"))
    result = _original["create_service"](self)
    svc = self.ecs_backend._get_service(cluster.name, name)
    clock = _sim().clock
    svc.created_at = clock.now()
    svc.placement_strategy = self._get_param("placementStrategy") or []
    svc.placement_constraints = self._get_param("placementConstraints") or []
    dc = self._get_param("deploymentConfiguration") or {}
    svc.deployment_configuration = {
        "maximumPercent": dc.get("maximumPercent", 200),
        "minimumHealthyPercent": dc.get("minimumHealthyPercent", 100),
        "deploymentCircuitBreaker": dc.get("deploymentCircuitBreaker", {"enable": False, "rollback": False}),
    }
    svc.health_check_grace_period_seconds = self._get_param("healthCheckGracePeriodSeconds") or 0
    svc.enable_ecs_managed_tags = bool(self._get_param("enableECSManagedTags"))
    # CreateService: "when no value is specified for AvailabilityZoneRebalancing, Amazon ECS defaults the value to
    # ENABLED" (services that are not compatible, such as binpack ones, default to DISABLED)
    svc.availability_zone_rebalancing = self._get_param("availabilityZoneRebalancing") or (
        "DISABLED" if _binpack_first(svc.placement_strategy) else "ENABLED"
    )
    svc.running_count = svc.pending_count = 0
    svc.events = []
    svc.deployments = [new_deployment(svc, svc.task_definition, clock)] if svc.task_definition else []
    if svc.deployments:
        svc.deployments[0]["rolloutStateReason"] = "ECS deployment detected a new primary deployment."
    svc.sim_steady = False
    return result


def update_service(self: Any) -> Any:
    p = self._get_params()
    svc = self.ecs_backend._get_service(p.get("cluster", "default"), str(p["service"]).split("/")[-1])
    if svc.status != "ACTIVE":
        raise ServiceNotActiveException()
    clock = _sim().clock
    if p.get("desiredCount") is not None:
        svc.desired_count = int(p["desiredCount"])
    if p.get("deploymentConfiguration"):
        merged = dict(getattr(svc, "deployment_configuration", {}) or {})
        merged.update(p["deploymentConfiguration"])
        svc.deployment_configuration = merged
    if p.get("healthCheckGracePeriodSeconds") is not None:
        svc.health_check_grace_period_seconds = int(p["healthCheckGracePeriodSeconds"])
    if p.get("placementStrategy") is not None:
        svc.placement_strategy = p["placementStrategy"]
    if p.get("availabilityZoneRebalancing"):
        # UpdateService: without a value the service keeps its own; the change "doesn't trigger a new deployment"
        svc.availability_zone_rebalancing = p["availabilityZoneRebalancing"]
    new_td = svc.task_definition
    if p.get("taskDefinition"):
        new_td = self.ecs_backend.describe_task_definition(p["taskDefinition"]).arn
    new_lbs = False
    if p.get("loadBalancers") is not None and p["loadBalancers"] != svc.load_balancers:
        # UpdateService: "When you add, update, or remove a load balancer configuration, Amazon ECS starts new
        # tasks with the updated Elastic Load Balancing configuration, and then stops the old tasks"
        _check_target_groups(self, p["loadBalancers"], new_td)
        svc.load_balancers = p["loadBalancers"]
        new_lbs = True
    if new_td != svc.task_definition or p.get("forceNewDeployment") or new_lbs:
        for dep in svc.deployments:
            dep["status"] = "ACTIVE"
        svc.task_definition = new_td
        svc.deployments.insert(0, new_deployment(svc, new_td, clock))
        svc.sim_steady = False
    elif svc.deployments:
        svc.deployments[0]["desiredCount"] = svc.desired_count
        svc.sim_steady = False
    return ecs_responses.ActionResult({"service": svc})


def delete_service(self: Any) -> Any:
    result = _original["delete_service"](self)
    svc = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("service"))
    svc.status = "DRAINING"
    svc.desired_count = 0
    return result


def delete_cluster(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    if any(s.cluster_name == cluster.name and s.status in ("ACTIVE", "DRAINING") for s in backend.services.values()):
        raise ClusterContainsServicesException()
    if backend.container_instances.get(cluster.name):
        raise ClusterContainsContainerInstancesException()
    if any(t.last_status != "STOPPED" for t in backend.tasks.get(cluster.name, {}).values()):
        raise ClusterContainsTasksException()
    return _original["delete_cluster"](self)


def list_tasks(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    service = self._get_param("serviceName")
    desired = self._get_param("desiredStatus") or "RUNNING"
    instance = self._get_param("containerInstance")
    family = self._get_param("family")
    started_by = self._get_param("startedBy")
    ecs_api.expire(backend, _sim().clock.seconds())
    if service:
        svc_name = str(service).split("/")[-1]
        found = [s for s in backend.services.values() if s.cluster_name == cluster.name and s.name == svc_name]
        if not found or all(lag.hidden_service(s) for s in found):
            raise ServiceNotFoundException()
    arns = []
    for task in backend.tasks.get(cluster.name, {}).values():
        if task.desired_status != desired:
            continue
        if service and task.group != f"service:{str(service).split('/')[-1]}":
            continue
        if instance and not str(task.container_instance_arn or "").endswith(str(instance).split("/")[-1]):
            continue
        if family and f":task-definition/{family}:" not in task.task_definition_arn:
            continue
        if started_by and task.started_by != started_by:
            continue
        arns.append(task.task_arn)
    return ecs_responses.ActionResult(ecs_api.page(self, "taskArns", arns))


def list_container_instances(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    if lag.hidden_cluster(cluster):
        raise ClusterNotFoundException()
    status = self._get_param("status")
    cis = backend.container_instances.get(cluster.name, {}).values()
    arns = sorted(ci.container_instance_arn for ci in cis if status is None or ci.status == status)
    return ecs_responses.ActionResult(ecs_api.page(self, "containerInstanceArns", arns))


def stop_task(self: Any) -> Any:
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    task_id = str(self._get_param("task")).split("/")[-1]
    for arn, task in backend.tasks.get(cluster.name, {}).items():
        if arn.endswith(task_id):
            if task.desired_status == "RUNNING":
                reason = self._get_param("reason") or "Task stopped by user"
                _sim().stop_task(backend, task, reason, "UserInitiated")
            return ecs_responses.ActionResult({"task": task})
    raise InvalidParameterException("The referenced task was not found.")


def register_container_instance(self: Any) -> Any:
    backend = self.ecs_backend
    cluster_name = str(self._get_param("cluster", "default")).split("/")[-1]
    if cluster_name not in backend.clusters:
        raise ClusterNotFoundException()
    doc = json.loads(self._get_param("instanceIdentityDocument"))
    for ci in backend.container_instances.get(cluster_name, {}).values():
        if ci.ec2_instance_id == doc["instanceId"]:
            return ecs_responses.ActionResult({"containerInstance": ci})
    return _original["register_container_instance"](self)


def list_services(self: Any) -> Any:
    """ListServices lists the cluster's ACTIVE services only: a deleted one (DRAINING, then INACTIVE) leaves the
    list at once (ECS API reference, ListServices: "Returns a list of services"; DeleteService: "the service
    status moves from ACTIVE to DRAINING ... it's no longer visible in the console or in the ListServices API
    operation"). In pages, as AWS answers."""
    backend = self.ecs_backend
    cluster = backend._get_cluster(self._get_param("cluster", "default"))
    launch_type = self._get_param("launchType")
    arns = sorted(
        svc.arn
        for svc in backend.services.values()
        if svc.cluster_name == cluster.name
        and svc.status == "ACTIVE"
        and (launch_type is None or svc.launch_type == launch_type)
    )
    return ecs_responses.ActionResult(ecs_api.page(self, "serviceArns", arns, default=10))


PATCHES = {
    "list_services": list_services,
    "create_service": create_service,
    "update_service": update_service,
    "delete_service": delete_service,
    "delete_cluster": delete_cluster,
    "list_tasks": list_tasks,
    "list_container_instances": list_container_instances,
    "stop_task": stop_task,
    "register_container_instance": register_container_instance,
}


def install(sim: Simulator) -> None:
    """Patch moto's ECS handlers (idempotent); `sim` is the simulation they act through."""
    replace_handlers(Response, PATCHES, _original)
    ecs_api.install(sim)
