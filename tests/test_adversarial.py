"""Attacks that were tried over HTTP and failed, kept failing: each test breaks if its defence goes.

Sessions are checked by behaviour only (statuses, redirects, cookies), never by what a session holds,
so they hold for signed-cookie and server-side sessions alike.
"""

from __future__ import annotations

import json
import random
import re
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from .conftest import make_app
from .factories import bearer, csrf_token, make_key, post_pledge, submit_form, totals
from .servers import running_server, server_log_path

# area: (sign-in page, the page it opens, the scope of key that signs in there)
AREAS = {"admin": ("/admin/sign-in", "/admin", "admin"), "signup": ("/signup/sign-in", "/signup", "intake")}
SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
HOSTILE = "\"'><script>alert(1)</script>"


# --- sessions --------------------------------------------------------------------------------------


def cookies_set_by(response: TestResponse) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


def browser_with(app: Flask, cookies: dict[str, str]) -> FlaskClient:
    """A fresh browser holding exactly these cookies, as an attacker replaying them would."""
    browser = app.test_client()
    for name, value in cookies.items():
        browser.set_cookie(name, value)
    return browser


def sign_in(browser: FlaskClient, area: str, key: str, **query: str) -> TestResponse:
    page = AREAS[area][0]
    return browser.post(page, query_string=query, data={"key": key, "csrf_token": csrf_token(browser, page)})


@pytest.mark.parametrize("area", AREAS)
def test_a_session_cookie_planted_before_sign_in_opens_nothing_after_it(seeded_app, area):
    page, home, scope = AREAS[area]
    key = make_key(seeded_app, f"{area}-key", scope=scope)
    planted = cookies_set_by(seeded_app.test_client().get(page))
    assert planted, "the sign-in form sets no cookie: nothing to plant (update this test)"

    victim = browser_with(seeded_app, planted)
    signed_in = sign_in(victim, area, key)
    assert signed_in.status_code == 303 and victim.get(home).status_code == 200

    # The attacker who planted the cookie still holds it: it must not have become a signed-in session.
    assert browser_with(seeded_app, planted).get(home).status_code == 303
    # Replaying what the victim holds now does open it: the replay above is a fair test.
    assert browser_with(seeded_app, {**planted, **cookies_set_by(signed_in)}).get(home).status_code == 200


def test_a_session_cookie_copied_before_sign_out_opens_nothing_after_it(seeded_app):
    browser = seeded_app.test_client()
    signed_in = sign_in(browser, "admin", make_key(seeded_app, "mayor", scope="admin"))
    copied = cookies_set_by(signed_in)
    assert browser_with(seeded_app, copied).get("/admin").status_code == 200
    browser.post("/admin/sign-out", data={"csrf_token": csrf_token(browser, "/admin")})
    assert browser_with(seeded_app, copied).get("/admin").status_code == 303


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        " //evil.example",
        "https:/evil.example",
    ],
)
def test_sign_in_never_redirects_off_admin_whatever_next_says(seeded_app, target):
    signed_in = sign_in(
        seeded_app.test_client(), "admin", make_key(seeded_app, "mayor", scope="admin"), next=target
    )
    location = signed_in.headers["Location"]
    assert signed_in.status_code == 303
    assert location.startswith("/admin") and not location.startswith(("//", "/\\"))


def test_sign_in_keeps_a_next_that_stays_on_admin(seeded_app):
    signed_in = sign_in(
        seeded_app.test_client(), "admin", make_key(seeded_app, "mayor", scope="admin"), next="/admin/abuse"
    )
    assert signed_in.headers["Location"] == "/admin/abuse"


def test_a_next_with_a_line_break_still_redirects_to_admin(seeded_app):
    signed_in = sign_in(
        seeded_app.test_client(),
        "admin",
        make_key(seeded_app, "mayor", scope="admin"),
        next="/admin\r\nSet-Cookie: evil=1",
    )
    assert signed_in.status_code == 303 and signed_in.headers["Location"].startswith("/admin")
    assert "evil" not in " ".join(signed_in.headers.getlist("Set-Cookie"))


# --- authorization and CSRF on the pages -----------------------------------------------------------


