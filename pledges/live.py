"""Live totals: one broadcaster per process watches the shared database and fans changes out to streams.

However many dashboards are open, each process reads the database about once a
second (one small query per watched campaign). Because it reads the database,
a pledge taken by any worker or any app instance reaches every stream.

Streams are capped (streams.StreamSeats): a process holds at most STREAMS_PER_PROCESS, an address at
most STREAMS_PER_ADDRESS, so open dashboards can never take the connections pledges and pages
need; on shutdown every stream ends at once (end_all_streams).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import Flask
from sqlalchemy import func

from .extensions import db, limiter
from .models import NeighborhoodCount
from .observability import STREAM_CLIENTS
from .services.totals import pending_count
from .streams import Seat, StreamSeats

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


def version_id(version: Version) -> str:
    """A version as a stream event's `id:`, what a reconnect sends back as Last-Event-ID.

    The same in every process (it is read from the shared database): total, last change in
    microseconds since the epoch, and queue, joined by dots.
    """
    total, changed, pending = version
    micros = 0 if changed is None else round(changed.timestamp() * 1_000_000)
    return f"{total}.{micros}.{pending}"


@dataclass(eq=False)
class Subscription:
    """One open stream: it keeps only the newest totals, so a slow reader never queues a backlog."""

    campaign_id: int
    version: Version  # of the totals this stream has been sent
    seat: Seat | None = None
    _latest: tuple[str, Version] | None = None  # the payload and its version, set together
    _ready: threading.Event = field(default_factory=threading.Event)
    ended: bool = False  # the server is stopping, or the client has gone

    def offer(self, payload: str, version: Version) -> None:
        self._latest, self.version = (payload, version), version
        self._ready.set()

    def end(self) -> None:
        self.ended = True
        self._ready.set()

    def next(self, timeout: float) -> str | None:
        """The newest totals since the last call, or None when `timeout` passes with no change."""
        latest = self.next_with_version(timeout)
        return latest[0] if latest is not None else None

    def next_with_version(self, timeout: float) -> tuple[str, Version] | None:
        """`next`, with the version of the totals it gives."""
        if not self._ready.wait(timeout):
            return None
        self._ready.clear()
        return self._latest


class Broadcaster:
    def __init__(
        self,
        app: Flask,
        render: Callable[[int], str],
        interval: float = 1.0,
        seats: StreamSeats | None = None,
    ) -> None:
        self.app = app
        self.render = render
        self.interval = interval
        self.seats = seats or StreamSeats(per_process=1_000_000, per_address=1_000_000, heartbeat=15)
        self._lock = threading.Lock()
        self._subscriptions: dict[int, set[Subscription]] = {}
        self._rendered: dict[int, tuple[Version, str]] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.polls = 0  # database reads made, for tests and metrics
        self.rounds = 0
        BROADCASTERS.add(self)

    def subscribe(self, campaign_id: int, version: Version, seat: Seat | None = None) -> Subscription:
        """Watch a campaign for a stream that was just sent the totals of `version`; it keeps `seat`."""
        subscription = Subscription(campaign_id, version, seat)
        STREAM_CLIENTS.inc()
        with self._lock:
            self._subscriptions.setdefault(campaign_id, set()).add(subscription)
            self._start()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The stream ended: forget it and free its seat (once, however many ways it ends)."""
        with self._lock:
            subscribers = self._subscriptions.get(subscription.campaign_id, set())
            if subscription not in subscribers:
                return
            subscribers.discard(subscription)
            if not subscribers:
                self._subscriptions.pop(subscription.campaign_id, None)
        STREAM_CLIENTS.dec()
        if subscription.seat is not None:
            self.seats.release(subscription.seat)

    @property
    def client_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subscriptions.values())

    def end_streams(self) -> None:
        """Shutdown: every open stream ends now, and no new one opens."""
        with self.seats.lock:
            self.seats.closing = True
        with self._lock:
            subscriptions = [s for subscribers in self._subscriptions.values() for s in subscribers]
        for subscription in subscriptions:
            subscription.end()
        self.stop()

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


