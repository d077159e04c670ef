"""The task-definition revision: the family's latest ACTIVE revision registered again with host port 0 on the
configured mapping (dynamic host ports), everything else kept, tagged. Reused while it is the latest; teardown
deregisters and deletes only the revisions ghostha registered.
"""

from __future__ import annotations

from ghostha import taskdef
from ghostha.config import TAG_KEY, Config
from ghostha.observe import Inventory, Json, Observed
from ghostha.resources.base import Item, Ref, Step

KEYS = ("task.family", "task.container", "task.container_port")


def plan(cfg: Config, obs: Observed) -> tuple[list[Step], str | Ref]:
    """The steps, and the revision the service should run (an ARN, or a Ref to the one registered)."""
    td = obs.task_definition
    assert td is not None  # preflight
    port = taskdef.host_port(td, cfg.task.container, cfg.task.container_port)
    if port == 0 and obs.owned(obs.task_definition_tags):
        return [], str(td["taskDefinitionArn"])
    tags = {k: v for k, v in obs.task_definition_tags.items() if not k.startswith("aws:")}
    tags[TAG_KEY] = cfg.stack
    kwargs: Json = taskdef.dynamic_revision(td, tags, cfg.task.container, cfg.task.container_port)
    rev = f"{td['family']}:{td['revision']}"
    change = f"container {cfg.task.container} port {cfg.task.container_port}: host port {port} → 0 (dynamic)"
    step = Step(
        "register-task-definition",
        f"task definition {cfg.task.family}",
        "new revision, everything else unchanged",
        "ecs",
        "register_task_definition",
        kwargs,
        changes=(f"from {rev}", change),
        output="task_definition_arn",
        extract=lambda result: result["taskDefinition"]["taskDefinitionArn"],
    )
    return [step], Ref("task_definition_arn")


def teardown(cfg: Config, inv: Inventory) -> tuple[list[Item], list[Step]]:
    items: list[Item] = []
    steps: list[Step] = []
    mine = [arn for arn, tags in inv.revisions if tags.get(TAG_KEY) == cfg.stack]
    others = [arn for arn, tags in inv.revisions if tags.get(TAG_KEY) != cfg.stack]
    for arn in mine:
        rev = arn.rsplit("/", 1)[-1]
        items.append(Item("task definition", rev, "delete", "registered by ghostha"))
        steps.append(
            Step(
                "deregister-task-definition",
                f"task definition {rev}",
                "",
                "ecs",
                "deregister_task_definition",
                {"taskDefinition": arn},
            )
        )
    doomed = mine + list(inv.inactive_revisions)
    for i in range(0, len(doomed), 10):
        batch = doomed[i : i + 10]
        steps.append(
            Step(
                "delete-task-definitions",
                f"{len(batch)} task definition revision{'s' if len(batch) > 1 else ''}",
                ", ".join(a.rsplit("/", 1)[-1] for a in batch),
                "ecs",
                "delete_task_definitions",
                {"taskDefinitions": batch},
                output="deleted_revisions",
                extract=_failures,
            )
        )
    if others:
        revs = ", ".join(a.rsplit("/", 1)[-1] for a in others)
        items.append(Item("task definitions", revs, "leave", "the family's own revisions, not ghostha's"))
    return items, steps


def _failures(result: Json) -> list[str]:
    """DeleteTaskDefinitions reports per-revision problems in failures[] without raising."""
    from ghostha.errors import AwsError

    failures = result.get("failures") or []
    if failures:
        lines = [
            f"{str(f.get('arn', '?')).rsplit('/', 1)[-1]}: {f.get('reason', '?')} {f.get('detail', '')}".strip()
            for f in failures
        ]
        raise AwsError(
            f"{len(failures)} task definition revision{'s were' if len(failures) > 1 else ' was'} not deleted",
            hint="run `ghostha teardown` again; if it persists, delete them in the ECS console",
            details=lines,
        )
    return [str(td.get("taskDefinitionArn")) for td in result.get("taskDefinitions") or []]