def page_routes(app: Flask, prefix: str, method: str) -> list[str]:
    """Every page route under `prefix` for `method` but the sign-in ones, with its parameters filled in."""
    paths = []
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith(("/api/", "/static/")) or rule.rule.endswith("/sign-in"):
            continue
        if rule.rule.startswith(prefix) and method in rule.methods:
            paths.append(re.sub(r"<(?:[^:>]+:)?[^>]+>", "x1", rule.rule))
    return sorted(paths)


@pytest.mark.parametrize("area", AREAS)
def test_every_page_of_a_signed_in_area_sends_strangers_to_sign_in(seeded_app, area):
    page, home, _scope = AREAS[area]
    stranger = seeded_app.test_client()
    token = csrf_token(stranger, page)  # past CSRF, so it is the sign-in check that answers
    for path in page_routes(seeded_app, home, "GET"):
        refused = stranger.get(path)
        assert refused.status_code == 303 and page in refused.headers["Location"], path
    for path in page_routes(seeded_app, home, "POST"):
        if path.endswith("/sign-out"):
            continue
        refused = stranger.post(path, data={"csrf_token": token, "reason": "x", "action": "release"})
        assert refused.status_code == 303 and page in refused.headers["Location"], path


def test_a_signup_table_session_opens_no_admin_page_even_with_an_admin_key(seeded_app):
    for scope in ("intake", "admin"):
        table = seeded_app.test_client()
        assert (
            sign_in(table, "signup", make_key(seeded_app, f"table-{scope}", scope=scope)).status_code == 303
        )
        for path in page_routes(seeded_app, "/admin", "GET"):
            assert table.get(path).status_code == 303, (scope, path)


def test_every_page_form_refuses_a_post_without_its_csrf_token_and_changes_nothing(seeded_app):
    browsers = {"/admin": seeded_app.test_client(), "/signup": seeded_app.test_client()}
    sign_in(browsers["/admin"], "admin", make_key(seeded_app, "mayor", scope="admin"))
    sign_in(browsers["/signup"], "signup", make_key(seeded_app, "table", scope="intake"))
    stranger = seeded_app.test_client()
    post_pledge(stranger)
    key = make_key(seeded_app, "late", scope="admin")
    posts = [p for p in page_routes(seeded_app, "/", "POST") if p != "/"] + ["/", "/admin/sign-in"]
    for path in posts:
        browser = next((b for prefix, b in browsers.items() if path.startswith(prefix)), stranger)
        fields = {"key": key, "reason": "x", "action": "release", "confirm": "1", "kind": "resident"}
        refused = browser.post(path, data={**fields, "neighborhood": "allentown", "email": "c@example.org"})
        assert refused.status_code == 400, path
    # Still signed in (sign-out was refused), and not a pledge more or less.
    assert browsers["/admin"].get("/admin").status_code == 200
    assert browsers["/signup"].get("/signup").status_code == 200
    assert totals(stranger)["total"] == 1


def test_a_csrf_token_from_another_browser_is_refused(seeded_app):
    attacker, victim = seeded_app.test_client(), seeded_app.test_client()
    sign_in(victim, "admin", make_key(seeded_app, "mayor", scope="admin"))
    stolen = csrf_token(attacker, "/admin/sign-in")
    refused = victim.post("/admin/sign-out", data={"csrf_token": stolen})
    assert refused.status_code == 400 and victim.get("/admin").status_code == 200
    assert submit_form(victim, token=stolen).status_code == 400


# --- escaping --------------------------------------------------------------------------------------


def test_hostile_text_comes_back_escaped_in_every_page_that_shows_it(seeded_app):
    browser = seeded_app.test_client()
    assert post_pledge(browser, name=HOSTILE, email="hostile@example.org").status_code == 201
    sign_in(browser, "admin", make_key(seeded_app, "mayor", scope="admin"))
    pages = {
        "the admin list": browser.get("/admin"),
        "the admin search": browser.get("/admin", query_string={"q": HOSTILE}),
        "the front page form, refused and shown again": submit_form(
            seeded_app.test_client(), name=HOSTILE, email=HOSTILE
        ),
    }
    for where, page in pages.items():
        html = page.get_data(as_text=True)
        assert "<script>alert(1)" not in html and "'><script" not in html, where
        assert "&lt;script&gt;alert(1)" in html, where


