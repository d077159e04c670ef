"""`ghostha doctor`: the high-availability audit, each check passing and failing against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ghostha.sandbox.server import Sandbox
from tests.conftest import run_cli, write_config


def doctor(box: Sandbox, cfg: Path, *extra: str) -> Any:
    return run_cli(box, ["--config", str(cfg), "doctor", *extra])


def test_smoke(box: Sandbox, tmp_path: Path) -> None:
    cfg = write_config(box, tmp_path / "g.yaml")
    ran = doctor(box, cfg)
    print(ran.out, ran.err)
    ran = run_cli(box, ["--config", str(cfg), "up", "--yes"])
    assert ran.exit_code == 0
    ran = doctor(box, cfg)
    print(ran.out, ran.err)
    print(doctor(box, cfg, "--json").out)
    assert 0
