"""The ECS cluster: created tagged with the stack; deleted last among the ECS resources, once empty."""

from __future__ import annotations

from ghostha.config import TAG_KEY, Config
from ghostha.observe import Inventory, Observed
from ghostha.resources.base import HINT, Context, Item, Step, ecs_tags

KEYS = ("cluster.name",)

_BUSY = (
    "ClusterContainsContainerInstancesException",
    "ClusterContainsTasksException",
    "ClusterContainsServicesException",
)


def plan(cfg: Config, obs: Observed) -> list[Step]:
    if obs.cluster_active:
        return []
    return [
        Step(
            "create-cluster",
            f"cluster {cfg.cluster.name}",
            f"tagged {TAG_KEY}={cfg.stack}",
            "ecs",
            "create_cluster",
            {"clusterName": cfg.cluster.name, "tags": ecs_tags(cfg)},
        )
    ]


def teardown(cfg: Config, inv: Inventory, keep: str | None) -> tuple[list[Item], list[Step]]:
    name = cfg.cluster.name
    if inv.cluster is None:
        return [], []
    if not inv.owned(inv.cluster.get("tags")):
        return [Item("ECS cluster", name, "leave", f"not created by ghostha (no tag {TAG_KEY}={cfg.stack})")], []
    if keep:
        return [Item("ECS cluster", name, "leave", keep)], []
    return [Item("ECS cluster", name, "delete")], [
        Step("delete-cluster", f"cluster {name}", "once AWS reports it empty", run=lambda ctx: _delete(ctx, name))
    ]


def _delete(ctx: Context, name: str) -> str:
    """DeleteCluster, retried while AWS still counts instances or tasks that are on their way out."""
    from ghostha.errors import from_boto
    from ghostha.waiting import wait_for

    ecs = ctx.aws.client("ecs")

    def attempt() -> str | None:
        from botocore.exceptions import ClientError

        try:
            ecs.delete_cluster(cluster=name)
        except ClientError as exc:
            err = from_boto(exc)
            if any(code in err.message for code in _BUSY):
                return "container instances or tasks still registered"
            raise err from None
        return None

    wait_for(ctx.deadline, ctx.progress, f"cluster {name} to delete", attempt, HINT)
    return ""
