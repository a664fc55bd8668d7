"""A Spanish speaker pledges in Spanish, from the errors to the thanks, with JavaScript on or off."""

from __future__ import annotations

import pytest

from .conftest import fill_pledge, neighborhood_count, submit_pledge

pytestmark = pytest.mark.browser


def test_a_spanish_speaker_pledges_in_spanish_and_the_choice_is_remembered(any_page, server):
    any_page.goto("/")
    with any_page.expect_navigation():
        any_page.click("nav.language a[hreflang=es]")

    assert any_page.get_attribute("html", "lang") == "es"
    assert any_page.inner_text("label[for=field-neighborhood]") == "Vecindario"
    assert any_page.inner_text("form.pledge-form button[type=submit]") == "Me comprometo a encender mi luz"

    any_page.fill("input[name=email]", "sin-arroba")
    submit_pledge(any_page)
    assert any_page.get_attribute("html", "lang") == "es"
    assert any_page.inner_text("#error-summary-title") == "Revise su compromiso"
    assert "Elija su vecindario de la lista." in any_page.inner_text("#neighborhood-error")
    assert "Escriba un correo electrónico como nombre@ejemplo.org." in any_page.inner_text("#email-error")

    before = neighborhood_count(server, "lovejoy")
    fill_pledge(any_page, neighborhood="lovejoy")
    submit_pledge(any_page)
    assert any_page.url == f"{server}/thanks"
    assert any_page.inner_text("h1") == "¡Gracias por dejar su luz encendida!"
    after = before + 1
    lights = "luz comprometida" if after == 1 else "luces comprometidas"
    assert any_page.inner_text(".neighborhood-count") == f"Lovejoy ya tiene {after} {lights}."

    any_page.goto("/")
    assert any_page.get_attribute("html", "lang") == "es", "the language chosen is kept on the next visit"


def test_a_browser_set_to_spanish_gets_the_page_in_spanish(new_context):
    page = new_context(locale="es-US").new_page()
    page.goto("/")

    assert page.get_attribute("html", "lang") == "es"
    assert page.inner_text("#pledge-heading") != "Pledge your porch light"
    assert page.inner_text("label[for=field-email]") == "Correo electrónico"
