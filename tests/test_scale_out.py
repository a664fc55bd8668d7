"""Scale-out: two app instances, one PostgreSQL, one Redis — counted once, limited together, live on both."""

from __future__ import annotations

import json
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from pledges.extensions import db
from pledges.models import Pledge
from pledges.services.counts import find_drift

from .conftest import POSTGRESQL, make_app
from .servers import running_server, settled_totals

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("backend", [POSTGRESQL], indirect=True)]
PLEDGES = "/api/v1/campaigns/current/pledges"


def test_two_instances_count_each_pledge_once_and_stream_each_others_pledges(
    database_url, tmp_path, redis_url
):
    shared = {"RATELIMIT_STORAGE_URI": redis_url, "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_server(database_url, tmp_path / "a", workers=2, extra_env=shared) as first,
        running_server(database_url, tmp_path / "b", workers=2, extra_env=shared) as second,
    ):
        # A stream on the first instance, watching for pledges taken by the second.
        stream = requests.get(first + "/api/v1/campaigns/current/stream", stream=True, timeout=15)
        totals_seen: list[int] = []
        seen = threading.Condition()

        def read_stream() -> None:
            try:
                for line in stream.iter_lines(decode_unicode=True):
                    if line.startswith("data: "):
                        with seen:
                            totals_seen.append(json.loads(line[6:])["total"])
                            seen.notify_all()
            except (requests.RequestException, AttributeError):
                return  # the test closed the stream

        reader = threading.Thread(target=read_stream, daemon=True)
        reader.start()

        # 200 pledges, a quarter of them repeated, each pair sent to both instances at once.
        emails = [f"scale{n}@example.org" for n in range(200)]
        plan = [(random.Random(n).choice((first, second)), e) for n, e in enumerate(emails)]
        plan += [(second if base == first else first, e) for base, e in plan[:50]]
        random.Random(7).shuffle(plan)
        answers: list[tuple[str, int, str]] = []
        lock = threading.Lock()

        def pledge(base: str, email: str) -> None:
            response = requests.post(
                base + PLEDGES,
                json={"kind": "resident", "neighborhood": "lovejoy", "email": email},
                timeout=30,
            )
            with lock:
                answers.append((email, response.status_code, response.json().get("id", "")))

        with ThreadPoolExecutor(max_workers=16) as pool:
            for base, email in plan:
                pool.submit(pledge, base, email)

        assert {status for _, status, _ in answers} <= {200, 201}
        assert sum(1 for _, status, _ in answers if status == 201) == 200
        ids: dict[str, set[str]] = {}
        for email, _, pledge_id in answers:
            ids.setdefault(email, set()).add(pledge_id)
        assert all(len(found) == 1 for found in ids.values())
        for base in (first, second):
            assert settled_totals(base)["total"] == 200
        with seen:
            assert seen.wait_for(lambda: 200 in totals_seen, timeout=15), totals_seen[-3:]
        stream.close()

    app = make_app(database_url, tmp_path)
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count()).select_from(Pledge)) == 200
        assert find_drift(db.session.scalars(db.select(Pledge.campaign_id)).first()) == []


def test_the_rate_limit_holds_across_both_instances(database_url, tmp_path, redis_url):
    shared = {
        "RATELIMIT_STORAGE_URI": redis_url,
        "RATELIMIT_KEY_PREFIX": uuid.uuid4().hex,
        "API_RATE_LIMIT": "8/minute",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        running_server(database_url, tmp_path / "a", workers=2, extra_env=shared) as first,
        running_server(database_url, tmp_path / "b", workers=2, extra_env=shared) as second,
    ):
        statuses = [
            requests.get(
                base + "/api/v1/campaigns/current/totals", headers={"Connection": "close"}, timeout=10
            ).status_code
            for base in [first, second] * 6
        ]
    assert statuses.count(200) == 8
    assert statuses[-4:] == [429] * 4
