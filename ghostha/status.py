"""Pure: the status report (the `status --json` contract) joined from one snapshot.

Joins what AWS keeps apart: tasks to their container instances and EC2 instances, and each task's
`(instance id, host port)` to its target's health. No I/O here.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from ghostha.config import Config
from ghostha.observe import Json, Observed, ci_attribute, ci_resource, short
from ghostha.waiting import THROTTLED, primary_deployment, task_host_port


def _iso(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value) if value else None


def ago(then: Any, now: datetime | None) -> str | None:
    """'3m 20s' between two times, or None."""
    if not isinstance(then, datetime) or now is None:
        return None
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _rev(arn: Any) -> str:
    return short(arn, missing="")


# ECS's service event words (developer guide, "Track Amazon ECS Availability Zone rebalancing")
REBALANCING = "is not AZ balanced"
BALANCED = "is AZ balanced"
STEADY = "has reached a steady state"


def az_rebalancing(events: list[Json], enabled: bool = True) -> dict[str, Any]:
    """From the service's events (newest first): is an AZ rebalancing in progress, and the event that says so.
    In progress only while the setting is ENABLED and no steady state came after the "not AZ balanced" event:
    a rebalancing that ends without its "is AZ balanced" event (turned off, or overtaken by a deployment) must not
    read as in progress forever."""
    newest = next(
        (e for e in events if REBALANCING in str(e.get("message")) or BALANCED in str(e.get("message"))), None
    )
    message = str(newest["message"]) if newest else None
    steady_after = newest is not None and any(STEADY in str(e.get("message")) for e in events[: events.index(newest)])
    return {
        "in_progress": bool(enabled and message and REBALANCING in message and not steady_after),
        "event": message,
        "at": _iso((newest or {}).get("createdAt")),
    }


def throttled(events: list[Json]) -> str | None:
    """ECS's throttle event when it is newer than the service's last steady state (its tasks still fail to start)."""
    for e in events:
        message = str(e.get("message"))
        if STEADY in message:
            return None
        if THROTTLED in message:
            return message
    return None


def report(cfg: Config, obs: Observed, events: int = 10) -> dict[str, Any]:
    ci_by_arn = {ci["containerInstanceArn"]: ci for ci in obs.container_instances}
    ami_of = {str(i["InstanceId"]): i.get("ImageId") for i in obs.instances}
    instances = []
    for ci in obs.container_instances:
        ami = ami_of.get(ci["ec2InstanceId"]) or ci_attribute(ci, "ecs.ami-id")
        instances.append(
            {
                "instance_id": ci["ec2InstanceId"],
                "az": ci_attribute(ci, "ecs.availability-zone"),
                "instance_type": ci_attribute(ci, "ecs.instance-type"),
                "status": ci.get("status"),
                "agent_connected": bool(ci.get("agentConnected")),
                "running_tasks": int(ci.get("runningTasksCount", 0)),
                "free_cpu": ci_resource(ci, "CPU"),
                "free_memory": ci_resource(ci, "MEMORY"),
                "ami": ami,
                # launched before the SSM parameter's current AMI: replaced only when an instance is replaced
                "ami_outdated": bool(obs.current_ami and ami and ami != obs.current_ami),
            }
        )

    health = {(h["Target"]["Id"], int(h["Target"]["Port"])): h for h in obs.target_health}
    tasks = []
    task_keys: dict[tuple[str, int], str] = {}
    for t in obs.tasks:
        ci = ci_by_arn.get(t.get("containerInstanceArn", ""), {})
        iid = ci.get("ec2InstanceId", "")
        port = task_host_port(t, cfg)
        key = (iid, port)
        task_id = t["taskArn"].rsplit("/", 1)[-1]
        task_keys[key] = task_id
        h = health.get(key)
        tasks.append(
            {
                "task_id": task_id,
                "revision": _rev(t.get("taskDefinitionArn")),
                "instance_id": iid or None,
                "az": t.get("availabilityZone"),
                "host_port": port if port >= 0 else None,
                "container_port": cfg.task.container_port,
                "last_status": t.get("lastStatus"),
                "started_at": _iso(t.get("startedAt")),
                "started_ago": ago(t.get("startedAt"), obs.observed_at),
                "health": h["TargetHealth"]["State"] if h else "unregistered",
            }
        )

    targets = []
    for (iid, port), h in health.items():
        targets.append(
            {
                "instance_id": iid,
                "port": port,
                "state": h["TargetHealth"]["State"],
                "reason": h["TargetHealth"].get("Reason"),
                "task_id": task_keys.get((iid, port)),
                "stale": (iid, port) not in task_keys and h["TargetHealth"]["State"] != "draining",
            }
        )

    svc = obs.service if obs.service_active else None
    service: dict[str, Any] | None = None
    if svc is not None:
        dc = svc.get("deploymentConfiguration", {})
        service = {
            "name": svc["serviceName"],
            "status": svc.get("status"),
            "desired": int(svc.get("desiredCount", 0)),
            "running": int(svc.get("runningCount", 0)),
            "pending": int(svc.get("pendingCount", 0)),
            "task_definition": _rev(svc.get("taskDefinition")),
            "deployments": [
                {
                    "id": d.get("id"),
                    "status": d.get("status"),
                    "rollout_state": d.get("rolloutState"),
                    "rollout_reason": d.get("rolloutStateReason"),
                    "task_definition": _rev(d.get("taskDefinition")),
                    "desired": d.get("desiredCount"),
                    "running": d.get("runningCount"),
                    "failed_tasks": d.get("failedTasks", 0),
                }
                for d in svc.get("deployments", [])
            ],
            "placement_strategy": [f"{p.get('type')}:{p.get('field', '')}" for p in svc.get("placementStrategy", [])],
            "minimum_healthy_percent": dc.get("minimumHealthyPercent"),
            "maximum_percent": dc.get("maximumPercent"),
            "health_check_grace_seconds": svc.get("healthCheckGracePeriodSeconds"),
            "az_rebalancing": svc.get("availabilityZoneRebalancing") or "DISABLED",
            "az_balance": az_rebalancing(svc.get("events") or [], svc.get("availabilityZoneRebalancing") == "ENABLED"),
            "throttled": throttled(svc.get("events") or []),
        }

    per_instance = Counter(t["instance_id"] for t in tasks if t["last_status"] == "RUNNING")
    per_az = Counter(t["az"] for t in tasks if t["last_status"] == "RUNNING")
    spread_warning = None
    if per_instance and len(instances) > 1:
        share = -(-sum(per_instance.values()) // len(instances))  # ceiling
        crowded = [i for i, n in per_instance.items() if n > share]
        if crowded:
            spread_warning = f"{crowded[0]} runs {per_instance[crowded[0]]} tasks, more than its share of {share}"

    verdict, reason, healthy = _verdict(cfg, obs, service, tasks, svc)
    return {
        "stack": cfg.stack,
        "cluster": {
            "name": cfg.cluster.name,
            "status": obs.cluster.get("status") if obs.cluster else None,
            "owned": obs.cluster_owned,
        },
        "site_url": cfg.site_url or (f"http://{obs.dns_name}" if obs.dns_name else None),
        "verdict": verdict,
        "reason": reason,
        "healthy": healthy,
        "instances": instances,
        "service": service,
        "tasks": tasks,
        "targets": targets,
        "events": [
            {"at": _iso(e.get("createdAt")), "message": e.get("message")}
            for e in (svc or {}).get("events", [])[:events]
        ],
        "stopped_tasks": [
            {
                "task_id": t["taskArn"].rsplit("/", 1)[-1],
                "reason": t.get("stoppedReason"),
                "stopped_at": _iso(t.get("stoppedAt")),
            }
            # a cluster that is gone (torn down) runs nothing: its old tasks are history, not this stack's state
            for t in (_newest_first(obs.stopped_tasks)[:events] if obs.cluster_active else [])
        ],
        "spread": {"per_instance": dict(per_instance), "per_az": dict(per_az), "warning": spread_warning},
    }


def _verdict(
    cfg: Config, obs: Observed, service: dict[str, Any] | None, tasks: list[dict[str, Any]], svc: Json | None
) -> tuple[str, str, bool]:
    """Measured against the config: a service scaled to 0 by hand is not a healthy blog."""
    if not obs.cluster_active or service is None or svc is None:
        what = "cluster" if not obs.cluster_active else "service"
        return "NOT DEPLOYED", f"no {what} {cfg.cluster.name if what == 'cluster' else cfg.service.name}", False
    reasons = []
    if obs.load_balancer is None:
        reasons.append(f"load balancer {cfg.load_balancer.name} not found")
    if obs.target_group is None:
        reasons.append(f"target group {cfg.load_balancer.target_group} not found")
    if service["desired"] != cfg.service.desired_count:
        reasons.append(f"service desired count is {service['desired']}, configured {cfg.service.desired_count}")
    primary = primary_deployment(svc) or {}
    for d in service["deployments"]:
        if d["rollout_state"] == "FAILED":
            reasons.append(f"rollout FAILED, rolled back to {_rev(primary.get('taskDefinition'))}")
            break
    newest = svc.get("taskDefinition")
    current = [t for t in tasks if t["last_status"] == "RUNNING" and t["revision"] == _rev(newest)]
    good = [t for t in current if t["health"] == "healthy"]
    desired = cfg.service.desired_count
    if len(current) < desired:
        reasons.append(f"{len(current)} of {desired} tasks running on {_rev(newest)}")
    bad = [t for t in current if t["health"] != "healthy"]
    if bad:
        reasons.append(f"{len(bad)} of {len(current)} targets not healthy")
    if service["throttled"]:
        newest = next(
            (t.get("stoppedReason") for t in _newest_first(obs.stopped_tasks) if t.get("stoppedReason")), None
        )
        reasons.append(
            "tasks keep failing to start, and ECS throttles their launches"
            + (f" (newest stopped task: {newest})" if newest else "")
        )
    if len(service["deployments"]) > 1 and not reasons:
        reasons.append("a deployment is in progress")
    if service["az_balance"]["in_progress"] and not reasons:
        reasons.append("AZ rebalancing in progress")
    healthy = not reasons and len(good) >= desired
    return (
        ("HEALTHY" if healthy else "DEGRADED"),
        ("; ".join(reasons) or f"{len(good)} of {desired} tasks healthy"),
        healthy,
    )


def _newest_first(tasks: Any) -> list[Json]:
    return sorted(tasks, key=lambda t: str(t.get("stoppedAt") or ""), reverse=True)
