"""Simulated time: the sandbox's clock, which runs faster than real time or only when advanced."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SimClock:
    """Seconds of simulated time. `scale` simulated seconds pass per real second (0: only `advance` moves it)."""

    def __init__(self, scale: float = 0.0, start: datetime | None = None) -> None:
        self.scale = scale
        self._start = start or datetime.now(UTC).replace(microsecond=0)
        self._t0 = time.monotonic()
        self._offset = 0.0
        self._lock = threading.Lock()

    def seconds(self) -> float:
        with self._lock:
            return (time.monotonic() - self._t0) * self.scale + self._offset

    def now(self) -> datetime:
        return self._start + timedelta(seconds=self.seconds())

    def at(self, seconds: float) -> datetime:
        return self._start + timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time only moves forward")
        with self._lock:
            self._offset += seconds