# Every broadcaster of this process, for end_all_streams (gunicorn.conf.py's SIGTERM hook).
BROADCASTERS: weakref.WeakSet[Broadcaster] = weakref.WeakSet()


def end_all_streams() -> None:
    """End every open stream of this process at once: a restart then waits for no dashboard."""
    for broadcaster in list(BROADCASTERS):
        broadcaster.end_streams()


def sse(event: str, data: str, id: str | None = None) -> str:
    return (f"id: {id}\n" if id is not None else "") + f"event: {event}\ndata: {data}\n\n"


def stream_events(
    live: Broadcaster,
    subscription: Subscription,
    first: tuple[str, Version] | None,
    heartbeat: float,
    retry_ms: int = 2000,
    connection: Any = None,
) -> Iterator[str]:
    """The body of an event stream: totals now, totals after every change, a comment when quiet.

    `first` is the totals sent at once, with their version; each totals event carries its version
    as `id:`. None (a reconnect whose Last-Event-ID is the current version) waits for a change.

    It ends when the server stops, or when the client closes `connection` (gunicorn's socket,
    watched under gevent) or a write to it fails; whichever way, it gives its seat back.
    """
    stop_watching = watch_for_hangup(connection, subscription, heartbeat) if connection is not None else None
    try:
        if first is None:
            yield f"retry: {retry_ms}\n\n"
        else:
            yield f"retry: {retry_ms}\n" + sse("totals", first[0], version_id(first[1]))
        while not subscription.ended:
            latest = subscription.next_with_version(timeout=heartbeat)
            if subscription.ended:
                return
            if subscription.seat is not None:
                live.seats.renew(subscription.seat)
            yield ": heartbeat\n\n" if latest is None else sse("totals", latest[0], version_id(latest[1]))
    finally:
        if stop_watching is not None:
            stop_watching()
        if subscription.ended and connection is not None:
            # No request follows an ended stream here: gunicorn then closes the connection at once
            # (a shutdown waits for no idle keep-alive), and the client reconnects elsewhere.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RD)
        live.unsubscribe(subscription)


def watch_for_hangup(
    connection: socket.socket, subscription: Subscription, heartbeat: float
) -> Callable[[], None] | None:
    """End the stream as soon as the client closes its connection, not a heartbeat or two later.

    Under gevent only: a greenlet, stopped (the function returned) before gunicorn reads the
    connection again. With other workers a thread blocked on the socket would outlive it, so
    there the heartbeat's failed write notices instead.
    """
    try:
        import gevent
        from gevent import monkey
    except ImportError:
        return None
    if not monkey.is_module_patched("socket"):
        return None
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        # A client gone without a word (network cut): heartbeats left unacknowledged end it.
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(heartbeat * 2000) + 1000)

    def wait_for_hangup() -> None:
        try:
            # Peeked, not read: bytes a client sends (none, from EventSource) stay for gunicorn.
            if connection.recv(1, socket.MSG_PEEK):
                return
        except OSError:
            pass
        subscription.end()

    watcher = gevent.spawn(wait_for_hangup)

    def stop() -> None:
        # Waited for, unless called from the hub (which must not block): the socket is free after.
        watcher.kill(block=gevent.getcurrent() is not gevent.get_hub())

    return stop


def init_app(app: Flask, render: Callable[[int], str]) -> None:
    storage = limiter.storage if app.config["RATELIMIT_ENABLED"] else None
    seats = StreamSeats(
        per_process=app.config["STREAMS_PER_PROCESS"],
        per_address=app.config["STREAMS_PER_ADDRESS"],
        heartbeat=app.config["STREAM_HEARTBEAT_SECONDS"],
        storage=storage,
        prefix=app.config["RATELIMIT_KEY_PREFIX"],
    )
    app.extensions["live"] = Broadcaster(app, render, interval=app.config["LIVE_POLL_SECONDS"], seats=seats)


def broadcaster(app: Flask) -> Broadcaster:
    return app.extensions["live"]
