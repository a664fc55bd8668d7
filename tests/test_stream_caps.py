"""Open streams are capped per address and per process, so they never starve pledges and pages."""

from __future__ import annotations

import signal
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
import requests
from limits.storage import storage_from_string

from pledges.streams import StreamSeats, TooManyStreams

from .factories import eventually
from .servers import prepare_database, serve, server_env

STREAM = "/api/v1/campaigns/current/stream"
WAIT = 10.0
# Low caps, one worker: three streams fill the process. TRUSTED_PROXIES lets X-Forwarded-For
# stand for other addresses.
CAPS = {"STREAMS_PER_ADDRESS": "2", "STREAMS_PER_PROCESS": "3", "TRUSTED_PROXIES": "1"}


class Stream:
    """One stream request; its lines are read on from where open() left them."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        self.status_code = response.status_code
        # Kept: a line iterator dropped mid-stream closes the connection (the server notices).
        self.lines: Iterator[str] = response.iter_lines(decode_unicode=True)


class Server:
    def __init__(self, base_url: str, process) -> None:
        self.base_url = base_url
        self.process = process
        self.streams = ExitStack()
        self.opened: list[Stream] = []  # held open until the test ends

    def open(self, address: str) -> Stream:
        """A stream from `address`, read up to its first event when accepted; closed after the test."""
        response = requests.get(
            self.base_url + STREAM, headers={"X-Forwarded-For": address}, stream=True, timeout=WAIT
        )
        self.streams.callback(response.close)
        stream = Stream(response)
        self.opened.append(stream)
        if response.status_code == 200:
            assert next(line for line in stream.lines if line.startswith("event:")) == "event: totals"
        return stream


@pytest.fixture
def server(database_url, tmp_path) -> Iterator[Server]:
    env = server_env(database_url, tmp_path, CAPS)
    prepare_database(env)
    with serve(env, tmp_path, workers=1) as (base_url, process):
        running = Server(base_url, process)
        with running.streams:
            yield running


def assert_refused(stream: Stream, status: int, code: str) -> None:
    response = stream.response
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code
    assert int(response.headers["Retry-After"]) > 0


@pytest.mark.slow
def test_a_third_stream_from_one_address_is_429_with_retry_after_while_others_still_get_one(server):
    first, second = server.open("203.0.113.1"), server.open("203.0.113.1")

    third = server.open("203.0.113.1")

    assert (first.status_code, second.status_code) == (200, 200)
    assert_refused(third, 429, "rate_limited")
    assert server.open("203.0.113.2").status_code == 200


@pytest.mark.slow
def test_a_stream_beyond_the_process_cap_is_503_with_retry_after_whatever_its_address(server):
    opened = [server.open(f"198.51.100.{n}").status_code for n in (1, 2, 3)]

    fourth = server.open("198.51.100.4")

    assert opened == [200, 200, 200]
    assert_refused(fourth, 503, "unavailable")


@pytest.mark.slow
def test_closing_a_stream_gives_its_seat_back_at_once_not_at_the_next_heartbeat(server):
    # STREAM_HEARTBEAT_SECONDS is 15: a seat freed only by a failed heartbeat would take 15-30 s.
    first, _second = server.open("192.0.2.7"), server.open("192.0.2.7")
    assert server.open("192.0.2.7").status_code == 429

    first.response.close()

    assert eventually(lambda: server.open("192.0.2.7").status_code == 200, seconds=5, every=0.1)


@pytest.mark.slow
def test_health_the_front_page_and_a_pledge_answer_at_once_while_the_stream_caps_are_full(server):
    for n in (1, 2, 3):
        server.open(f"198.51.100.{n}")
    assert server.open("198.51.100.9").status_code == 503
    assert server.open("198.51.100.1").status_code in (429, 503)

    timed: dict[str, tuple[int, float]] = {}
    for name, send in {
        "/healthz": lambda: requests.get(server.base_url + "/healthz", timeout=WAIT),
        "/": lambda: requests.get(server.base_url + "/", timeout=WAIT),
        "pledge": lambda: requests.post(
            server.base_url + "/api/v1/campaigns/current/pledges",
            json={"kind": "resident", "neighborhood": "allentown", "email": "caps@example.org"},
            timeout=WAIT,
        ),
    }.items():
        started = time.monotonic()
        status = send().status_code
        timed[name] = (status, time.monotonic() - started)

    assert [status for status, _ in timed.values()] == [200, 200, 201]
    assert max(seconds for _, seconds in timed.values()) < 2.0, timed


@pytest.mark.slow
def test_sigterm_ends_every_open_stream_within_two_seconds(server):
    streams = [server.open("203.0.113.5"), server.open("203.0.113.6")]
    ended: list[float] = []

    def read_to_the_end(stream: Stream) -> None:
        try:
            for _ in stream.lines:
                pass
        except requests.RequestException:
            pass
        ended.append(time.monotonic())
        stream.response.close()  # as a browser does with a stream that ended

    readers = [threading.Thread(target=read_to_the_end, args=(s,), daemon=True) for s in streams]
    for reader in readers:
        reader.start()

    signalled = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    for reader in readers:
        reader.join(timeout=WAIT)
    server.process.wait(timeout=WAIT)
    exited = time.monotonic()

    assert len(ended) == 2, "a stream was still open 10 s after SIGTERM"
    assert max(ended) - signalled <= 2.0, f"streams ended {[round(t - signalled, 2) for t in ended]} s after"
    # About 1 s: the worker looks at its stop flag once a second; a little more on a busy machine.
    assert exited - signalled <= 3.0, f"gunicorn took {exited - signalled:.1f} s to stop"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_with_redis_two_instances_share_one_address_cap_and_a_stream_stays_counted_once_over_windows(
    redis_url,
):
    storage = storage_from_string(redis_url)
    prefix, clock = f"test-{uuid.uuid4().hex}", FakeClock()
    first, second = (
        StreamSeats(per_process=10, per_address=2, heartbeat=15, storage=storage, prefix=prefix, clock=clock)
        for _ in range(2)
    )
    held = [first.take("203.0.113.9"), second.take("203.0.113.9")]

    with pytest.raises(TooManyStreams) as refused:
        first.take("203.0.113.9")
    assert int(refused.value.headers["Retry-After"]) > 0

    # A window later every stream has renewed its seat at a heartbeat: counted once, not twice or lost.
    clock.now += 60
    first.renew(held[0])
    second.renew(held[1])
    with pytest.raises(TooManyStreams):
        second.take("203.0.113.9")

    second.release(held[1])
    held.append(first.take("203.0.113.9"))
    first.release(held[0])
    first.release(held[2])
    assert [second.take("203.0.113.9"), second.take("203.0.113.9")]
