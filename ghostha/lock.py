"""One ghostha run at a time per stack on this machine: a file lock in the per-user state directory.

The lock is keyed by account, region, endpoint and stack, held with `flock` for the whole of `up` or `teardown`
(the kernel drops it when the process dies, so a crashed run never leaves it behind), and names its holder so a
refused run can say who it is waiting for. Runs on two machines are not serialized by it (see the README).
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ghostha.errors import LockedError


def lock_path(directory: Path, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("_") or "stack"
    return directory / f"{safe[:200]}.lock"


@contextmanager
def stack_lock(directory: Path, key: str, stack: str, command: str) -> Iterator[None]:
    """Hold the stack's lock while the block runs; refuse at once (LockedError) if another run holds it."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    path = lock_path(directory, key)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = " ".join(handle.read().split())[:300] or "another ghostha run"
            raise LockedError(
                f"stack {stack} is busy: {holder} holds its lock ({path})",
                hint=f"wait for that run to finish, then run `ghostha {command}` again",
            ) from None
        try:
            handle.seek(0)
            handle.truncate()
            since = time.strftime("%H:%M:%S", time.localtime())
            handle.write(f"`ghostha {command}` (pid {os.getpid()} on {socket.gethostname()}, since {since})\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
