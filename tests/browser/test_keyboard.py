"""The whole pledge with the keyboard alone, seeing where the focus is at every step."""

from __future__ import annotations

import pytest

from .conftest import focused, neighborhood_count, unique_email

pytestmark = pytest.mark.browser
MAX_TABS = 40


def tab_to(page, selector: str) -> dict[str, str]:
    """Press Tab until the focus is on `selector`; fail if it never gets there."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("selector => document.activeElement.matches(selector)", selector):
            return focused(page)
    raise AssertionError(f"{MAX_TABS} presses of Tab never reached {selector}; stopped on {focused(page)}")


def assert_focus_shows(stop: dict[str, str]) -> None:
    assert stop["outline"] or stop["shadow"], f"the focus on {stop} cannot be seen"


@pytest.mark.parametrize("kind", ["resident", "business"])
def test_the_whole_pledge_can_be_made_with_the_keyboard_alone(new_context, javascript, kind, server):
    page = new_context(javascript=javascript).new_page()
    page.goto("/")
    before = neighborhood_count(server, "allentown")
    stops = []

    # The first Tab shows the skip link; following it lands in the main content.
    page.keyboard.press("Tab")
    stops.append(focused(page))
    assert stops[-1]["classes"] == "skip-link"
    assert page.locator(".skip-link").bounding_box()["y"] >= 0, "the focused skip link is off screen"
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"

    stops.append(tab_to(page, "input[name=kind]"))
    assert stops[-1]["value"] == "resident", "the checked radio button takes the focus first"
    if kind == "business":
        page.keyboard.press("ArrowDown")
        stops.append(focused(page))
        assert stops[-1]["value"] == "business"
    assert page.is_checked(f"input[name=kind][value={kind}]")

    stops.append(tab_to(page, "select[name=neighborhood]"))
    page.keyboard.press("ArrowDown")  # a closed select steps to the next option: the first neighborhood
    assert page.input_value("select[name=neighborhood]") == "allentown"

    stops.append(tab_to(page, "input[name=name]"))
    if kind == "business":
        page.keyboard.type("Keyboard Coffee")
    stops.append(tab_to(page, "input[name=email]"))
    page.keyboard.type(unique_email("keyboard"))
    stops.append(tab_to(page, "input[name=show_name]"))
    if kind == "business":
        page.keyboard.press("Space")
        assert page.is_checked("input[name=show_name]")

    page.keyboard.press("Tab")
    stops.append(focused(page))
    assert stops[-1]["tag"] == "button", "after the consent box comes the button: the honeypot is skipped"
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert page.url == f"{server}/thanks"
    assert neighborhood_count(server, "allentown") == before + 1
    for stop in stops:
        assert_focus_shows(stop)


def test_a_keyboard_user_is_taken_to_the_errors_and_from_each_one_to_its_field(page, server):
    page.goto("/")
    tab_to(page, "form.pledge-form button[type=submit]")
    with page.expect_navigation():
        page.keyboard.press("Enter")

    assert focused(page)["classes"] == "error-summary"
    assert_focus_shows(tab_to(page, "[data-error-summary] a[href='#field-neighborhood']"))
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "field-neighborhood"

    page.keyboard.press("ArrowDown")
    tab_to(page, "input[name=email]")
    page.keyboard.type(unique_email("keyboard-fix"))
    with page.expect_navigation():
        page.keyboard.press("Enter")  # Enter in a text field sends the form
    assert page.url == f"{server}/thanks"