# --- request ids ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "abc\r\nSet-Cookie: evil=1",
        "abc\rdef",
        "A" * 10 * 1024,
        "évil-ünïcode",
        "trace id with spaces",
        "",
    ],
)
def test_a_forged_request_id_is_replaced_by_a_safe_one(client, given):
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": given})
    answered = response.headers.getlist("X-Request-ID")
    assert response.status_code == 200 and len(answered) == 1
    assert SAFE_REQUEST_ID.fullmatch(answered[0]) and answered[0] != given


def test_a_request_id_ending_in_a_newline_is_replaced_too(client):
    response = client.get("/healthz", environ_overrides={"HTTP_X_REQUEST_ID": "abc\n"})
    assert response.status_code == 200
    assert SAFE_REQUEST_ID.fullmatch(response.headers["X-Request-ID"])


# --- key timing ---------------------------------------------------------------------------------------


def test_a_nearly_right_a_random_and_a_revoked_key_are_refused_in_about_the_same_time(database_url, tmp_path):
    """A refusal that took longer for some keys would tell an attacker which guesses are close, or real.

    Keys of the right shape only: one that is not ("xx_…", none at all) is refused before the database
    is asked, which tells nothing secret. Rounds in a shuffled order, so load and order fall on every
    kind alike; a kind counts as slower only if its median is 1.5 × the fastest's and it was slower in
    90 % of rounds: a path that does more work for some keys, not the noise of a loaded machine.
    """
    from flask_migrate import upgrade

    from pledges.services.seeding import seed

    app = make_app(
        database_url, tmp_path, API_RATE_LIMIT="1000000/minute", API_KEY_RATE_LIMIT="1000000/minute"
    )
    with app.app_context():
        upgrade()
        seed(goal=1000)
    real = make_key(app, "real", scope="admin")
    revoked = make_key(app, "revoked", scope="admin")
    app.test_cli_runner().invoke(args=["keys", "revoke", "revoked"])
    callers = {
        "random": bearer("pl_" + "x" * (len(real) - 3)),
        "all but the last character right": bearer(real[:-1] + ("A" if real[-1] != "A" else "B")),
        "revoked": bearer(revoked),
    }
    browser = app.test_client()
    samples: dict[str, list[float]] = {name: [] for name in callers}
    order, shuffler = list(callers), random.Random(0)
    for _round in range(300):
        shuffler.shuffle(order)
        for name in order:
            started = time.perf_counter()
            response = browser.get("/api/v1/admin/audit", headers=callers[name])
            samples[name].append(time.perf_counter() - started)
            assert response.status_code == 401, name
    samples = {name: times[30:] for name, times in samples.items()}  # past warm-up
    medians = {name: statistics.median(times) for name, times in samples.items()}
    fastest = min(medians, key=medians.__getitem__)
    for name, times in samples.items():
        slower = sum(mine > theirs for mine, theirs in zip(times, samples[fastest], strict=True)) / len(times)
        assert not (medians[name] > 1.5 * medians[fastest] and slower > 0.9), (name, slower, medians)
    assert browser.get("/api/v1/admin/audit", headers=bearer(real)).status_code == 200


# --- limits, on a real server --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One gunicorn with one worker for the tests below: (base URL, its log)."""
    tmp_path = tmp_path_factory.mktemp("adversarial")
    with running_server(f"sqlite:///{tmp_path / 'porchlight.db'}", tmp_path, workers=1) as base:
        yield base, server_log_path(tmp_path)


def address(base: str) -> tuple[str, int]:
    host, port = base.removeprefix("http://").split(":")
    return host, int(port)


def exchange(base: str, raw: bytes, timeout: float = 5) -> bytes:
    """Send raw bytes on a new connection and read the answer until the server closes it."""
    with socket.create_connection(address(base), timeout=timeout) as connection:
        connection.sendall(raw)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer


def get_request(path: bytes, *header_lines: bytes) -> bytes:
    return b"\r\n".join(
        [b"GET " + path + b" HTTP/1.1", b"Host: 127.0.0.1", *header_lines, b"Connection: close"]
    ) + (b"\r\n\r\n")


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def head_of(answer: bytes) -> list[bytes]:
    return answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


