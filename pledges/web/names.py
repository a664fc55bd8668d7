"""Business names for the wall: the mayor's office approves or rejects them before they are shown."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from werkzeug.wrappers import Response

from ..errors import ApiError
from ..schemas import NAME_IDS_MAX, NAME_STATUSES
from ..services.cursors import decode_cursor, encode_cursor
from ..services.names import DECISIONS, decide_names, names_for_review
from .admin import admin_required, signed_in_admin

bp = Blueprint("names", __name__, url_prefix="/admin/names")
PAGE = 100


@bp.after_request
def never_cache(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _status(text: str | None) -> str:
    return text if text in NAME_STATUSES else "pending"


@bp.get("")
@admin_required
def review() -> Any:
    """Names with one status (pending by default), newest first, each with a checkbox for a bulk decision."""
    status = _status(request.args.get("status"))
    cursor = request.args.get("cursor") or None
    try:
        rows = names_for_review(status, None, PAGE + 1, decode_cursor(cursor) if cursor else None)
    except ApiError:
        rows, cursor = names_for_review(status, None, PAGE + 1), None
    next_url = None
    if len(rows) > PAGE:
        last = rows[PAGE - 1]
        next_url = url_for(".review", status=status, cursor=encode_cursor(last.created_at, last.row_id))
    return render_template(
        "admin/names.html", rows=rows[:PAGE], status=status, next_url=next_url, admin=signed_in_admin()
    )


@bp.post("")
@admin_required
def decide() -> Response:
    """Approve or reject every name ticked, with an optional reason for the audit log."""
    status = _status(request.form.get("status"))
    back = url_for(".review", status=status)
    decision = request.form.get("decision", "")
    ids = [public_id[:24] for public_id in request.form.getlist("ids") if public_id][:NAME_IDS_MAX]
    if decision not in DECISIONS:
        flash(_l("That action is not known."), "error")
        return redirect(back, 303)
    if not ids:
        flash(_l("Tick the names to approve or reject first."), "error")
        return redirect(back, 303)
    reason = request.form.get("reason", "").strip()[:500] or None
    admin = signed_in_admin() or {"name": "unknown"}
    try:
        outcome = decide_names(ids, decision, reason, admin["name"])
    except ApiError as error:
        flash(" ".join(str(m) for ms in (error.fields or {}).values() for m in ms) or error.message, "error")
        return redirect(back, 303)
    if decision == "approve":
        message = ngettext(
            "%(num)d name approved: it shows on public pages now.",
            "%(num)d names approved: they show on public pages now.",
            outcome["changed"],
        )
    else:
        message = ngettext(
            "%(num)d name rejected: it will not be shown; its pledge still counts.",
            "%(num)d names rejected: they will not be shown; their pledges still count.",
            outcome["changed"],
        )
    flash(message, "ok")
    return redirect(back, 303)
