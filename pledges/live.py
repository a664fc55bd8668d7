"""Live totals: one broadcaster per process watches the shared database and fans changes out to streams.

However many dashboards are open, each process reads the database about once a
second (one small query per watched campaign). Because it reads the database,
a pledge taken by any worker or any app instance reaches every stream.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime

from flask import Flask
from sqlalchemy import func

from .extensions import db
from .models import NeighborhoodCount
from .observability import STREAM_CLIENTS
from .services.totals import pending_count

log = logging.getLogger(__name__)

Version = tuple[int, datetime | None, int]


def totals_version(campaign_id: int) -> Version:
    """Changes whenever any stored count of the campaign changes (up, down, or rebuilt), or its queue."""
    total, changed = db.session.execute(
        db.select(
            func.coalesce(func.sum(NeighborhoodCount.count), 0), func.max(NeighborhoodCount.updated_at)
        ).where(NeighborhoodCount.campaign_id == campaign_id)
    ).one()
    return int(total), changed, pending_count(campaign_id)


@dataclass(eq=False)
class Subscription:
    """One open stream: it keeps only the newest totals, so a slow reader never queues a backlog."""

    campaign_id: int
    version: Version  # of the totals this stream has been sent
    _latest: str | None = None
    _ready: threading.Event = field(default_factory=threading.Event)

    def offer(self, payload: str, version: Version) -> None:
        self._latest, self.version = payload, version
        self._ready.set()

    def next(self, timeout: float) -> str | None:
        """The newest totals since the last call, or None when `timeout` passes with no change."""
        if not self._ready.wait(timeout):
            return None
        self._ready.clear()
        return self._latest


class Broadcaster:
    def __init__(self, app: Flask, render: Callable[[int], str], interval: float = 1.0) -> None:
        self.app = app
        self.render = render
        self.interval = interval
        self._lock = threading.Lock()
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._rendered: dict[int, tuple[Version, str]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.polls = 0  # database reads made, for tests and metrics
        self.rounds = 0

    def subscribe(self, campaign_id: int, version: Version) -> Subscription:
        """Watch a campaign for a stream that was just sent the totals of `version`."""
        subscription = Subscription(campaign_id, version)
        STREAM_CLIENTS.inc()
        with self._lock:
            self._subscriptions.setdefault(campaign_id, set()).add(subscription)
            self._start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        STREAM_CLIENTS.dec()
        with self._lock:
            subscribers = self._subscriptions.get(subscription.campaign_id, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscriptions.pop(subscription.campaign_id, None)

    @property
    def client_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscriptions.values())

    def _start(self) -> None:
        # Started on first use, not at import: a gunicorn worker starts its own after forking.
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="porchlight-broadcaster", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.rounds += 1
            with self._lock:
                watched = list(self._subscriptions)
            if not watched:
                continue
            try:
                with self.app.app_context():
                    self._poll(watched)
            except Exception:  # noqa: BLE001 - a database hiccup must not end live updates
                log.exception("live totals: poll failed; retrying")

    def _poll(self, campaign_ids: list[int]) -> None:
        try:
            for campaign_id in campaign_ids:
                version = totals_version(campaign_id)
                self.polls += 1
                with self._lock:
                    behind = [s for s in self._subscriptions.get(campaign_id, ()) if s.version != version]
                if not behind:
                    continue
                cached = self._rendered.get(campaign_id)
                if cached is None or cached[0] != version:
                    cached = self._rendered[campaign_id] = (version, self.render(campaign_id))
                for subscription in behind:
                    subscription.offer(cached[1], version)
        finally:
            db.session.remove()


def sse(event: str, data: str) -> str:
    return f"event: {event}\ndata: {data}\n\n"


def stream_events(
    live: Broadcaster, subscription: Subscription, first_payload: str, heartbeat: float, retry_ms: int = 2000
) -> Iterator[str]:
    """The body of an event stream: totals now, totals after every change, a comment when quiet."""
    try:
        yield f"retry: {retry_ms}\n" + sse("totals", first_payload)
        while True:
            payload = subscription.next(timeout=heartbeat)
            yield sse("totals", payload) if payload is not None else ": heartbeat\n\n"
    finally:
        live.unsubscribe(subscription)


def init_app(app: Flask, render: Callable[[int], str]) -> None:
    app.extensions["live"] = Broadcaster(app, render, interval=app.config["LIVE_POLL_SECONDS"])


def broadcaster(app: Flask) -> Broadcaster:
    return app.extensions["live"]
