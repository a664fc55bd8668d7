"""Pledging in a real browser with JavaScript on and off: off, everything works; on, it only enhances."""

from __future__ import annotations

import itertools
import re

import pytest

from .conftest import (
    api_totals,
    fill_pledge,
    focused,
    neighborhood_count,
    pledge_through_api,
    submit_pledge,
    unique_email,
)

pytestmark = pytest.mark.browser
_businesses = itertools.count(1)


def test_a_resident_pledges_and_is_thanked_with_the_neighborhood_new_count(any_page, server):
    before = neighborhood_count(server, "black-rock")
    any_page.goto("/")

    fill_pledge(any_page, kind="resident", neighborhood="black-rock")
    submit_pledge(any_page)

    assert any_page.url == f"{server}/thanks"
    assert any_page.inner_text("h1") == "Thank you for leaving your light on!"
    after = before + 1
    assert neighborhood_count(server, "black-rock") == after
    lights = "porch light" if after == 1 else "porch lights"
    assert any_page.inner_text(".neighborhood-count") == f"Black Rock now has {after} {lights} pledged."
    assert any_page.get_attribute(".share-link", "href") == f"{server}/"


def test_a_business_pledges_by_name_and_is_listed_on_the_front_page(any_page, javascript, server):
    name = f"Lantern Bakery No. {next(_businesses)} ({'js' if javascript else 'no-js'})"
    before = neighborhood_count(server, "hamlin-park")
    any_page.goto("/")

    fill_pledge(any_page, kind="business", neighborhood="hamlin-park", name=name, show_name=True)
    submit_pledge(any_page)

    assert any_page.url == f"{server}/thanks"
    assert neighborhood_count(server, "hamlin-park") == before + 1
    assert "Hamlin Park now has" in any_page.inner_text(".neighborhood-count")
    any_page.goto("/")
    assert any_page.locator(".businesses li", has_text=name).inner_text() == f"{name} Hamlin Park"


def test_the_name_hint_follows_the_chosen_kind_when_javascript_is_on(page):
    page.goto("/")
    optional = page.locator("[data-name-optional]")
    assert optional.is_visible()

    page.check("input[name=kind][value=business]")
    assert optional.is_hidden()
    page.check("input[name=kind][value=resident]")
    assert optional.is_visible()


def test_a_pledge_with_mistakes_comes_back_with_the_errors_beside_the_fields_and_the_input_kept(
    any_page, server
):
    total_before = api_totals(server)["total"]
    any_page.goto("/")
    any_page.check("input[name=kind][value=business]")
    any_page.fill("input[name=email]", "not-an-email")

    submit_pledge(any_page)

    assert api_totals(server)["total"] == total_before
    summary = any_page.locator("[data-error-summary]")
    assert summary.is_visible()
    assert summary.locator("h3").inner_text() == "Please check your pledge"
    # The summary takes the focus (autofocus, and site.js too), so a screen reader reads it first.
    assert focused(any_page)["classes"] == "error-summary"
    for field, message in [
        ("neighborhood", "Choose your neighborhood from the list."),
        ("name", "Enter the business's name: businesses are listed by name."),
        ("email", "Enter an email address like name@example.org."),
    ]:
        control = any_page.locator(f"#field-{field}")
        assert control.get_attribute("aria-invalid") == "true"
        assert f"{field}-error" in control.get_attribute("aria-describedby").split()
        assert message in any_page.inner_text(f"#{field}-error")
        assert summary.locator(f"a[href='#field-{field}']").inner_text() == message
    assert any_page.input_value("input[name=email]") == "not-an-email"
    assert any_page.is_checked("input[name=kind][value=business]")

    # Put right, the same form goes through.
    any_page.select_option("select[name=neighborhood]", "allentown")
    any_page.fill("input[name=name]", f"Corner Hardware {next(_businesses)}")
    any_page.fill("input[name=email]", unique_email("fixed"))
    submit_pledge(any_page)
    assert any_page.url == f"{server}/thanks"
    assert api_totals(server)["total"] == total_before + 1


def test_pledging_again_with_the_same_email_is_told_only_that_it_pledged_and_counted_once(page, server):
    email = unique_email("again")
    page.goto("/")
    fill_pledge(page, email=email, neighborhood="kaisertown")
    submit_pledge(page)
    count = neighborhood_count(server, "kaisertown")

    page.goto("/")
    fill_pledge(page, email=f"  {email.upper()} ", neighborhood="kaisertown")
    submit_pledge(page)

    assert page.inner_text("h1") == "This email address has already pledged"
    assert "Kaisertown" not in page.inner_text("main")  # nothing of the first pledge
    assert neighborhood_count(server, "kaisertown") == count


def test_the_total_refreshes_by_itself_when_someone_pledges_elsewhere(page, server):
    # The page polls every 15 s; a fake clock moves time on instead of the test waiting it out.
    page.clock.install()
    page.goto("/")
    shown = page.inner_text("[data-total]")
    assert shown == f"{api_totals(server)['total']:,}"

    pledge_through_api(server, neighborhood="riverside")
    expected = f"{api_totals(server)['total']:,}"
    assert expected != shown
    page.clock.run_for(16_000)

    page.wait_for_function(
        "expected => document.querySelector('[data-total]').textContent === expected",
        arg=expected,
        timeout=25_000,
    )
    assert re.fullmatch(r"[\d,]+", page.inner_text("[data-total]"))
