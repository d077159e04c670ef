"""Pure: from a task definition as DescribeTaskDefinition returns it, the RegisterTaskDefinition arguments of a
new revision identical except that the configured container's mapping of the container port has host port 0.

Every field RegisterTaskDefinition accepts (by botocore's model) is carried over. botocore's parser keeps only the
fields its model knows, so an older botocore silently drops newer ones (with 1.34: restartPolicy,
versionConsistency, enableFaultInjection; before 1.43.127: trustedExecutionConfiguration): pyproject.toml requires
botocore>=1.43.127, and a test checks that each field of the installed model's TaskDefinition is either carried or
one of AWS's read-only fields below.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

Json = dict[str, Any]


@functools.cache
def register_members() -> frozenset[str]:
    """The parameters RegisterTaskDefinition accepts, from botocore's service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    assert shape is not None
    return frozenset(shape.members)


# What DescribeTaskDefinition returns that AWS sets itself (RegisterTaskDefinition does not accept it): never copied.
READ_ONLY = frozenset(
    {
        "taskDefinitionArn",
        "revision",
        "status",
        "requiresAttributes",
        "compatibilities",
        "registeredAt",
        "registeredBy",
        "deregisteredAt",
        "deleteRequestedAt",
    }
)


def task_definition_members() -> frozenset[str]:
    """The fields of DescribeTaskDefinition's TaskDefinition in the installed botocore's model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("ecs")
    return frozenset(model.shape_for("TaskDefinition").members)  # type: ignore[attr-defined]


def port_mapping(td: Json, container: str, container_port: int) -> Json | None:
    """The configured container's port mapping for the container port, or None."""
    for c in td.get("containerDefinitions", []):
        if c.get("name") != container:
            continue
        for pm in c.get("portMappings") or []:
            if int(pm.get("containerPort", -1)) == container_port:
                return dict(pm)
    return None


def host_port(td: Json, container: str, container_port: int) -> int | None:
    """The host port the mapping asks for: 0 for dynamic (also when it is left out), None without a mapping."""
    pm = port_mapping(td, container, container_port)
    if pm is None:
        return None
    return int(pm.get("hostPort") or 0)


def dynamic_revision(td: Json, tags: dict[str, str], container: str, container_port: int) -> Json:
    """RegisterTaskDefinition kwargs: `td` with host port 0 on the configured mapping; tags kept and added."""
    kwargs = {k: copy.deepcopy(v) for k, v in td.items() if k in register_members()}
    found = False
    for c in kwargs.get("containerDefinitions", []):
        if c.get("name") != container:
            continue
        for pm in c.get("portMappings") or []:
            if int(pm.get("containerPort", -1)) == container_port:
                pm["hostPort"] = 0
                found = True
    if not found:
        raise ValueError(f"container {container!r} has no port mapping for container port {container_port}")
    if tags:
        kwargs["tags"] = [{"key": k, "value": v} for k, v in sorted(tags.items())]
    return kwargs
