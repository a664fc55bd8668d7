"""The mayor's office's page: sign in with an admin key, review pledges, remove and restore them.

The key is checked once at sign-in; the signed cookie then holds only the key's id and
name and a session token (web/sessions.py), checked on every request against sign-out,
revocation, ADMIN_IDLE_MINUTES without use and ADMIN_SESSION_HOURS in all. Every page
is marked never to be cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from werkzeug.wrappers import Response

from ..errors import ApiError
from ..schemas import AdminPledgeQuery
from ..services.abuse import abuse_report
from ..services.campaigns import current_campaign
from ..services.cursors import decode_cursor, encode_cursor
from ..services.keys import find_active_key
from ..services.moderation import (
    BulkCriteria,
    PledgeFilter,
    bulk_release,
    bulk_remove,
    mark_shared_place,
    remove_pledge,
    restore_pledge,
    review_queue,
    search_pledges,
)
from . import sessions

bp = Blueprint("admin_pages", __name__, url_prefix="/admin")
SESSION_KEY = "admin"
PAGE = 50


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def signed_in_admin() -> dict[str, Any] | None:
    """The admin key this browser signed in with ({"key_id", "name"}), while its session lives."""
    key = sessions.signed_in(SESSION_KEY, ("admin",))
    return {"key_id": key.id, "name": key.name} if key is not None else None


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if signed_in_admin() is None:
            return redirect(url_for("admin_pages.sign_in", next=request.full_path), 303)
        return view(*args, **kwargs)

    return wrapper


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    error = None
    if request.method == "POST":
        key = find_active_key(request.form.get("key", "").strip())
        if key is not None and key.scope == "admin":
            sessions.sign_in(SESSION_KEY, key)
            target = request.args.get("next", "")
            return redirect(target if is_admin_path(target) else url_for(".pledges"), 303)
        error = _l("That is not an active admin key.")
    return render_template("admin/sign_in.html", error=error), 401 if error else 200


def is_admin_path(target: str) -> bool:
    """Whether `next=` names a page of /admin on this site: never another host, however spelled."""
    parts = urlsplit(target)
    in_admin = parts.path == "/admin" or parts.path.startswith("/admin/")
    # Browsers read a backslash as a slash, and drop tabs and newlines, when they follow a Location.
    return in_admin and not parts.scheme and not parts.netloc and not any(c in target for c in "\\\t\r\n")


@bp.post("/sign-out")
def sign_out() -> Response:
    sessions.sign_out()
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
    campaign = current_campaign()
    return render_template(
        "admin/pledges.html",
        rows=rows[:limit],
        filters=args,
        problems=problems,
        next_url=next_url,
        admin=session[SESSION_KEY],
        queue=review_queue(campaign) if campaign is not None else None,
        one_second=timedelta(seconds=1),
    )


QUEUE_ACTIONS = ("release", "remove", "shared")
QUEUE_FIELDS = ("address_hash", "intake_key", "since", "until")


@bp.post("/queue")
@admin_required
def queue_action() -> Any:
    """Release or remove every pledge waiting for review from one source, or mark an address as shared.

    The first post shows how many pledges it would change (a dry run); the second, with a reason, acts.
    """
    action = request.form.get("action", "")
    fields = {name: request.form.get(name, "").strip()[:100] or None for name in QUEUE_FIELDS}
    reason = request.form.get("reason", "").strip()[:500]
    campaign = current_campaign()
    if action not in QUEUE_ACTIONS or campaign is None:
        flash(_l("That action is not known."), "error")
        return redirect(url_for(".pledges"), 303)
    actor = session[SESSION_KEY]["name"]
    confirmed = request.form.get("confirm") == "1" and bool(reason)
    try:
        if action == "shared":
            if not fields["address_hash"]:
                raise ApiError(_l("Choose an address."))
            if confirmed:
                mark_shared_place(campaign.slug, fields["address_hash"], reason, actor)
            matched = 0
        else:
            criteria = BulkCriteria(
                campaign=campaign.slug,
                since=_moment(fields["since"]),
                until=_moment(fields["until"]),
                address_hash=fields["address_hash"],
                intake_key=fields["intake_key"],
                pending_reason="review",
            )
            change = bulk_release if action == "release" else bulk_remove
            matched = change(criteria, reason or "-", actor, dry_run=not confirmed)["matched"]
    except ApiError as error:
        flash(
            error.fields and " ".join(str(m) for ms in error.fields.values() for m in ms) or error.message,
            "error",
        )
        return redirect(url_for(".pledges"), 303)
    if confirmed:
        flash(_l("Done. The totals have changed with it."), "ok")
        return redirect(url_for(".pledges"), 303)
    problem = _l("Give a reason: it goes into the audit log.") if request.form.get("confirm") else None
    return render_template(
        "admin/queue_confirm.html",
        action=action,
        fields=fields,
        matched=matched,
        reason=reason,
        problem=problem,
        admin=session[SESSION_KEY],
    )


def _moment(text: str | None) -> datetime:
    try:
        moment = datetime.fromisoformat(text or "")
    except ValueError as error:
        raise ApiError(_l("Give the time window as two ISO 8601 times.")) from error
    if moment.tzinfo is None:
        raise ApiError(_l("Give the time window as two ISO 8601 times."))
    return moment


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
