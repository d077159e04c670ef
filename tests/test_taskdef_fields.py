"""The revision copy keeps every field AWS lets RegisterTaskDefinition set: checked against the installed botocore's
ECS model, and through botocore's own parser (which drops what its model does not know)."""

from __future__ import annotations

import json
from typing import Any

from ghostha import taskdef

CONTAINERS = [{"name": "ghost", "image": "ghost:5", "portMappings": [{"containerPort": 2368, "hostPort": 80}]}]


def test_every_task_definition_field_is_carried_or_read_only() -> None:
    """A field DescribeTaskDefinition returns is either copied into the new revision or one of AWS's read-only
    fields, listed by hand: a field a newer botocore adds fails here until someone decides which it is."""
    members = taskdef.task_definition_members()
    td: dict[str, Any] = {m: f"value of {m}" for m in members}
    td["containerDefinitions"] = CONTAINERS
    kwargs = taskdef.dynamic_revision(td, {}, "ghost", 2368)
    neither = sorted(m for m in members if m not in kwargs and m not in taskdef.READ_ONLY)
    assert neither == [], f"fields neither carried nor listed as read-only: {neither}"
    assert not set(kwargs) & taskdef.READ_ONLY
    assert members >= taskdef.READ_ONLY, "a read-only field that botocore no longer has: drop it from READ_ONLY"


def test_recent_fields_survive_botocore_parsing_and_validate() -> None:
    """restartPolicy, versionConsistency (container level), enableFaultInjection and trustedExecutionConfiguration
    (task level) come through the installed botocore's parser and are sent again: with botocore 1.34 the parser
    silently dropped the first three (ECS API Reference, RegisterTaskDefinition,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RegisterTaskDefinition.html)."""
    import botocore.session
    from botocore.parsers import create_parser
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("ecs")
    container = {
        **CONTAINERS[0],
        "restartPolicy": {"enabled": True, "ignoredExitCodes": [0], "restartAttemptPeriod": 60},
        "versionConsistency": "disabled",
    }
    body = {
        "taskDefinition": {
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/ghost:3",
            "family": "ghost",
            "revision": 3,
            "status": "ACTIVE",
            "networkMode": "bridge",
            "containerDefinitions": [container],
            "enableFaultInjection": True,
            "trustedExecutionConfiguration": {"isolationMode": "SHARED"},
        }
    }
    op = model.operation_model("DescribeTaskDefinition")
    parsed = create_parser(model.metadata["protocol"]).parse(
        {"status_code": 200, "headers": {}, "body": json.dumps(body).encode()}, op.output_shape
    )
    kwargs = taskdef.dynamic_revision(parsed["taskDefinition"], {"ghostha:stack": "s"}, "ghost", 2368)
    copied = kwargs["containerDefinitions"][0]
    assert copied["restartPolicy"] == container["restartPolicy"]
    assert copied["versionConsistency"] == "disabled"
    assert kwargs["enableFaultInjection"] is True
    assert kwargs["trustedExecutionConfiguration"] == {"isolationMode": "SHARED"}
    report = ParamValidator().validate(kwargs, model.operation_model("RegisterTaskDefinition").input_shape)
    assert not report.has_errors(), report.generate_report()
