"""A small IAM policy evaluator, enough to prove `iam-policy.json` offline, and its own tests.

What it evaluates (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements: Condition operators"):
- a request is one action on one resource (an ARN, or "*" for an action AWS gives no resource type) with a
  request context (condition keys → a value, or a list for multivalued keys such as aws:TagKeys);
- it is allowed when some Allow statement matches and no Deny statement does (no identity-based deny is shipped;
  Deny is supported so the tests can say so); a statement matches when its Action (or NotAction) and Resource
  (or NotResource) match, `*` and `?` as wildcards (actions case-insensitively), and every condition holds;
- condition operators: StringEquals, StringLike, ArnLike, Null, and the ForAllValues:/ForAnyValue: prefixes.
  A key absent from the context fails every operator but Null and ForAllValues (which AWS evaluates to true on
  an absent key). Condition key names are case-insensitive, values are not. Any other operator raises, so a
  policy that grows one the evaluator does not know fails the tests instead of passing them.
Not modelled: policy variables, IfExists, Numeric/Date/Bool operators, permission boundaries, SCPs, sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

Json = dict[str, Any]


@dataclass(frozen=True)
class Check:
    """One authorization AWS makes: an action on a resource, with the request's context."""

    action: str
    resource: str
    context: dict[str, Any] = field(default_factory=dict)
    why: str = ""  # which call (or implicit check) it comes from, for messages

    def __str__(self) -> str:
        return f"{self.action} on {self.resource} ({self.why})"


def wildcard(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _one(op: str, want: list[str], have: str) -> bool:
    if op == "StringEquals":
        return have in want
    if op in ("StringLike", "ArnLike"):
        return any(wildcard(w, have) for w in want)
    raise ValueError(f"condition operator {op} is not modelled")


def condition_holds(operator: str, key: str, want: Any, context: dict[str, Any]) -> bool:
    ctx = {k.lower(): v for k, v in context.items()}
    have = ctx.get(key.lower())
    wanted = _listed(want)
    if operator == "Null":
        return (have is None) == (str(wanted[0]).lower() == "true")
    qualifier, _, op = operator.rpartition(":")
    if qualifier == "ForAllValues":
        return have is None or all(_one(op, wanted, h) for h in _listed(have))
    if qualifier == "ForAnyValue":
        return have is not None and any(_one(op, wanted, h) for h in _listed(have))
    if qualifier:
        raise ValueError(f"condition qualifier {qualifier} is not modelled")
    if have is None:
        return False
    return any(_one(op, wanted, h) for h in _listed(have))


def _matches(st: Json, check: Check) -> bool:
    if "Action" in st:
        action_ok = any(wildcard(a, check.action, ignore_case=True) for a in _listed(st["Action"]))
    else:
        action_ok = not any(wildcard(a, check.action, ignore_case=True) for a in _listed(st["NotAction"]))
    if not action_ok:
        return False
    if "Resource" in st:
        resource_ok = any(wildcard(r, check.resource) for r in _listed(st["Resource"]))
    else:
        resource_ok = not any(wildcard(r, check.resource) for r in _listed(st["NotResource"]))
    if not resource_ok:
        return False
    return all(
        condition_holds(op, key, want, check.context)
        for op, block in (st.get("Condition") or {}).items()
        for key, want in block.items()
    )


def allowed(doc: Json, check: Check) -> bool:
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    hits = [st for st in statements if _matches(st, check)]
    return any(st["Effect"] == "Allow" for st in hits) and not any(st["Effect"] == "Deny" for st in hits)


# --- the evaluator's own tests ------------------------------------------------------------------------------

TAGGED = {
    "Statement": [
        {"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"},
        {
            "Effect": "Allow",
            "Action": "ecs:DeleteCluster",
            "Resource": "arn:aws:ecs:*:*:cluster/*",
            "Condition": {"StringLike": {"aws:ResourceTag/ghostha:stack": "*"}},
        },
        {"Effect": "Deny", "Action": "ecs:DescribeClusters", "Resource": "arn:aws:ecs:*:*:cluster/secret"},
    ]
}
ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/ghost-ha"


def test_actions_match_case_insensitively_and_by_wildcard() -> None:
    assert allowed(TAGGED, Check("ECS:describeTasks", "*"))
    assert not allowed(TAGGED, Check("ecs:ListTasks", "*"))


def test_a_tag_condition_needs_the_tag_on_the_resource() -> None:
    assert allowed(TAGGED, Check("ecs:DeleteCluster", ARN, {"aws:ResourceTag/ghostha:stack": "ghost-ha"}))
    assert not allowed(TAGGED, Check("ecs:DeleteCluster", ARN, {}))
    assert not allowed(TAGGED, Check("ecs:DeleteCluster", ARN, {"aws:ResourceTag/other": "x"}))


def test_the_resource_must_match_the_pattern() -> None:
    ctx = {"aws:ResourceTag/ghostha:stack": "ghost-ha"}
    assert not allowed(TAGGED, Check("ecs:DeleteCluster", "arn:aws:ecs:us-east-1:1:service/ghost-ha/ghost", ctx))


def test_an_explicit_deny_wins() -> None:
    assert allowed(TAGGED, Check("ecs:DescribeClusters", ARN))
    assert not allowed(TAGGED, Check("ecs:DescribeClusters", "arn:aws:ecs:us-east-1:1:cluster/secret"))


@pytest.mark.parametrize(
    ("operator", "want", "have", "result"),
    [
        ("StringEquals", ["a", "b"], "b", True),
        ("StringEquals", "a", "A", False),
        ("StringLike", "gh*", "ghost", True),
        ("ArnLike", "arn:aws:ec2:*:*:launch-template/*", "arn:aws:ec2:r:1:launch-template/lt-1", True),
        ("ArnLike", "arn:aws:ec2:*:*:launch-template/*", "arn:aws:ec2:r:1:instance/i-1", False),
        ("Null", "false", "x", True),
        ("Null", "false", None, False),
        ("Null", "true", None, True),
        ("StringEquals", "a", None, False),
        ("ForAllValues:StringEquals", ["a", "b"], ["a", "b"], True),
        ("ForAllValues:StringEquals", ["a"], ["a", "c"], False),
        ("ForAllValues:StringEquals", ["a"], None, True),  # AWS: true when the key is absent
        ("ForAnyValue:StringLike", ["c*"], ["a", "cd"], True),
        ("ForAnyValue:StringLike", ["c*"], None, False),
    ],
)
def test_condition_operators(operator: str, want: Any, have: Any, result: bool) -> None:
    ctx = {} if have is None else {"Some:Key": have}
    assert condition_holds(operator, "some:key", want, ctx) is result


def test_an_operator_it_does_not_model_fails_loudly() -> None:
    with pytest.raises(ValueError):
        condition_holds("NumericLessThan", "k", "1", {"k": "0"})
