"""The smoke run against a real AWS account: `up` → `status` → `drill` → `teardown` with the shipped policy.

Skipped unless GHOSTHA_REAL_AWS=1 and credentials are present; run it with
`GHOSTHA_REAL_AWS=1 GHOSTHA_CONFIG=ghostha.yaml .venv/bin/python -m pytest -m aws -q`. It runs the console script
in real time (about 15-25 minutes: two instances boot, six tasks start, a graceful drill waits out the target
group's deregistration delay). Whatever happens, it ends with `teardown --yes`, so only what ghostha created is
deleted; if the run itself is killed, run `ghostha teardown` with the same config. Cost: two instances of the
configured type for that time (two t3.small: a few cents) on top of the ALB that already exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.aws

EXE = str(Path(sys.executable).with_name("ghostha"))


def _ready() -> str | None:
    if os.environ.get("GHOSTHA_REAL_AWS") != "1":
        return "set GHOSTHA_REAL_AWS=1 (and GHOSTHA_CONFIG) to run against a real account"
    if not os.environ.get("GHOSTHA_CONFIG"):
        return "set GHOSTHA_CONFIG to the config of a stack that may be created and torn down"
    import boto3

    if boto3.Session().get_credentials() is None:
        return "no AWS credentials"
    return None


def ghostha(*args: str, timeout: float = 3600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture
def real_stack() -> Iterator[None]:
    why = _ready()
    if why:
        pytest.skip(why)
    try:
        yield
    finally:
        ghostha("teardown", "--yes")


def test_up_status_drill_teardown_on_a_real_account(real_stack: None) -> None:
    up = ghostha("up", "--yes")
    assert up.returncode == 0, up.stderr + up.stdout
    status = ghostha("status", "--json")
    report = json.loads(status.stdout)
    assert status.returncode == 0 and report["healthy"], report["reason"]
    assert sorted(report["spread"]["per_instance"].values()) == [3, 3]
    drill = ghostha("drill", "--yes", "--graceful", "--json")
    assert drill.returncode == 0, drill.stderr
    assert json.loads(drill.stdout)["verdict"] == "PASS"
    down = ghostha("teardown", "--yes")
    assert down.returncode == 0, down.stderr + down.stdout
    after = ghostha("status", "--json")
    assert json.loads(after.stdout)["verdict"] == "NOT DEPLOYED"
