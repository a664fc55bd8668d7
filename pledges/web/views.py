"""The front page, the pledge form's POST, and the thank-you page."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import (
    Blueprint,
    Response,
    abort,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import format_date, ngettext
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import TooManyRequests

from ..caching import conditional
from ..errors import NotFound, error_page
from ..extensions import db
from ..i18n import local_time
from ..models import Campaign, Neighborhood
from ..ratelimits import exempt, pledging
from ..services.businesses import shown_businesses
from ..services.campaigns import current_campaign, find_campaign
from ..services.charts import chart_summary, hourly_chart
from ..services.maps import neighborhood_map
from ..services.totals import campaign_totals, neighborhood_total, timeseries
from ..urls import absolute_url
from .forms import PledgeForm, record_form_pledge

bp = Blueprint("web", __name__)
THANKS_KEY = "thanks"


def event_day(campaign: Campaign) -> str:
    """The night of the event, in the campaign's own time zone: the last day pledges are open."""
    last_moment = campaign.ends_at.astimezone(ZoneInfo(campaign.timezone)) - timedelta(seconds=1)
    return format_date(last_moment.date(), format="full")


def standings(totals: dict[str, Any]) -> list[dict[str, Any]]:
    """Neighborhoods ranked by pledges, each with its bar's width in percent of the leader."""
    top = max((row["total"] for row in totals["neighborhoods"]), default=0) or 1
    ranked = sorted(totals["neighborhoods"], key=lambda row: (-row["total"], row["name"].casefold()))
    return [{**row, "width": round(row["total"] * 50 / top) * 2} for row in ranked]


