"""Per-process copies of what nearly every request reads, at most a second old.

On the night, totals are read thousands of times a second and every pledge asks
which campaign is `current` and which neighborhood its slug names. Each process
keeps what it last read for SNAPSHOT_SECONDS (default 1), so those requests cost
no database work. A write committed by this process drops the copies it may have
changed at once (every copy, unless the write names its topics), so a process
always sees its own writes; another process's writes show within SNAPSHOT_SECONDS.
0 turns the copies off.

A copy's key is a tuple whose first item is its topic: COUNTS, CAMPAIGNS or NEIGHBORHOODS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Hashable
from typing import Any, TypeVar

from flask import Flask, current_app

T = TypeVar("T")

COUNTS, CAMPAIGNS, NEIGHBORHOODS = "counts", "campaigns", "neighborhoods"
Key = tuple[Hashable, ...]


class Snapshots:
    def __init__(self, max_age: float) -> None:
        self.max_age = max_age
        self._entries: dict[Key, tuple[float, tuple[int, int], Any]] = {}
        self._building: dict[Key, threading.Lock] = {}
        self._lock = threading.Lock()
        # Moved on by every local write (of a topic, or of anything): a copy read before it is stale.
        self._generations: dict[Hashable, int] = {}
        self._epoch = 0
        self.builds = 0  # how many times a copy was (re)built, for tests

    def get(self, key: Key, build: Callable[[], T]) -> T:
        """The copy under `key`, built again when it is older than max_age.

        While one caller rebuilds an expired copy, the others are given the old one
        rather than all reading the database at once.
        """
        if self.max_age <= 0:
            return build()
        entry = self._entries.get(key)
        generation = (self._epoch, self._generations.get(key[0], 0))
        if entry is not None and entry[1] == generation and entry[0] > time.monotonic():
            return entry[2]
        with self._lock:
            building = self._building.setdefault(key, threading.Lock())
        if not building.acquire(blocking=entry is None or entry[1] != generation):
            return entry[2]  # type: ignore[index]  # only an expired copy of this generation gets here
        try:
            entry = self._entries.get(key)  # another caller may have built it while this one waited
            if entry is not None and entry[1] == generation and entry[0] > time.monotonic():
                return entry[2]
            value = build()
            self.builds += 1
            self._entries[key] = (time.monotonic() + self.max_age, generation, value)
            return value
        finally:
            building.release()
            if key not in self._entries:  # a failed build (a 404, say) leaves nothing behind
                with self._lock:
                    self._building.pop(key, None)

    def forget(self, topics: Collection[Hashable] | None = None) -> None:
        """Drop the copies of these topics (all when None): this process has just written them."""
        with self._lock:
            if topics is None:
                self._epoch += 1
                self._entries.clear()
                return
            for topic in topics:
                self._generations[topic] = self._generations.get(topic, 0) + 1
            for key in [key for key in self._entries if key[0] in topics]:
                self._entries.pop(key, None)


def init_app(app: Flask) -> None:
    app.extensions["snapshots"] = Snapshots(app.config["SNAPSHOT_SECONDS"])


def snapshot(key: Key, build: Callable[[], T]) -> T:
    return current_app.extensions["snapshots"].get(key, build)


def forget_snapshots(topics: Collection[Hashable] | None = None) -> None:
    snapshots = current_app.extensions.get("snapshots")
    if snapshots is not None:
        snapshots.forget(topics)
