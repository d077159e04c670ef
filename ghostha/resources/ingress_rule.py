"""The security-group rule that lets the ALB reach the dynamic host ports: TCP 32768-65535 from each of the
load balancer's security groups into the instances' group, described and tagged. Skipped when a rule already
covers the agent's range 32768-60999 (the user may have added one); teardown revokes only the tagged rules, in
whichever group they are, and `up` revokes those left in a group that is no longer `network.security_group`.
"""

from __future__ import annotations

from collections.abc import Iterable

from ghostha.config import Config
from ghostha.observe import Inventory, Json, Observed
from ghostha.resources.base import Item, Step, aws_tags

KEYS = ("network.security_group", "load_balancer.name")
DYNAMIC_PORTS = (32768, 65535)  # the rule ghostha adds; the agent's range is 32768-60999
AGENT_PORTS = (32768, 60999)


def spans_agent_ports(perm: Json) -> bool:
    """Does a security-group permission (either direction) cover TCP on the agent's whole dynamic port range?"""
    proto = str(perm.get("IpProtocol"))
    if proto == "-1":
        return True
    low, high = perm.get("FromPort", 0), perm.get("ToPort", 0)
    return proto in ("tcp", "6") and low <= AGENT_PORTS[0] and high >= AGENT_PORTS[1]


def covered(sg: Json, source_group: str) -> bool:
    """Does an ingress rule already let `source_group` reach the agent's dynamic port range?"""
    return any(
        spans_agent_ports(perm) and any(p.get("GroupId") == source_group for p in perm.get("UserIdGroupPairs", []))
        for perm in sg.get("IpPermissions", [])
    )


def plan(cfg: Config, obs: Observed) -> list[Step]:
    assert obs.load_balancer is not None  # preflight
    sg = obs.security_group or {}
    steps = []
    for lb_sg in obs.load_balancer.get("SecurityGroups", []):
        if covered(sg, lb_sg):
            continue
        steps.append(
            Step(
                "authorize-ingress",
                f"security group {cfg.network.security_group}",
                f"TCP {DYNAMIC_PORTS[0]}-{DYNAMIC_PORTS[1]} from {lb_sg} (the ALB) to the dynamic host ports",
                "ec2",
                "authorize_security_group_ingress",
                {
                    "GroupId": cfg.network.security_group,
                    "IpPermissions": [
                        {
                            "IpProtocol": "tcp",
                            "FromPort": DYNAMIC_PORTS[0],
                            "ToPort": DYNAMIC_PORTS[1],
                            "UserIdGroupPairs": [
                                {"GroupId": lb_sg, "Description": f"ghostha {cfg.stack}: ALB to ECS dynamic host ports"}
                            ],
                        }
                    ],
                    "TagSpecifications": [{"ResourceType": "security-group-rule", "Tags": aws_tags(cfg)}],
                },
                # a rule added a moment ago may not be described yet: AWS's duplicate error means it is there
                done_codes=("InvalidPermission.Duplicate",),
            )
        )
    return steps


def _revoke(group: str, rule_ids: list[str], why: str) -> Step:
    return Step(
        "revoke-ingress",
        f"security group {group}",
        f"rules {', '.join(rule_ids)}{why}",
        "ec2",
        "revoke_security_group_ingress",
        {"GroupId": group, "SecurityGroupRuleIds": rule_ids},
    )


def _by_group(rules: Iterable[Json]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for r in rules:
        groups.setdefault(str(r["GroupId"]), []).append(str(r["SecurityGroupRuleId"]))
    return groups


def stale(cfg: Config, obs: Observed) -> list[Step]:
    """Revoke the stack's rules in groups that are no longer `network.security_group`. They come last in `up`,
    after the instances moved to the configured group, so the ALB never loses its way to a running task."""
    old = _by_group(r for r in obs.stack_rules if r.get("GroupId") != cfg.network.security_group)
    return [_revoke(group, ids, " (no longer network.security_group)") for group, ids in sorted(old.items())]


def teardown(cfg: Config, inv: Inventory, keep: str | None) -> tuple[list[Item], list[Step]]:
    items: list[Item] = []
    steps: list[Step] = []
    for group, rule_ids in sorted(_by_group(inv.sg_rules).items()):
        label = f"{group}: {', '.join(rule_ids)}"
        if keep:
            items.append(Item("security-group rule", label, "leave", keep))
            continue
        items.append(Item("security-group rule", label, "delete", "added by ghostha"))
        steps.append(_revoke(group, rule_ids, ""))
    return items, steps
