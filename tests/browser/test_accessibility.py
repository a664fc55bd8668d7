"""axe-core finds no WCAG 2.1 A or AA violation, and nothing scrolls sideways on a 360 px phone.

Checked on the front page, the form's error state and the thank-you page, in English and Spanish,
at 360 px and 1280 px; each state is photographed into tests/artifacts/ (git-ignored) as it goes.
"""

from __future__ import annotations

import pytest

from .conftest import DESKTOP, PHONE, axe_violations, fill_pledge, sideways_overflow, submit_pledge

pytestmark = pytest.mark.browser
STATES = ["front", "errors", "thanks"]


def reach(page, state: str, lang: str) -> None:
    page.goto("/" if lang == "en" else f"/?lang={lang}")
    if state == "errors":
        page.fill("input[name=email]", "not-an-email")
        submit_pledge(page)
        assert page.locator("[data-error-summary]").is_visible()
    elif state == "thanks":
        fill_pledge(page, neighborhood="masten-park")
        submit_pledge(page)
        assert page.url.endswith("/thanks")
    assert page.get_attribute("html", "lang") == lang


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("state", STATES)
def test_the_page_has_no_accessibility_violations_and_fits_a_phone(
    axe_source, new_context, artifacts, state, lang
):
    page = new_context(viewport=PHONE).new_page()
    reach(page, state, lang)
    suffix = "" if lang == "en" else f"-{lang}"

    problems = {}
    for viewport in (PHONE, DESKTOP):
        page.set_viewport_size(viewport)
        width = viewport["width"]
        page.screenshot(path=artifacts / f"{state}{suffix}-{width}.png", full_page=True)
        if width == PHONE["width"]:
            overflow = sideways_overflow(page)
            assert overflow <= 0, f"{state} ({lang}) scrolls {overflow} px sideways at {width} px"
        found = axe_violations(page, axe_source)
        if found:
            problems[width] = found

    assert not problems, f"axe found WCAG 2.1 A/AA violations on {state} ({lang}):\n" + "\n".join(
        f"  at {width} px: {line}" for width, lines in problems.items() for line in lines
    )
