"""The link in a confirmation email: a page with a button, so only a person confirms."""

from __future__ import annotations

from flask import Blueprint, render_template

from ..services.confirmation import ConfirmationError, confirm_pledge, pledge_of_token

bp = Blueprint("confirm", __name__)


@bp.get("/confirm/<token>")
def confirm_page(token: str) -> tuple[str, int]:
    """Opening the link changes nothing: mail scanners open links too."""
    try:
        pledge_of_token(token)
    except ConfirmationError as error:
        return render_template("confirm.html", state=error.reason, token=token), 400
    return render_template("confirm.html", state="ask", token=token), 200


@bp.post("/confirm/<token>")
def confirm(token: str) -> tuple[str, int]:
    try:
        outcome = confirm_pledge(pledge_of_token(token))
    except ConfirmationError as error:
        return render_template("confirm.html", state=error.reason, token=token), 400
    return render_template("confirm.html", state=outcome, token=token), 200
