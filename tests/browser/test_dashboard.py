"""The live dashboard in a real browser: pledges appear without reload, over the stream or by polling.

Also: it comes back by itself after a dropped connection, axe-core finds nothing, the kiosk fills a
1920×1080 projector without scrollbars, and a phone never scrolls sideways. Screenshots go to
tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import pytest
from playwright.sync_api import Page, Route, expect

from ..factories import eventually
from ..servers import SNAPSHOT_WAIT
from .conftest import (
    DESKTOP,
    PHONE,
    api_totals,
    axe_violations,
    neighborhood_count,
    pledge_through_api,
    sideways_overflow,
)

pytestmark = pytest.mark.browser
KIOSK = {"width": 1920, "height": 1080}
WAIT_MS = 10_000  # for what the page must show by itself: an update, a state change
POLL_MS = 5_000  # dashboard.js polls totals this often when it cannot stream
STREAM = "**/api/v1/campaigns/*/stream"
_businesses = itertools.count(1)


@pytest.fixture(scope="module", autouse=True)
def some_pledges(server: str) -> None:
    """Enough pledges for bars of different lengths and a wall of businesses with long names."""
    for neighborhood, count in [("elmwood-bidwell", 3), ("allentown", 2), ("kaisertown", 1)]:
        for _ in range(count):
            pledge_through_api(server, neighborhood=neighborhood)
    for neighborhood in ("black-rock", "central-park", "university-heights"):
        name = f"Hertel Avenue Hardware & Garden Supply Cooperative No. {next(_businesses)}"  # near 60
        pledge_through_api(server, kind="business", neighborhood=neighborhood, name=name, show_name=True)


def open_dashboard(page: Page, query: str = "", state: str = "live") -> None:
    page.goto(f"/dashboard{query}")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", state, timeout=WAIT_MS)


def expect_totals_shown(page: Page, server: str, slug: str) -> None:
    """The page shows the API's current total, residents and `slug`'s bar count, within WAIT_MS."""
    totals = api_totals(server)
    expect(page.locator("[data-total]")).to_have_text(f"{totals['total']:,}", timeout=WAIT_MS)
    expect(page.locator("[data-residents]")).to_have_text(f"{totals['residents']:,}")
    count = page.locator(f"[data-standings] [data-slug={slug}] .bar-count")
    expect(count).to_have_text(f"{neighborhood_count(server, slug):,}")


def mark_document(page: Page) -> None:
    """A flag that a reload or navigation would wipe, to prove an update came without one."""
    page.evaluate("window.stillTheSamePage = true")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("window.stillTheSamePage === true"), "the page was reloaded"


def shown_ranking(page: Page) -> list[int]:
    counts = page.locator("[data-standings] .bar-count").all_inner_texts()
    return [int(text.replace(",", "")) for text in counts]


def test_a_pledge_made_through_the_api_appears_on_an_open_dashboard_without_reload(page, server):
    open_dashboard(page)
    expect_totals_shown(page, server, "ellicott")
    mark_document(page)

    # Enough pledges to lift Ellicott to the top, so the ranking must change too.
    leader = max(shown_ranking(page))
    for _ in range(max(1, leader + 1 - neighborhood_count(server, "ellicott"))):
        pledge_through_api(server, neighborhood="ellicott")

    expect_totals_shown(page, server, "ellicott")
    expect(page.locator("[data-standings] li").first).to_have_attribute("data-slug", "ellicott")
    ranking = shown_ranking(page)
    assert ranking == sorted(ranking, reverse=True), f"the bars are not ranked: {ranking}"
    expect(page.locator("[data-updated]")).not_to_have_attribute("datetime", "")
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "live")
    assert_not_reloaded(page)


@pytest.mark.parametrize(
    "breakage",
    ["no EventSource", "stream answers 503", "stream unreachable"],
)
def test_without_a_stream_the_dashboard_polls_and_still_shows_new_pledges(new_context, server, breakage):
    page = new_context().new_page()
    if breakage == "no EventSource":
        page.add_init_script("delete window.EventSource")
    elif breakage == "stream answers 503":
        page.route(STREAM, lambda route: route.fulfill(status=503, body="down for maintenance"))
    else:
        # dashboard.js gives up on a stream that fails three times before it ever opened.
        page.route(STREAM, lambda route: route.abort("connectionrefused"))
    # Timers are faked so the test moves time on instead of waiting out the poll interval.
    page.clock.install()
    open_dashboard(page, state="polling")
    mark_document(page)

    pledge_through_api(server, neighborhood="lovejoy")
    page.clock.run_for(POLL_MS + 1_000)

    expect_totals_shown(page, server, "lovejoy")
    expect(page.locator("[data-connection]")).to_have_text("Updating every few seconds")
    assert_not_reloaded(page)


def test_the_dashboard_polls_with_the_etag_so_an_unchanged_total_costs_a_304(new_context):
    page = new_context().new_page()
    page.add_init_script("delete window.EventSource")
    # The status on the wire, before the browser's cache turns a 304 back into the 200 it stored.
    # DevTools may report a response's raw status before the request itself: both are kept, by id.
    wire = page.context.new_cdp_session(page)
    polls: list[str] = []
    status_of: dict[str, int] = {}
    wire.on(
        "Network.requestWillBeSent",
        lambda e: "/totals" in e["request"]["url"] and polls.append(e["requestId"]),
    )
    wire.on(
        "Network.responseReceivedExtraInfo",
        lambda e: status_of.__setitem__(e["requestId"], e["statusCode"]),
    )
    wire.send("Network.enable")
    page.clock.install()
    # Each worker's totals copy lives up to SNAPSHOT_SECONDS: once earlier tests' pledges have
    # shown on every worker, both polls meet the same totals, whichever worker answers them.
    time.sleep(SNAPSHOT_WAIT)
    with page.expect_response(lambda r: "/totals" in r.url) as first:
        open_dashboard(page, state="polling")
    etag = first.value.header_value("etag")

    with page.expect_response(lambda r: "/totals" in r.url) as second:
        page.clock.run_for(POLL_MS + 1_000)
    second.value.all_headers()  # waits for the raw response to be reported
    # The DevTools event can come a little later.
    eventually(lambda: len(polls) >= 2 and all(poll in status_of for poll in polls[:2]), seconds=5)
    statuses = [status_of.get(poll) for poll in polls]

    assert etag and second.value.request.header_value("if-none-match") == etag
    assert statuses[:2] == [200, 304], f"nothing changed, yet the polls were answered {statuses}"


def test_a_dropped_stream_shows_reconnecting_then_goes_live_again_by_itself(new_context, server, flaky_link):
    page = new_context(base_url=flaky_link.url).new_page()
    open_dashboard(page)
    mark_document(page)

    flaky_link.cut()
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("[data-connection]")).to_have_text("Reconnecting…")
    # A pledge while the dashboard is cut off; and the page keeps trying (and failing) meanwhile.
    pledge_through_api(server, neighborhood="riverside")
    assert flaky_link.wait_for_refusals(1, timeout=WAIT_MS / 1000), "the page never tried to reconnect"
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "reconnecting")

    flaky_link.restore()
    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    expect_totals_shown(page, server, "riverside")
    assert_not_reloaded(page)


@pytest.mark.parametrize(
    ("query", "viewport"),
    [("", DESKTOP), ("?kiosk=1", KIOSK), ("?lang=es", DESKTOP)],
    ids=["normal", "kiosk", "spanish"],
)
def test_the_dashboard_has_no_accessibility_violations(new_context, axe_source, artifacts, query, viewport):
    page = new_context(viewport=viewport).new_page()
    open_dashboard(page, query)
    if query == "":
        page.screenshot(path=artifacts / "dashboard-1280.png", full_page=True)
    elif query == "?lang=es":
        assert page.get_attribute("html", "lang") == "es"
        expect(page.locator("[data-connection]")).to_have_text("En vivo")
        page.screenshot(path=artifacts / "dashboard-es-1280.png", full_page=True)

    found = axe_violations(page, axe_source)

    assert not found, f"axe found WCAG 2.1 A/AA violations on /dashboard{query}:\n" + "\n".join(found)


def layout(page: Page) -> dict[str, Any]:
    """What overflows the window: the page itself, the big total (or does it wrap?), any neighborhood row."""
    return page.evaluate(
        """() => {
            const root = document.documentElement;
            const box = el => el.getBoundingClientRect();
            const outside = el => {
                const r = box(el);
                return r.left < 0 || r.top < 0 || r.right > innerWidth || r.bottom > innerHeight;
            };
            const total = document.querySelector('[data-total]');
            const standings = document.querySelector('.dash-standings');
            return {
                sideways: root.scrollWidth - innerWidth,
                downwards: root.scrollHeight - innerHeight,
                totalOutside: outside(total),
                totalLines: total.getClientRects().length,
                totalFontPx: parseFloat(getComputedStyle(total).fontSize),
                totalOverlapsStandings: box(total).right > box(standings).left
                    && box(standings).left > box(total).left,
                rowsOutside: [...document.querySelectorAll('[data-standings] li')]
                    .filter(outside).map(li => li.dataset.slug),
            };
        }"""
    )


def assert_fits_the_projector(page: Page) -> None:
    fit = layout(page)
    assert fit["sideways"] <= 0 and fit["downwards"] <= 0, f"kiosk mode scrolls at 1920×1080: {fit}"
    assert not fit["totalOutside"], f"the total is cut off: {fit}"
    assert fit["totalLines"] == 1, f"the total breaks across lines: {fit}"
    assert not fit["totalOverlapsStandings"], f"the total runs into the neighborhoods: {fit}"
    assert fit["totalFontPx"] >= 100, f"the total is not large on the projector: {fit}"
    assert not fit["rowsOutside"], f"neighborhoods off screen: {fit['rowsOutside']}"


def test_kiosk_mode_fills_a_1920_by_1080_projector_without_scrollbars(new_context, artifacts):
    page = new_context(viewport=KIOSK).new_page()
    open_dashboard(page, "?kiosk=1")

    page.screenshot(path=artifacts / "dashboard-kiosk-1920.png")
    assert_fits_the_projector(page)
    expect(page.locator("[data-total]")).to_be_visible()
    expect(page.locator(".site-header")).to_be_hidden()


def test_the_dashboard_fits_a_360_px_phone_without_sideways_scrolling(new_context, artifacts):
    page = new_context(viewport=PHONE).new_page()
    open_dashboard(page)

    page.screenshot(path=artifacts / "dashboard-360.png", full_page=True)
    overflow = sideways_overflow(page)
    assert overflow <= 0, f"the dashboard scrolls {overflow} px sideways at 360 px"


def a_million_pledges(server: str) -> dict[str, Any]:
    """Totals as they would stand on a big night: seven-digit numbers everywhere."""
    totals = api_totals(server)
    rows = [
        {**row, "residents": 45_000 - 600 * i, "businesses": 1_500 - 20 * i}
        for i, row in enumerate(totals["neighborhoods"])
    ]
    for row in rows:
        row["total"] = row["residents"] + row["businesses"]
    residents, businesses = sum(r["residents"] for r in rows), sum(r["businesses"] for r in rows)
    return {
        **totals,
        "neighborhoods": rows,
        "residents": residents,
        "businesses": businesses,
        "total": residents + businesses,
    }


def stream_of(totals: dict[str, Any]) -> Any:
    def answer(route: Route) -> None:
        body = f"retry: 600000\nevent: totals\ndata: {json.dumps(totals)}\n\n"
        route.fulfill(status=200, content_type="text/event-stream", body=body)

    return answer


@pytest.mark.parametrize(
    ("query", "viewport"), [("?kiosk=1", KIOSK), ("", PHONE)], ids=["kiosk-1920", "phone-360"]
)
def test_seven_digit_totals_still_fit(new_context, server, artifacts, query, viewport):
    totals = a_million_pledges(server)
    page = new_context(viewport=viewport).new_page()
    page.route(STREAM, stream_of(totals))
    page.goto(f"/dashboard{query}")
    assert totals["total"] >= 1_000_000
    expect(page.locator("[data-total]")).to_have_text(f"{totals['total']:,}", timeout=WAIT_MS)

    if query:
        page.screenshot(path=artifacts / "dashboard-kiosk-1920-million.png")
        assert_fits_the_projector(page)
    else:
        page.screenshot(path=artifacts / "dashboard-360-million.png", full_page=True)
        overflow = sideways_overflow(page)
        assert overflow <= 0, f"the dashboard scrolls {overflow} px sideways at 360 px"


def test_the_wide_dashboard_keeps_its_left_column_together_beside_the_long_standings(new_context):
    page = new_context(viewport=DESKTOP).new_page()
    open_dashboard(page)

    gaps = page.evaluate(
        """() => {
            const [summary, chart, wall] = ['.dash-summary', '.dash-chart', '.dash-wall']
                .map(s => document.querySelector(s).getBoundingClientRect());
            return [chart.top - summary.bottom, wall.top - chart.bottom];
        }"""
    )
    assert max(gaps) <= 48, f"empty space between the sections on the left: {gaps} px"


def test_after_falling_back_to_polling_the_dashboard_goes_live_again_when_the_stream_returns(
    new_context, server
):
    """A projector stays open all evening: a stream outage must not leave it polling for the night."""
    page = new_context().new_page()
    page.route(STREAM, lambda route: route.fulfill(status=503, body="deploying"))
    page.clock.install()
    open_dashboard(page, state="polling")

    page.unroute(STREAM)
    page.clock.run_for(31_000)  # dashboard.js tries the stream again every 30 s while polling

    expect(page.locator("[data-connection]")).to_have_attribute("data-state", "live", timeout=WAIT_MS)
    pledge_through_api(server, neighborhood="fruit-belt")
    expect_totals_shown(page, server, "fruit-belt")
