"""English and Spanish: chosen by ?lang=, then a remembered choice, then Accept-Language."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from babel import dates
from flask import Flask, Response, g, has_request_context, request, url_for
from flask_babel import format_number, get_locale

LANGUAGES = ("en", "es")
LANGUAGE_NAMES = {"en": "English", "es": "Español"}
LANG_COOKIE = "lang"
# The query arguments pages read, and so the only ones a language link carries: never url_for's
# own (_external, _scheme, _anchor, _method), which would let a query string pick the link's host.
PUBLIC_PAGE_ARGS = ("campaign", "kiosk", "theme", "done", "next")  # dashboard, /signup, admin sign-in
ADMIN_SEARCH_ARGS = ("neighborhood", "kind", "status", "pending_reason", "intake_key", "q", "since", "until")
PAGE_QUERY_ARGS = frozenset((*PUBLIC_PAGE_ARGS, *ADMIN_SEARCH_ARGS, "limit", "cursor"))
ONE_YEAR = 365 * 24 * 3600
LANGUAGE_READ = "porchlight_language_read"  # on g: this response was put in the reader's language


def select_locale() -> str:
    if not has_request_context():
        return LANGUAGES[0]
    # Flask-Babel asks once a request, and only when a text is translated or formatted.
    setattr(g, LANGUAGE_READ, True)
    asked = request.args.get("lang")
    if asked in LANGUAGES:
        return asked
    remembered = request.cookies.get(LANG_COOKIE)
    if remembered in LANGUAGES:
        return remembered
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def remember_language(response: Response) -> Response:
    """A language picked with ?lang= stays picked on the next visit."""
    asked = request.args.get("lang")
    if asked in LANGUAGES and request.cookies.get(LANG_COOKIE) != asked:
        response.set_cookie(
            LANG_COOKIE, asked, max_age=ONE_YEAR, httponly=True, samesite="Lax", secure=request.is_secure
        )
    return response


def vary_by_language(response: Response) -> Response:
    """A response in the reader's language tells caches what chose it; one that translated nothing
    (totals, say) keeps a single cached copy for everyone."""
    if g.pop(LANGUAGE_READ, False):  # popped: tests run requests in one app context
        response.vary.add("Accept-Language")
        response.vary.add("Cookie")  # the remembered choice (LANG_COOKIE)
    return response


def init_app(app: Flask) -> None:
    from .extensions import babel
    from .schemas import UTCTimestamp

    babel.init_app(app, locale_selector=select_locale, default_translation_directories="translations")
    app.after_request(remember_language)
    app.after_request(vary_by_language)
    app.context_processor(template_helpers)
    app.add_template_filter(format_number, "number")
    app.add_template_filter(UTCTimestamp.text, "utc_timestamp")  # `<time datetime>`, as the API writes it


def language_url(code: str) -> str:
    """This page in another language; a page that answered a POST links to the front page."""
    if request.method != "GET" or request.endpoint is None:
        return url_for("web.front_page", lang=code)
    kept = {name: value for name, value in request.args.items() if name in PAGE_QUERY_ARGS}
    # The path's own arguments last: a query argument of the same name cannot move the link elsewhere.
    return url_for(request.endpoint, **{**kept, **(request.view_args or {}), "lang": code})


def template_helpers() -> dict[str, Any]:
    return {
        "current_locale": lambda: str(get_locale() or LANGUAGES[0]),
        "language_links": lambda: [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],
        "language_url": language_url,
    }


def local_datetime(moment: datetime, timezone: str, format: str = "short") -> str:
    """A moment as the campaign's own clock shows it, in the reader's language."""
    return dates.format_datetime(moment, format, tzinfo=ZoneInfo(timezone), locale=get_locale())


def local_time(moment: datetime, timezone: str, format: str = "short") -> str:
    return dates.format_time(moment, format, tzinfo=ZoneInfo(timezone), locale=get_locale())
