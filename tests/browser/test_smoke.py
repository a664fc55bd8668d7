"""Playwright, at its pinned version, drives Debian's Chromium: no browser of Playwright's own."""

from __future__ import annotations

import re
import subprocess
from importlib.metadata import version

import pytest

from ..servers import REPO_ROOT

pytestmark = pytest.mark.browser


def pinned_playwright() -> str:
    match = re.search(r"^playwright==(\S+)", (REPO_ROOT / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert match, "requirements-dev.txt must pin playwright==<version>"
    return match.group(1)


def test_the_pinned_playwright_drives_the_chromium_it_was_pointed_at(browser, chromium_path):
    installed = version("playwright")
    reported = subprocess.run(
        [chromium_path, "--version"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    print(f"Playwright {installed}; {reported.strip()} at {chromium_path}; browser reports {browser.version}")

    assert installed == pinned_playwright()
    assert browser.version in reported

    page = browser.new_page()
    page.set_content("<p>Porch <b>light</b></p>")
    assert page.inner_text("p") == "Porch light"
    assert page.evaluate("1 + 1") == 2
    page.close()
