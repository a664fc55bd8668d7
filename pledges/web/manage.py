"""Manage my pledge: a person asks for a signed link by email, then changes or withdraws their pledge.

`/manage` answers the same page, with the same status, whether or not the email has pledged; the
link is mailed after that answer has gone, so not even its timing tells. Every page is no-store:
the link's page shows a person's pledge.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, make_response, render_template, request
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError
from werkzeug.exceptions import TooManyRequests
from werkzeug.wrappers import Response

from ..errors import CampaignClosed, InvalidInput, field_messages
from ..ratelimits import exempt, pledging
from ..schemas import EmailAddress, PledgeIn
from ..services.confirmation import mail_configured
from ..services.manage import (
    ManageLinkError,
    PledgeWithdrawn,
    change_pledge,
    managed_pledge,
    neighborhood_options,
    pledge_of_token,
    pledge_to_mail,
    send_manage_link,
    withdraw_pledge,
)

bp = Blueprint("manage", __name__, url_prefix="/manage")
TOO_MANY = _l("Too many requests have come from your connection in a short time. Please wait and try again.")
# Changes are validated exactly as a new pledge is, less the email, which stays as it was.
CHANGES = PledgeIn(partial=("email",))


@bp.after_request
def never_cache(response: Response) -> Response:
    # The link's page shows a person's pledge: no cache or back button may keep it.
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(("Accept-Language", "Cookie"))
    return response


def ask_page(
    state: str,
    status: int = 200,
    email: str = "",
    errors: dict[str, list[str]] | None = None,
    problem: Any = None,
) -> Response:
    page = render_template("manage/ask.html", state=state, email=email, errors=errors or {}, problem=problem)
    return make_response(page, status)


@bp.get("")
def ask() -> Response:
    return ask_page("ask" if mail_configured() else "off")


@bp.post("")
@exempt  # counted inside, where a refusal can still show the form as it was typed
def request_link() -> Response:
    if not mail_configured():
        return ask_page("off")
    email = request.form.get("email", "")[:1000]
    try:
        pledging.count()
    except TooManyRequests:
        return ask_page("ask", 429, email, problem=TOO_MANY)  # Retry-After: ratelimits
    try:
        address = EmailAddress().deserialize(email)
    except ValidationError as error:
        return ask_page("ask", 422, email, {"email": field_messages({"email": error.messages})["email"]})
    public_id = pledge_to_mail(address)
    response = ask_page("sent")
    if public_id is not None:
        # Sent apart from the request (a greenlet under gevent): neither the answer nor the next
        # request on this connection waits for the mail server, pledged or not.
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        threading.Thread(target=mail_after_answer(app, public_id), daemon=True).start()
    return response


def mail_after_answer(app: Flask, public_id: str) -> Callable[[], None]:
    """The mail, sent in its own app context: the request's may be gone by then."""

    def send() -> None:
        with app.app_context():
            send_manage_link(public_id)

    return send


def pledge_page(
    token: str,
    state: str | None = None,
    status: int = 200,
    form: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    problem: Any = None,
) -> Response:
    """The link's page for a valid token (the form as typed, if given); 400 for a forged or expired one."""
    try:
        pledge = managed_pledge(pledge_of_token(token))
    except ManageLinkError as error:
        return make_response(render_template("manage/pledge.html", state=error.reason), 400)
    if form is None:
        form = {"kind": pledge.kind, "neighborhood": pledge.neighborhood, "name": pledge.name or ""}
        form["show_name"] = pledge.show_name
    page = render_template(
        "manage/pledge.html",
        state=state or pledge.state,
        pledge=pledge,
        token=token,
        neighborhood_options=neighborhood_options(),
        form=form,
        errors=errors or {},
        problem=problem,
    )
    return make_response(page, status)


@bp.get("/<token>")
def show(token: str) -> Response:
    """Opening the link changes nothing: mail scanners open links too."""
    return pledge_page(token)


@bp.post("/<token>")
def update(token: str) -> Response:
    try:
        public_id = pledge_of_token(token)
    except ManageLinkError:
        return pledge_page(token)
    if request.form.get("action") == "withdraw":
        try:
            withdraw_pledge(public_id)
        except PledgeWithdrawn:
            return pledge_page(token)
        return pledge_page(token, "withdrawn_now")
    form = {name: request.form.get(name, "")[:1000] for name in ("kind", "neighborhood", "name")}
    form["show_name"] = request.form.get("show_name") in ("on", "true", "1")
    try:
        change_pledge(public_id, CHANGES.load({k: v for k, v in form.items() if v != ""}))
    except ValidationError as error:
        return pledge_page(token, "active", 422, form, field_messages(error.normalized_messages()))
    except InvalidInput as error:
        return pledge_page(token, "active", 422, form, field_messages(error.fields or {}))
    except CampaignClosed as error:
        return pledge_page(token, "active", 409, form, problem=error.message)
    except PledgeWithdrawn:
        return pledge_page(token)
    return pledge_page(token, "changed")