@pytest.mark.slow
def test_a_forged_request_id_reaches_neither_the_response_nor_the_log(server):
    base, log = server
    marker = b"INJECTED-7f3a"
    forged = [
        b"X-Request-ID: ok\r\nSet-Cookie: " + marker,  # a header of its own: harmless, but not echoed
        b"X-Request-ID: ok\r" + marker,
        b"X-Request-ID: ok\n" + marker,
        b"X-Request-ID: ok\r\n " + marker,  # folded onto the line before
        b"X-Request-ID: " + marker + b"-" + "é".encode() * 8,
        b"X-Request-ID: " + marker + b"A" * 10 * 1024,
    ]
    for line in forged:
        answer = exchange(base, get_request(b"/healthz", line))
        head = head_of(answer)
        assert status_of(answer) in (200, 400, 431), answer[:200]
        assert not any(marker in header for header in head[1:]), head
        ids = [h.split(b":", 1)[1].strip() for h in head if h.lower().startswith(b"x-request-id:")]
        assert all(SAFE_REQUEST_ID.fullmatch(value.decode()) for value in ids), ids
    assert requests.get(base + "/healthz", timeout=5).status_code == 200  # logged before we read the log
    text = log.read_text(errors="replace")
    assert marker.decode() not in text and "é" not in text
    entries = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert entries and all(SAFE_REQUEST_ID.fullmatch(entry["request_id"]) for entry in entries)


@pytest.mark.slow
def test_oversized_headers_request_lines_and_bodies_are_refused_cleanly(server):
    base, log = server
    header_over = get_request(b"/healthz", b"X-Padding: " + b"x" * 8190)
    too_many = get_request(b"/healthz", *(b"X-H%d: v" % n for n in range(101)))
    line_over = get_request(b"/healthz?q=" + b"x" * 8200)
    assert status_of(exchange(base, header_over)) in (400, 431)
    assert status_of(exchange(base, too_many)) in (400, 431)
    assert status_of(exchange(base, line_over)) == 414

    pledges = base + "/api/v1/campaigns/current/pledges"
    oversized = json.dumps(
        {"kind": "resident", "neighborhood": "lovejoy", "email": "a@x.org", "n": "x" * 17 * 1024}
    )
    big = requests.post(pledges, data=oversized, headers={"Content-Type": "application/json"}, timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    # 10,000 levels deep yet under 16 KiB: the nesting guard answers, before Python's parser could recurse.
    deep = requests.post(pledges, data="[" * 10_000, headers={"Content-Type": "application/json"}, timeout=10)
    assert deep.status_code == 400 and deep.json()["error"]["code"] == "bad_request"
    assert "nest" in deep.json()["error"]["message"]

    assert requests.get(base + "/api/v1/campaigns", timeout=5).status_code == 200
    assert "Traceback" not in log.read_text(errors="replace")


@pytest.mark.slow
def test_many_clients_dripping_headers_or_a_body_hold_up_no_one(server):
    base, _log = server
    stop = threading.Event()
    opened = threading.Semaphore(0)
    body_head = (
        b"POST /api/v1/campaigns/current/pledges HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 5000\r\n\r\n"
    )

    def drip(head: bytes) -> None:
        with socket.create_connection(address(base), timeout=5) as slow:
            slow.sendall(head)
            opened.release()
            for byte in b"X-Slow: " + b"y" * 500:
                if stop.wait(0.05):
                    return
                slow.send(bytes([byte]))

    drippers = [
        threading.Thread(
            target=drip, args=(b"GET /healthz HTTP/1.1\r\n",) if n % 2 else (body_head,), daemon=True
        )
        for n in range(40)
    ]
    for dripper in drippers:
        dripper.start()
    try:
        assert all(opened.acquire(timeout=5) for _ in drippers)
        waits = []
        for _ in range(20):
            started = time.monotonic()
            assert requests.get(base + "/healthz", timeout=2).status_code == 200
            waits.append(time.monotonic() - started)
    finally:
        stop.set()
        for dripper in drippers:
            dripper.join(timeout=5)
    assert max(waits) < 1.0, waits
