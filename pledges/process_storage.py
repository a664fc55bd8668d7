"""A limits storage that keeps fixed-window counters in this process, for RATELIMIT_STORAGE_URI=memory://."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from limits.storage import Storage


class ProcessStorage(Storage):
    """Fixed-window counters in this process's memory, expired as they are read: a limits storage.

    Stands in for limits' MemoryStorage under memory://, which restarts a timer thread every 10 ms
    to walk every counter (a greenlet a tick under gevent): it cost totals reads a quarter of their
    speed (bench/RESULTS.md, "limits' MemoryStorage"). Fixed windows only.
    """

    STORAGE_SCHEME = None  # not registered for RATELIMIT_STORAGE_URI: memory:// still names it
    SWEEP_SECONDS = 60.0

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.clock = clock
        self.counters: dict[str, tuple[int, float]] = {}  # key → (count, when its window ends)
        self.lock = threading.Lock()
        self.next_sweep = clock() + self.SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception]:
        return ValueError

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = self.clock()
        with self.lock:
            used, ends = self.counters.get(key, (0, 0.0))
            if ends <= now:
                used, ends = 0, now + expiry
            self.counters[key] = (used := used + amount, ends)
            if now >= self.next_sweep:
                self.counters = {k: window for k, window in self.counters.items() if window[1] > now}
                self.next_sweep = now + self.SWEEP_SECONDS
        return used

    def get(self, key: str) -> int:
        used, ends = self.counters.get(key, (0, 0.0))
        return used if ends > self.clock() else 0

    def get_expiry(self, key: str) -> float:
        now = self.clock()
        return max(self.counters.get(key, (0, now))[1], now)

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self.lock:
            cleared, self.counters = len(self.counters), {}
        return cleared

    def clear(self, key: str) -> None:
        with self.lock:
            self.counters.pop(key, None)
