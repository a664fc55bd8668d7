"""The mayor's office's page: sign in with an admin key, review pledges, remove and restore them.

The key is checked once at sign-in; the signed session then holds only the key's id
and name, is re-checked against revocation on every request, and ends after
ADMIN_IDLE_MINUTES without use. Every page is marked never to be cached.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..errors import ApiError
from ..extensions import db
from ..models import ApiKey
from ..schemas import AdminPledgeQuery
from ..services.abuse import abuse_report
from ..services.campaigns import current_campaign
from ..services.cursors import decode_cursor, encode_cursor
from ..services.keys import find_active_key
from ..services.moderation import PledgeFilter, remove_pledge, restore_pledge, search_pledges

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")
SESSION_KEY = "admin"
PAGE = 50


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in_admin() -> dict[str, Any] | None:
    admin = session.get(SESSION_KEY)
    if not admin:
        return None
    idle = current_app.config["ADMIN_IDLE_MINUTES"] * 60
    key = db.session.get(ApiKey, admin["key_id"])
    if time.time() - admin["seen"] > idle or key is None or not key.active or key.scope != "admin":
        session.pop(SESSION_KEY, None)
        return None
    admin["seen"] = time.time()
    session[SESSION_KEY] = admin
    return admin


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if signed_in_admin() is None:
            return redirect(url_for(".sign_in", next=request.full_path), 303)
        return view(*args, **kwargs)

    return wrapper


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    error = None
    if request.method == "POST":
        key = find_active_key(request.form.get("key", "").strip())
        if key is not None and key.scope == "admin":
            session.clear()  # a fresh session at sign-in
            session[SESSION_KEY] = {"key_id": key.id, "name": key.name, "seen": time.time()}
            target = request.args.get("next", "")
            return redirect(target if target.startswith("/admin") else url_for(".pledges"), 303)
        error = _l("That is not an active admin key.")
    return render_template("admin/sign_in.html", error=error), 401 if error else 200


@bp.post("/sign-out")
def sign_out() -> Response:
    session.pop(SESSION_KEY, None)
    return redirect(url_for(".sign_in"), 303)


@bp.get("")
@admin_required
def pledges() -> Any:
    """Recent pledges, newest first, with search."""
    args = {k: v for k, v in request.args.items() if v}
    try:
        query = AdminPledgeQuery().load(args)
    except ValidationError as error:
        query, problems = AdminPledgeQuery().load({}), error.normalized_messages()
    else:
        problems = {}
    cursor, limit = query.pop("cursor"), min(query.pop("limit"), PAGE)
    try:
        rows = search_pledges(PledgeFilter(**query), limit + 1, decode_cursor(cursor) if cursor else None)
    except ApiError as error:
        rows, problems = [], {**problems, **(error.fields or {"": [error.message]})}
    next_url = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_args = {**args, "cursor": encode_cursor(last.created_at, last.id)}
        next_url = url_for(".pledges", **next_args)
    return render_template(
        "admin/pledges.html",
        rows=rows[:limit],
        filters=args,
        problems=problems,
        next_url=next_url,
        admin=session[SESSION_KEY],
    )


def _moderate(action: Callable[[str, str, str], Any], pledge_id: str) -> Response:
    reason = request.form.get("reason", "").strip()[:500]
    if not reason:
        flash(_l("Give a reason: it goes into the audit log."), "error")
    else:
        try:
            action(pledge_id, reason, session[SESSION_KEY]["name"])
            flash(_l("Done. The totals have changed with it."), "ok")
        except ApiError as error:
            flash(error.message, "error")
    back = request.form.get("back", "")
    return redirect(back if back.startswith("/admin") else url_for(".pledges"), 303)


@bp.post("/pledges/<pledge_id>/remove")
@admin_required
def remove(pledge_id: str) -> Response:
    return _moderate(remove_pledge, pledge_id)


@bp.post("/pledges/<pledge_id>/restore")
@admin_required
def restore(pledge_id: str) -> Response:
    return _moderate(restore_pledge, pledge_id)


@bp.get("/abuse")
@admin_required
def abuse() -> Any:
    campaign = current_campaign()
    hours = abuse_report(campaign, 24) if campaign is not None else []
    return render_template("admin/abuse.html", campaign=campaign, hours=hours, admin=session[SESSION_KEY])
