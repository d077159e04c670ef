"""Benchmark of `ghostha up`, against an in-process sandbox on simulated time (issue #8).

1. From the story's starting point to HEALTHY: the simulated seconds `up` takes, beside the bound the sandbox's
   own delays set (an instance registers after BOOT_SECONDS, a task runs after PULL_SECONDS, a target turns
   healthy after healthy threshold x interval). Goal: within one poll interval of the bound, i.e. nothing that
   could run while the instances boot (the revision, the security-group rule) waits for them.
2. `up` on the converged stack: its AWS calls (all reads, none mutating) and its wall time, as a ratio to a
   `status` run measured beside it.

Run: python bench/up_bench.py [--poll 5]
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from ghostha.cli import Runtime, cli
from ghostha.sandbox import sim
from ghostha.sandbox.server import Sandbox


def run(box: Sandbox, args: list[str]) -> Any:
    from click.testing import CliRunner
    from rich.console import Console

    runtime = Runtime(clock=box.clock.seconds, sleep=box.advance, out=Console(file=io.StringIO()))
    return CliRunner().invoke(cli, args, obj=runtime)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--poll", type=float, default=5.0, help="poll_seconds (simulated)")
    args = parser.parse_args()
    box = Sandbox().start()
    try:
        assert box.seeded is not None
        path = Path(tempfile.mkdtemp()) / "bench.yaml"
        path.write_text(yaml.safe_dump(box.seeded.config(box.endpoint, poll_seconds=args.poll)))
        tg = box.client("elbv2").describe_target_groups(Names=["ghost-tg"])["TargetGroups"][0]
        healthy = tg["HealthCheckIntervalSeconds"] * tg["HealthyThresholdCount"]
        bound = sim.BOOT_SECONDS + sim.PULL_SECONDS + healthy
        t0 = box.clock.seconds()
        result = run(box, ["--config", str(path), "up", "--yes"])
        took = box.clock.seconds() - t0
        if result.exit_code != 0:
            print(result.output, result.stderr, file=sys.stderr)
            return 1
        print("1. up from the seed to HEALTHY (simulated seconds)")
        print(
            f"   bound {bound:.0f} s = boot {sim.BOOT_SECONDS:.0f} + task start {sim.PULL_SECONDS:.0f} "
            f"+ healthy {healthy} (threshold x interval)"
        )
        print(
            f"   up    {took:.0f} s  ({took - bound:+.0f} s, poll interval {args.poll:g} s) -> "
            f"{'within one poll' if took - bound <= args.poll else 'SLOWER than one poll past the bound'}"
        )

        start = len(box.requests)
        w0 = time.perf_counter()
        again = run(box, ["--config", str(path), "up", "--yes"])
        up_wall = time.perf_counter() - w0
        calls = box.requests[start:]
        writes = [c for c in calls if not c[1].startswith(("Describe", "List", "Get"))]
        w0 = time.perf_counter()
        run(box, ["--config", str(path), "status"])
        status_wall = time.perf_counter() - w0
        print("2. up on the converged stack")
        print(f"   exit {again.exit_code}, {len(calls)} AWS calls, {len(writes)} mutating {writes or ''}")
        print(f"   wall time {up_wall / status_wall:.1f}x a `status` run measured beside it")
        return 0 if took - bound <= args.poll and not writes else 1
    finally:
        box.stop()


if __name__ == "__main__":
    sys.exit(main())
