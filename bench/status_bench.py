"""Benchmark of `ghostha status`, against an in-process sandbox; every timing is a ratio measured in this run.

1. AWS calls per `status`: the story's stack (2 instances, 6 tasks; budget 12) and a large one (50 instances,
   500 tasks; budget 25), counted by the sandbox's request log.
2. Latency: with a fixed delay injected into every AWS call (a botocore event hook), ghostha's concurrent reads
   against a strictly sequential run of the same reads; the concurrent time is also given in round-trip delays
   (budget: 4 plus local work).
3. Start-up: `ghostha --help` and `ghostha status --help` against `python -c pass` (they must not import boto3).

Run: python bench/status_bench.py [--delay-ms 50] [--large]   (the large stack takes a minute or two to build)
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

import yaml

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from ghostha import observe as observe_module
from ghostha.aws import Aws
from ghostha.cli import Runtime, cli
from ghostha.config import load
from ghostha.sandbox.server import Sandbox


def deploy(box: Sandbox, instances: int, tasks: int, instance_type: str) -> Path:
    assert box.seeded is not None
    data = box.seeded.config(box.endpoint, poll_seconds=15)
    data["cluster"].update(instance_count=instances, instance_type=instance_type)
    data["service"]["desired_count"] = tasks
    path = Path(tempfile.mkdtemp()) / "bench.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run(box, ["--config", str(path), "up", "--yes", "--timeout", "7200"])
    if result.exit_code != 0:
        raise SystemExit(f"up failed ({result.exit_code}): {result.output}{result.stderr}")
    return path


def run(box: Sandbox, args: list[str]) -> Any:
    """`ghostha ARGS` in-process on the sandbox's simulated time, its tables going nowhere."""
    from click.testing import CliRunner
    from rich.console import Console

    runtime = Runtime(clock=box.clock.seconds, sleep=box.advance, out=Console(file=io.StringIO()))
    return CliRunner().invoke(cli, args, obj=runtime)


def count_calls(box: Sandbox, path: Path) -> int:
    start = len(box.requests)
    run(box, ["--config", str(path), "status"])
    return len(box.requests) - start


def delayed_aws(path: Path, delay: float) -> tuple[Aws, Any]:
    cfg = load(str(path))
    aws = Aws(region=cfg.region, endpoint_url=cfg.endpoint_url)

    def wait(**_: Any) -> None:
        time.sleep(delay)

    for name in ("ecs", "ec2", "elbv2"):
        aws.client(name).meta.events.register("before-send", wait)
    return aws, cfg


def time_observe(path: Path, delay: float, workers: int, repeats: int = 5) -> float:
    original = observe_module.gather

    def gather(calls: dict[str, Any], workers_: int = 8) -> dict[str, Any]:
        return original(calls, workers=workers)

    times = []
    with mock.patch.object(observe_module, "gather", gather):
        for _ in range(repeats):
            aws, cfg = delayed_aws(path, delay)
            for name in ("ecs", "ec2", "elbv2"):
                aws.client(name)
            t = time.perf_counter()
            observe_module.observe(aws, cfg, "status")
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def startup(args: list[str], repeats: int = 7) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run(args, capture_output=True, check=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=50.0)
    parser.add_argument("--large", action="store_true", help="also count calls for 50 instances / 500 tasks")
    args = parser.parse_args()
    delay = args.delay_ms / 1000

    box = Sandbox().start()
    story = deploy(box, 2, 6, "t3.small")
    calls = count_calls(box, story)
    print(f"calls per status, story's stack (2 instances, 6 tasks): {calls} (budget 12; 13 with stopped tasks)")

    local = time_observe(story, 0.0, workers=8)
    concurrent = time_observe(story, delay, workers=8)
    sequential = time_observe(story, delay, workers=1)
    print(
        f"reads with {args.delay_ms:.0f} ms per call: concurrent {concurrent:.3f} s = "
        f"{(concurrent - local) / delay:.1f} round trips + {local:.3f} s local work (budget: 4 round trips); "
        f"sequential {sequential:.3f} s; sequential/concurrent = {sequential / concurrent:.2f}x"
    )

    python = sys.executable
    base = startup([python, "-c", "pass"])
    help_ = startup([python, "-m", "ghostha", "--help"])
    status_help = startup([python, "-m", "ghostha", "status", "--help"])
    print(f"start-up: ghostha --help = {help_ / base:.1f}x python -c pass; status --help = {status_help / base:.1f}x")

    if args.large:
        box.reset()
        large = deploy(box, 50, 500, "m5.xlarge")
        print(f"calls per status, 50 instances / 500 tasks: {count_calls(box, large)} (budget 25)")
    box.stop()


if __name__ == "__main__":
    main()
