"""English and Spanish: ?lang=es, Accept-Language, a remembered choice, and translated errors."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from .factories import post_pledge, submit_form

REPO = Path(__file__).resolve().parents[1]
PO = REPO / "pledges" / "translations" / "es" / "LC_MESSAGES" / "messages.po"

REPO = Path(__file__).resolve().parents[1]
PO = REPO / "pledges" / "translations" / "es" / "LC_MESSAGES" / "messages.po"


def html_lang(response) -> str:
    return re.search(r'<html lang="([^"]+)"', response.get_data(as_text=True)).group(1)


def test_english_is_the_default(client):
    response = client.get("/")
    assert html_lang(response) == "en"
    assert "Pledge your porch light" in response.get_data(as_text=True)


def test_lang_es_shows_the_page_in_spanish(client):
    response = client.get("/?lang=es")

    text = response.get_data(as_text=True)
    assert html_lang(response) == "es"
    assert "Comprométase con su luz" in text
    assert "Vecindario" in text
    assert "martes, 3 de agosto de 2027" in text
    assert "Pledge your porch light" not in text


def test_accept_language_picks_spanish(client):
    response = client.get("/", headers={"Accept-Language": "es-US,es;q=0.9,en;q=0.5"})
    assert html_lang(response) == "es"


def test_the_language_switch_is_visible_and_remembered(client):
    english = client.get("/").get_data(as_text=True)
    assert re.search(r'<a href="/\?lang=es" lang="es" hreflang="es">Español</a>', english)

    chosen = client.get("/?lang=es")
    cookie = chosen.headers["Set-Cookie"]
    assert cookie.startswith("lang=es") and "HttpOnly" in cookie and "SameSite=Lax" in cookie

    later = client.get("/", headers={"Accept-Language": "en"})
    assert html_lang(later) == "es"
    back = client.get("/?lang=en")
    assert html_lang(back) == "en"
    assert html_lang(client.get("/")) == "en"


def test_validation_messages_are_in_spanish(client):
    client.get("/?lang=es")

    response = submit_form(client, kind="business", name="", email="no es correo")

    text = response.get_data(as_text=True)
    assert html_lang(response) == "es"
    assert "Revise su compromiso" in text
    assert "Escriba un correo electrónico como nombre@ejemplo.org." in text
    assert "Escriba el nombre del negocio" in text


def test_the_thank_you_page_is_in_spanish(client):
    client.get("/?lang=es")
    post_pledge(client, neighborhood="lovejoy")

    submit_form(client, neighborhood="lovejoy")

    text = client.get("/thanks").get_data(as_text=True)
    assert "¡Gracias por dejar su luz encendida!" in text
    assert "Lovejoy ya tiene 2 luces comprometidas." in text


def test_api_errors_follow_accept_language(client):
    response = client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "resident", "neighborhood": "allentown"},
        headers={"Accept-Language": "es"},
    )
    assert response.get_json()["error"]["fields"]["email"] == ["Escriba su correo electrónico."]


def test_every_message_in_the_code_has_a_spanish_translation(tmp_path):
    extracted = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-k", "_l"]
        + ["-o", str(extracted), "--no-location", "--omit-header", "."],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with extracted.open("rb") as f:
        in_code = {m.id for m in read_po(f) if m.id}
    with PO.open("rb") as f:
        catalog = read_po(f)

    assert in_code, "extraction found no messages"
    assert in_code - {m.id for m in catalog} == set(), "run `make extract-messages`, then translate"
    untranslated = [
        m.id
        for m in catalog
        if m.id and (not m.string or (isinstance(m.string, tuple) and not all(m.string)) or m.fuzzy)
    ]
    assert untranslated == []
