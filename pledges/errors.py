"""One error format for the API: {"error": {"code", "message", "fields"?}}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from flask_babel import lazy_gettext as _l
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}

INVALID_FIELDS = _l("Some fields are not valid.")
MESSAGES = {
    400: _l("The body is not valid JSON."),
    404: _l("Nothing is here."),
    405: _l("That method is not allowed here."),
    413: _l("The request body is larger than 16 KiB."),
    415: _l("Send the body as JSON (Content-Type: application/json)."),
    422: INVALID_FIELDS,
    429: _l("Too many requests; slow down and try again later."),
    500: _l("Something went wrong on our side."),
    503: _l("The service is briefly unavailable; try again shortly."),
}


class ApiError(Exception):
    """A failure the client can act on, raised by services and views alike."""

    status = 400
    code = "bad_request"
    headers: dict[str, str] = {}

    def __init__(self, message: Any, fields: dict[str, list[Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields


class NotFound(ApiError):
    status = 404
    code = "not_found"


class CampaignClosed(ApiError):
    status = 409
    code = "campaign_closed"


class InvalidInput(ApiError):
    status = 422
    code = "validation_error"


def field_messages(errors: dict[str, Any]) -> dict[str, list[str]]:
    """Field errors as {"field": ["message", …]}, in the request's language.

    marshmallow keeps a lazy translated message as it was raised, not in a list.
    """
    fields: dict[str, list[str]] = {}
    for name, messages in errors.items():
        if isinstance(messages, dict):  # a nested field: its own messages, flattened
            messages = [m for sub in field_messages(messages).values() for m in sub]
        elif not isinstance(messages, list | tuple):
            messages = [messages]
        fields[str(name)] = [str(m) for m in messages]
    return fields


def error_response(
    status: int,
    code: str,
    message: Any,
    fields: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    # Messages may be lazy translations: made text here, in the request's language.
    body: dict[str, Any] = {"code": code, "message": str(message)}
    if fields:
        body["fields"] = field_messages(fields)
    response = jsonify(error=body)
    response.status_code = status
    response.headers.update(headers or {})
    return response


def is_api_path(path: str) -> bool:
    return path.startswith("/api/")


def _is_json_path() -> bool:
    return is_api_path(request.path) or request.path in ("/healthz", "/readyz")


def _fields_from_webargs(messages: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Split webargs' {"json": {...}, "query": {...}} into field errors and whole-body errors."""
    fields: dict[str, Any] = {}
    general: list[str] = []
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            for name, errors in location_errors.items():
                if name == "_schema":
                    general.extend(errors)
                else:
                    fields[name] = errors
        else:
            general.extend(location_errors)
    return fields, general


PAGE_TITLES = {
    400: _l("Something was wrong with that request"),
    404: _l("Page not found"),
    405: _l("Page not found"),
    429: _l("Too many requests"),
    500: _l("Something went wrong"),
    503: _l("Porch Light is briefly unavailable"),
}
PAGE_MESSAGES = {
    400: _l("Please go back and try again."),
    404: _l("There is no page at this address."),
    405: _l("There is no page at this address."),
    429: _l("Too many requests came from your connection. Please wait a minute and try again."),
    500: _l("Something went wrong on our side. Your pledge may not have been saved; please try again."),
    503: _l("Please try again in a moment."),
}


def error_page(status: int, headers: dict[str, str] | None = None) -> tuple[str, int, dict[str, str]]:
    """The same failures, for people: a translated HTML page."""
    key = status if status in PAGE_TITLES else (500 if status >= 500 else 400)
    page = render_template("error.html", title=PAGE_TITLES[key], message=PAGE_MESSAGES[key])
    return page, status, headers or {}


def handle_http_exception(error: HTTPException) -> Response | tuple[str, int, dict[str, str]]:
    if not _is_json_path():
        return error_page(error.code or 500)
    status = error.code or 500
    code = CODES.get(status, "error")
    message: Any = MESSAGES.get(status, error.description or "")
    fields: dict[str, Any] = {}
    headers: dict[str, str] = {}
    data = getattr(error, "data", None) or {}
    if "messages" in data:
        fields, general = _fields_from_webargs(data["messages"])
        if general and not fields and status != 400:
            message = " ".join(str(m) for m in general)
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(error.valid_methods)  # type: ignore[attr-defined]
    if status == 503:
        headers["Retry-After"] = "5"
    return error_response(status, code, message, fields or None, headers)


def handle_api_error(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.fields, dict(error.headers))


def handle_database_unavailable(error: OperationalError) -> Response | tuple[str, int, dict[str, str]]:
    # The database is down, locked past its timeout or out of space: a retryable 503.
    log.error("database unavailable: %s", type(error.orig).__name__)
    if not _is_json_path():
        return error_page(503, {"Retry-After": "5"})
    return error_response(503, "unavailable", MESSAGES[503], headers={"Retry-After": "5"})


def handle_unexpected(error: Exception) -> Response | tuple[str, int, dict[str, str]]:
    log.exception("unhandled error on %s %s", request.method, request.path)
    if not _is_json_path():
        return error_page(500)
    return error_response(500, "internal_error", MESSAGES[500])


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(OperationalError, handle_database_unavailable)
    app.register_error_handler(Exception, handle_unexpected)