def progress(totals: dict[str, Any]) -> int | None:
    goal = totals["goal"]
    return min(100, totals["total"] * 100 // goal) if goal else None


CHART_HOURS = 48
DASHBOARD_BUSINESSES = 12


def render_front_page(campaign: Campaign | None, form: PledgeForm, status: int = 200) -> tuple[str, int]:
    neighborhoods = list(
        db.session.scalars(db.select(Neighborhood).order_by(db.func.lower(Neighborhood.name)))
    )
    if campaign is None:
        return render_template("no_campaign.html"), 200
    totals = campaign_totals(campaign)
    page = render_template(
        "index.html",
        campaign=campaign,
        event_day=event_day(campaign),
        totals=totals,
        progress=progress(totals),
        standings=standings(totals),
        businesses=shown_businesses(campaign),
        neighborhood_options=neighborhoods,
        map_svg=neighborhood_map(neighborhoods, totals),
        form=form,
    )
    return page, status


@bp.get("/")
def front_page() -> tuple[str, int]:
    campaign = current_campaign()
    return render_front_page(campaign, PledgeForm(campaign=campaign.slug if campaign else ""))


@bp.post("/")
@exempt  # counted inside, where a refusal can still show the form as it was typed
def submit_pledge() -> Response | tuple[str, int]:
    form = PledgeForm.from_post(request.form)
    try:
        pledging.count()
    except TooManyRequests as refusal:
        form.problem = wait_message(int(refusal.retry_after or 60))
        return render_front_page(_campaign_or_current(form.campaign), form, 429)  # Retry-After: ratelimits
    if form.trapped:
        session.pop(THANKS_KEY, None)
        return redirect(url_for("web.thanks"), 303)
    receipt = record_form_pledge(form)
    if receipt is not None:
        session[THANKS_KEY] = {
            "campaign": form.campaign,
            "neighborhood": receipt.neighborhood,
            "repeat": not receipt.created,
            "status": receipt.status,
            "pending_reason": receipt.pending_reason,
        }
        return redirect(url_for("web.thanks"), 303)
    campaign = _campaign_or_current(form.campaign)
    return render_front_page(campaign, form, 422)


def wait_message(seconds: int) -> str:
    """How long to wait before sending the form again, in words: minutes past a minute and a half."""
    if seconds <= 90:
        return ngettext(
            "Too many pledges have come from your connection in a short time. "
            "Please wait %(num)d second and send the form again.",
            "Too many pledges have come from your connection in a short time. "
            "Please wait %(num)d seconds and send the form again.",
            seconds,
        )
    return ngettext(
        "Too many pledges have come from your connection in a short time. "
        "Please wait %(num)d minute and send the form again.",
        "Too many pledges have come from your connection in a short time. "
        "Please wait %(num)d minutes and send the form again.",
        math.ceil(seconds / 60),
    )


def _campaign_or_current(ref: str) -> Campaign | None:
    try:
        return find_campaign(ref)
    except NotFound:
        return current_campaign()


@bp.get("/thanks")
def thanks() -> str:
    """Thanks for the pledge this browser just made, saying truly whether it counts yet.

    Only a counted pledge is shown with its neighborhood's count, read from the database after
    the pledge committed, so the count always includes it. A repeat says only that the email
    has pledged before: nothing of the first pledge.
    """
    pledged = session.get(THANKS_KEY) or {}
    # The campaign the pledge was made for, which need not be `current` by the time this page loads.
    campaign = _campaign_or_current(pledged.get("campaign", "current"))
    repeat = bool(pledged.get("repeat"))
    # No pledge in this session (the page opened by itself): thanks, and no claim about any pledge.
    outcome = "repeat" if repeat else pledged.get("pending_reason") or pledged.get("status")
    neighborhood = None
    if outcome == "counted" and pledged and campaign is not None:
        try:
            neighborhood = neighborhood_total(campaign, pledged["neighborhood"])
        except NotFound:
            neighborhood = None
    return render_template(
        "thanks.html",
        campaign=campaign,
        neighborhood=neighborhood,
        outcome=outcome,
        share_url=absolute_url("web.front_page"),
    )


def _dashboard_campaign() -> Campaign:
    ref = request.args.get("campaign", "current")[:80]
    try:
        return find_campaign(ref)
    except NotFound:
        abort(404)


def _recent_hours(campaign: Campaign) -> list[dict[str, Any]]:
    return timeseries(campaign, "hour")["points"][-CHART_HOURS:]


@bp.get("/dashboard")
def dashboard() -> str:
    """The mayor's office's live totals; `?kiosk=1` for a projector."""
    campaign = _dashboard_campaign()
    totals = campaign_totals(campaign)
    kiosk = request.args.get("kiosk") == "1"
    return render_template(
        "dashboard.html",
        campaign=campaign,
        totals=totals,
        progress=progress(totals),
        standings=standings(totals),
        businesses=shown_businesses(campaign, limit=DASHBOARD_BUSINESSES),
        chart_alt=chart_summary(_recent_hours(campaign), campaign.timezone),
        kiosk=kiosk,
        theme="kiosk" if kiosk else "light",
        updated_label=local_time(totals["updated_at"], campaign.timezone) if totals["updated_at"] else None,
    )


@bp.get("/dashboard/chart.svg")
def dashboard_chart() -> Response:
    """The dashboard's pledges-per-hour chart, redrawn on request and cacheable by ETag."""
    campaign = _dashboard_campaign()
    theme = "kiosk" if request.args.get("theme") == "kiosk" else "light"
    svg = hourly_chart(_recent_hours(campaign), campaign.timezone, theme)
    return conditional(Response(svg, mimetype="image/svg+xml"))


@bp.app_errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int] | tuple[str, int, dict[str, str]]:
    """A pledge whose CSRF token was missing or stale: nothing is saved, and nothing typed is lost."""
    if request.endpoint != "web.submit_pledge":
        return error_page(400)
    form = PledgeForm.from_post(request.form)
    form.problem = _l("This form had expired, so nothing was sent. Please check it and send it again.")
    return render_front_page(_campaign_or_current(form.campaign), form, 400)
