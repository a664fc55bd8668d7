"""The sign-up table: a tablet at an event, signed in with an intake key, one person after another.

As on /admin, the key is checked once at sign-in; the signed cookie then holds only the
key's id and name and a session token (web/sessions.py), checked on every request against
sign-out, revocation, ADMIN_IDLE_MINUTES without use and ADMIN_SESSION_HOURS in all. A
pledge is counted against the key's own limit and attributed to it. After each pledge the
page redirects to a blank form that names only the outcome: nothing of the person who
pledged stays in the page, the URL, the session, the browser's history (no-store) or its
autofill (autocomplete="off").
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, g, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from ..extensions import db
from ..models import Neighborhood
from ..ratelimits import exempt, pledging
from ..services.campaigns import current_campaign
from ..services.keys import INTAKE_SCOPES, CallerKey, find_active_key
from ..services.pledging import PledgeReceipt
from . import sessions
from .forms import PledgeForm, record_form_pledge

bp = Blueprint("signup", __name__, url_prefix="/signup")
SESSION_KEY = "signup"
# What the page after a pledge may say: the outcome alone, never whose pledge it was.
OUTCOMES = ("counted", "confirm_email", "review", "repeat")
FORM_EXPIRED = _l("This form had expired, so nothing was sent. Please check it and send it again.")


@bp.after_request
def never_cache(response: Response) -> Response:
    # The back button must not bring the previous person's page back.
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(("Accept-Language", "Cookie"))
    return response


def signed_in_intake_key() -> CallerKey | None:
    """The intake (or admin) key this browser signed in with, while its session lives."""
    return sessions.signed_in(SESSION_KEY, INTAKE_SCOPES)


def intake_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """A view for a signed-in sign-up table; anyone else is sent to sign in (303)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if signed_in_intake_key() is None:
            return redirect(url_for("signup.sign_in"), 303)
        return view(*args, **kwargs)

    return wrapper


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> tuple[str, int] | Response:
    error = None
    if request.method == "POST":
        key = find_active_key(request.form.get("key", "").strip())
        if key is not None and key.scope in INTAKE_SCOPES:
            sessions.sign_in(SESSION_KEY, key)
            return redirect(url_for(".pledge_form"), 303)
        error = _l("That is not an active intake key.")
    return render_template("signup/sign_in.html", error=error), 401 if error else 200


@bp.post("/sign-out")
def sign_out() -> Response:
    sessions.sign_out()
    return redirect(url_for(".sign_in"), 303)


@bp.get("")
@intake_required
def pledge_form() -> tuple[str, int]:
    """A blank form for the next person, under the outcome of the last pledge if there was one."""
    done = request.args.get("done")
    return render_table(PledgeForm(), done=done if done in OUTCOMES else None)


@bp.post("")
@exempt  # counted below against the key's own limit, never the tablet's address
@intake_required
def take_pledge() -> Response | tuple[str, int]:
    key = signed_in_intake_key()
    form = PledgeForm.from_post(request.form)
    g.api_key = key  # pledging counts against the current key
    try:
        pledging.count()
    except TooManyRequests:
        # Retry-After and the X-RateLimit-* headers are added on the way out (ratelimits).
        form.problem = _l("Too many pledges in a short time. Please wait a moment, then send this one again.")
        return render_table(form, 429)
    receipt = record_form_pledge(form, intake_key=key)
    if receipt is not None:
        # The confirmation is shown in the language this person chose.
        return redirect(url_for(".pledge_form", done=outcome(receipt), lang=str(get_locale())), 303)
    return render_table(form, 422)


def outcome(receipt: PledgeReceipt) -> str:
    """What to tell the person: "counted" only for a pledge that is in the totals now."""
    if not receipt.created:
        return "repeat"
    if receipt.status == "counted":
        return "counted"
    return "confirm_email" if receipt.pending_reason == "confirm_email" else "review"


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int] | Response:
    """A stale or missing CSRF token: nothing is saved, and nothing typed is lost."""
    if request.endpoint == "signup.sign_in":
        return render_template("signup/sign_in.html", error=FORM_EXPIRED), 400
    if signed_in_intake_key() is None:
        return redirect(url_for(".sign_in"), 303)
    form = PledgeForm.from_post(request.form) if request.endpoint == "signup.take_pledge" else PledgeForm()
    form.problem = FORM_EXPIRED
    return render_table(form, 400)


def render_table(form: PledgeForm, status: int = 200, done: str | None = None) -> tuple[str, int]:
    campaign = current_campaign()
    neighborhoods = db.session.scalars(db.select(Neighborhood).order_by(db.func.lower(Neighborhood.name)))
    page = render_template(
        "signup/table.html",
        campaign=campaign,
        form=form,
        done=done,
        neighborhood_options=list(neighborhoods),
        table=session[SESSION_KEY],
    )
    return page, status
