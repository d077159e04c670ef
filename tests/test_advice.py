"""The runtime keys a stand-in endpoint advises (ghostha/advice.py): used only when the config leaves them out,
checked as the config checks them, and nothing at all from an endpoint that does not answer the question."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ghostha import advice, config
from ghostha.sandbox.server import Sandbox
from tests.conftest import Canned, run_cli, write_config


@pytest.fixture
def stub() -> Iterator[Canned]:
    s = Canned()
    yield s
    s.close()


def cfg_text(tmp_path: Path, **keys: Any) -> config.Config:
    data = {"stack": "ghost", "network": {"subnets": ["subnet-1"], "security_group": "sg-1"}, **keys}
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(data))
    return config.load(str(path))


def test_a_config_without_the_runtime_keys_takes_the_endpoints_advice(stub: Canned, tmp_path: Path) -> None:
    stub.body = {"poll_seconds": 0.5, "site_url": "http://127.0.0.1:8080", "stack": "other"}
    cfg = advice.apply(cfg_text(tmp_path), stub.url)
    assert (cfg.poll_seconds, cfg.site_url) == (0.5, "http://127.0.0.1:8080")
    assert cfg.stack == "ghost", "only the runtime keys are advisable"
    assert stub.paths == ["/_ghostha/runtime"]


def test_a_value_the_config_sets_wins_over_the_advice(stub: Canned, tmp_path: Path) -> None:
    stub.body = {"poll_seconds": 0.5, "site_url": "http://127.0.0.1:8080"}
    cfg = advice.apply(cfg_text(tmp_path, poll_seconds=7, site_url="https://blog.example.com"), stub.url)
    assert (cfg.poll_seconds, cfg.site_url) == (7.0, "https://blog.example.com")
    assert stub.paths == [], "nothing to ask when the config sets both"
    half = advice.apply(cfg_text(tmp_path, poll_seconds=7), stub.url)
    assert (half.poll_seconds, half.site_url) == (7.0, "http://127.0.0.1:8080")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"poll_seconds": 0.5}),
        (200, b"<html>not JSON</html>"),
        (200, ["poll_seconds", 0.5]),
        (200, {"poll_seconds": "fast", "site_url": "ftp://blog"}),
        (200, {"poll_seconds": 1000, "site_url": 42}),
        (200, {"poll_seconds": True, "site_url": None}),
        (200, {"poll_seconds": float("nan")}),
    ],
)
def test_an_answer_that_is_not_good_advice_advises_nothing(
    stub: Canned, tmp_path: Path, status: int, body: Any
) -> None:
    stub.status, stub.body = status, body
    cfg = advice.apply(cfg_text(tmp_path), stub.url)
    assert (cfg.poll_seconds, cfg.site_url) == (5.0, None)
    assert stub.paths, "it was asked"


def test_no_endpoint_or_a_refusing_one_advises_nothing(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = cfg_text(tmp_path)
    assert advice.apply(base, f"http://127.0.0.1:{port}") == base
    assert advice.apply(base, None) == base, "AWS itself is never asked"


def test_the_sandbox_advises_its_stand_ins_url_and_up_status_use_it(box: Sandbox, tmp_path: Path) -> None:
    """Manual time (scale 0) advises no poll; the ALB stand-in's URL is advised while the data plane runs."""
    assert advice.fetch(box.endpoint) == {}, "no data plane, manual time: nothing to advise"
    box.start_dataplane()
    try:
        assert box.site_url is not None
        assert advice.fetch(box.endpoint) == {"site_url": box.site_url}
        cfg = write_config(box, tmp_path / "g.yaml", poll_seconds=None)
        ran = run_cli(box, ["--config", str(cfg), "status", "--json"])
        assert json.loads(ran.out)["site_url"] == box.site_url
        assert "advice" not in ran.err
        told = run_cli(box, ["-v", "--config", str(cfg), "status", "--json"])
        assert f"advice: {box.endpoint} advises site_url={box.site_url}" in told.err, "-v says where it came from"
        assert json.loads(told.out)["site_url"] == box.site_url, "stdout stays JSON"
    finally:
        box.stop_dataplane()


def test_a_running_sandbox_advises_about_15_simulated_seconds_between_polls() -> None:
    assert Sandbox(scale=30).poll_seconds == 0.5
    assert Sandbox(scale=1).poll_seconds == 5.0, "never slower than AWS's default"
    assert Sandbox(scale=1000).poll_seconds == 0.2, "never a busy loop"
    assert Sandbox(scale=0).poll_seconds is None
