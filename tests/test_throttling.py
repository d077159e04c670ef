"""Throttling: with a third of all calls answered `ThrottlingException` (seeded, so every run is the same), `up`,
`status` and `teardown` succeed on botocore's standard retries with ghostha's `max_attempts`.

The throttles are injected at botocore's `before-send` event, inside its retry loop, in each protocol's own error
format, so botocore's retry logic (and its retry quota) sees them as it would see AWS's. Its backoff delays are
recorded, not slept: tests never sleep.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from ghostha.aws import Aws
from ghostha.sandbox.server import Sandbox
from tests.conftest import on_sessions, run_cli, write_config

JSON_THROTTLE = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
QUERY_THROTTLE = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    b"<RequestId>r</RequestId></ErrorResponse>"
)
EC2_THROTTLE = (
    b"<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message>"
    b"</Error></Errors><RequestID>r</RequestID></Response>"
)
STS_OK = (
    b"<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/x</Arn>"
    b"<UserId>x</UserId><Account>123456789012</Account></GetCallerIdentityResult>"
    b"<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
)


class Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def response(request: Any, status: int, body: bytes) -> Any:
    from botocore.awsrequest import AWSResponse

    return AWSResponse(request.url, status, {}, Body(body))


def throttle(request: Any, event_name: str) -> Any:
    """AWS's throttling answer to this request, in its service's protocol."""
    if "X-Amz-Target" in request.headers:
        return response(request, 400, JSON_THROTTLE)
    if event_name.split(".")[1] == "ec2":
        return response(request, 503, EC2_THROTTLE)
    return response(request, 400, QUERY_THROTTLE)


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """botocore's retry delays, recorded instead of slept."""
    from botocore.retries import standard

    delays: list[float] = []
    original = standard.ExponentialBackoff.delay_amount

    def record(self: Any, context: Any) -> float:
        delays.append(original(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", record)
    return delays


def throttle_a_third(monkeypatch: pytest.MonkeyPatch, seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    counts = {"sent": 0, "throttled": 0}

    def before_send(request: Any, event_name: str, **_: Any) -> Any:
        counts["sent"] += 1
        if rng.random() < 1 / 3:
            counts["throttled"] += 1
            return throttle(request, event_name)
        return None

    on_sessions(monkeypatch, "before-send", before_send)
    return counts


def test_up_status_teardown_succeed_with_a_third_of_calls_throttled(
    box: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backoffs: list[float]
) -> None:
    counts = throttle_a_third(monkeypatch, seed=2026)
    cfg = write_config(box, tmp_path / "g.yaml")
    for command in (["up", "--yes"], ["status"], ["teardown", "--yes"]):
        ran = run_cli(box, ["--config", str(cfg), *command])
        assert ran.exit_code == 0, (command, ran.err)
        assert "Throttling" not in ran.err + ran.out
    assert counts["sent"] > 150 and counts["throttled"] > counts["sent"] / 4, counts
    assert len(backoffs) == counts["throttled"], "every throttled call was retried after a backoff"


def sts_calls(monkeypatch: pytest.MonkeyPatch, calls: int, max_attempts: int = 10, hold: bool = False) -> int:
    """How many of `calls` GetCallerIdentity calls succeed with a third throttled (answered in-process, no HTTP):
    through `Aws.client` each time as ghostha's code calls it, or (hold=True) on one botocore client throughout."""
    from botocore.exceptions import ClientError

    rng = random.Random(7)

    def before_send(request: Any, event_name: str, **_: Any) -> Any:
        return throttle(request, event_name) if rng.random() < 1 / 3 else response(request, 200, STS_OK)

    with monkeypatch.context() as patch:
        on_sessions(patch, "before-send", before_send)
        aws = Aws(region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=max_attempts)
        held = aws.client("sts")
        for done in range(calls):
            try:
                (held if hold else aws.client("sts")).get_caller_identity()
            except ClientError:
                return done
    return calls


def test_a_long_run_outlasts_botocores_retry_quota(monkeypatch: pytest.MonkeyPatch, backoffs: list[float]) -> None:
    """2,000 calls (more than a 15-minute `up` polling every 5 s makes on its busiest client) all succeed. Both
    halves matter: one botocore client held throughout runs its retry quota dry (throttles stop being retried),
    and 5 attempts per call (botocore's own default is 3) fail once in 243 calls."""
    assert sts_calls(monkeypatch, 2000) == 2000
    assert sts_calls(monkeypatch, 2000, hold=True) < 2000
    assert sts_calls(monkeypatch, 2000, max_attempts=5) < 2000
