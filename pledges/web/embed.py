"""A counter partners can put on their own sites: an iframe page and an SVG badge."""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask_babel import format_number, gettext
from markupsafe import escape

from ..caching import conditional
from ..services.campaigns import find_campaign
from ..services.totals import campaign_totals
from ..urls import absolute_url
from .views import progress

bp = Blueprint("embed", __name__)
# Only these routes may be framed, by any site; every other page keeps frame-ancestors 'none'.
EMBEDDABLE_CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors *"
)


@bp.get("/embed/<campaign>")
def counter(campaign: str) -> Response:
    found = find_campaign(campaign)
    totals = campaign_totals(found)
    page = render_template(
        "embed.html",
        campaign=found,
        totals=totals,
        progress=progress(totals),
        pledge_url=absolute_url("web.front_page"),
    )
    response = conditional(Response(page, mimetype="text/html"))
    response.headers["Content-Security-Policy"] = EMBEDDABLE_CSP
    return response


BADGE_HEIGHT = 28
CHAR_WIDTH = 7.2  # an average glyph at 12px, enough to size the two halves


@bp.get("/badge/<campaign>.svg")
def badge(campaign: str) -> Response:
    totals = campaign_totals(find_campaign(campaign))
    label = gettext("porch lights")
    value = format_number(totals["total"])
    left = round(len(label) * CHAR_WIDTH + 20)
    right = round(len(value) * CHAR_WIDTH + 20)
    title = escape(f"{label}: {value}")
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + right}" height="{BADGE_HEIGHT}" '
        f'role="img" aria-label="{title}"><title>{title}</title>'
        f'<rect width="{left}" height="{BADGE_HEIGHT}" rx="4" fill="#1b1b1b"/>'
        f'<rect x="{left}" width="{right}" height="{BADGE_HEIGHT}" rx="4" fill="#f5b700"/>'
        f'<rect x="{left}" width="4" height="{BADGE_HEIGHT}" fill="#f5b700"/>'
        f'<g font-family="system-ui,Verdana,sans-serif" font-size="12" text-anchor="middle">'
        f'<text x="{left / 2}" y="18" fill="#ffffff">{escape(label)}</text>'
        f'<text x="{left + right / 2}" y="18" fill="#1b1b1b" font-weight="bold">{escape(value)}</text>'
        f"</g></svg>"
    )
    response = conditional(Response(svg, mimetype="image/svg+xml"))
    response.vary.add("Accept-Language")
    return response
