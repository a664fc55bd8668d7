"""The JSON API: flask-smorest blueprints, one per resource.

`operation()` documents what every route of a kind can answer besides its own statuses, through
flask-smorest's public `Blueprint.doc`: the errors errors.py writes, the bearer key and the rate limits.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, Literal

from flask_smorest import Blueprint

from ..caching import CACHE_CONTROL
from ..schemas import ErrorOut

View = Callable[..., Any]
Access = Literal["public", "public_body", "intake_body", "admin", "admin_body", "stream"]

BEARER = "bearerAuth"
# A public route takes a key too (its own rate limit, pledges taken for others); a wrong one is a 401.
KEY_SECURITY: list[dict[str, list[str]]] = [{BEARER: []}]

RATE_HEADERS = {
    "X-RateLimit-Limit": {"description": "Requests allowed in the window", "schema": {"type": "integer"}},
    "X-RateLimit-Remaining": {"description": "Requests left in the window", "schema": {"type": "integer"}},
    "X-RateLimit-Reset": {
        "description": "When the window ends, in seconds since the epoch",
        "schema": {"type": "integer"},
    },
}
RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before trying again", "schema": {"type": "integer"}}
}
CACHE_HEADERS = {
    "ETag": {
        "description": "This version of the body: send it back in If-None-Match",
        "schema": {"type": "string"},
    },
    "Cache-Control": {
        "description": CACHE_CONTROL,
        "schema": {"type": "string"},
    },
}

# (code, English message, what it means here) for each status errors.py answers with its JSON error.
ERRORS: dict[int, tuple[str, str, str]] = {
    400: (
        "bad_request",
        "The body is not valid JSON.",
        "The body is not valid JSON, is empty or nests too deeply",
    ),
    401: (
        "unauthorized",
        "The API key is wrong or has been revoked.",
        "The Authorization header names no valid, unrevoked key",
    ),
    403: ("forbidden", "This route needs a key with the admin scope.", "The key's scope does not allow this"),
    404: ("not_found", "Nothing is here.", "No such resource"),
    405: ("method_not_allowed", "That method is not allowed here.", "Not a method of this path: see Allow"),
    409: (
        "campaign_closed",
        "National Night Out 2027 is closed; it takes no more pledges.",
        "The campaign is not open",
    ),
    413: ("payload_too_large", "The request body is larger than 16 KiB.", "The body is over 16 KiB"),
    415: (
        "unsupported_media_type",
        "Send the body as JSON (Content-Type: application/json).",
        "The body is not sent as application/json",
    ),
    422: ("validation_error", "Some fields are not valid.", "A field is not valid: see error.fields"),
    429: (
        "rate_limited",
        "Too many requests; slow down and try again later.",
        "Over the rate limit: see Retry-After",
    ),
    500: ("internal_error", "Something went wrong on our side.", "An unexpected failure on the server"),
    503: (
        "unavailable",
        "The service is briefly unavailable; try again shortly.",
        "The database is briefly unavailable: see Retry-After",
    ),
}
HEADERS: dict[int, dict[str, Any]] = {
    405: {"Allow": {"description": "The methods this path takes", "schema": {"type": "string"}}},
    429: {**RETRY_AFTER, **RATE_HEADERS},
    503: RETRY_AFTER,
}
COMMON: dict[Access, tuple[int, ...]] = {
    "public": (401, 405, 429, 500, 503),
    "public_body": (400, 401, 405, 413, 415, 422, 429, 500, 503),
    "intake_body": (400, 401, 403, 405, 413, 415, 422, 429, 500, 503),
    "admin": (401, 403, 405, 422, 429, 500, 503),
    "admin_body": (400, 401, 403, 405, 413, 415, 422, 429, 500, 503),
    # Not rate-limited: capped by open streams instead (its own 429 and 503).
    "stream": (401, 405, 500),
}


def error_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response for an error status: the ErrorOut body, with an example."""
    code, message, meaning = ERRORS[status]
    response: dict[str, Any] = {
        "description": description or meaning,
        "content": {
            "application/json": {"schema": ErrorOut, "example": {"error": {"code": code, "message": message}}}
        },
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


ACCESS_NOTES: dict[Access, str] = {
    "public": "No key needed; with one, the key's own rate limit applies.",
    "public_body": "No key needed; with one, the key's own rate limit applies.",
    "intake_body": "Needs an intake or admin key.",
    "admin": "Needs an admin key.",
    "admin_body": "Needs an admin key; written to the audit log.",
    "stream": "No key needed, and not rate-limited: open streams are capped per address and per process.",
}
CACHED_NOTE = "Cached for 5 seconds: send the ETag back in If-None-Match for a 304."

NOT_MODIFIED = {
    "description": "Not modified since the ETag sent in If-None-Match: no body",
    "headers": CACHE_HEADERS,
}


def operation(
    blp: Blueprint,
    operation_id: str,
    access: Access,
    *,
    errors: Mapping[int, str] | None = None,
    not_modified: bool = False,
    responses: Mapping[int, dict[str, Any]] | None = None,
    description: str = "",
    **doc: Any,
) -> Callable[[View], View]:
    """Document an operation: its id, who may call it, and every status it can answer.

    `errors` are the route's own error statuses, with what each means there; `responses` any other
    (for a view that builds its own Response, its 200 too: one thin layer instead of flask-smorest's
    response wrappers, which only pass such a Response on). `not_modified`: it answers 304.
    `description` follows the docstring's, and a sentence on keys (and caching) follows it.
    """
    # Keyed by int as flask-smorest keys its own: a response given here is merged into the decorators'.
    documented: dict[int, Any] = {status: error_response(status) for status in COMMON[access]}
    for status, meaning in (errors or {}).items():
        documented[status] = error_response(status, meaning)
    if not_modified:
        documented[304] = NOT_MODIFIED
    for status, response in (responses or {}).items():
        documented[status] = response
    # Public routes take the document's own security (anonymous, or a key): stated per operation,
    # a generator reads any security as required, and public functions would want a key.
    security = None if access in ("public", "public_body", "stream") else KEY_SECURITY
    notes = [description, ACCESS_NOTES[access], CACHED_NOTE if not_modified else ""]

    def decorate(view: View) -> View:
        # Given here, the description replaces the docstring's: so the docstring's comes first.
        lines = inspect.cleandoc(view.__doc__ or "").split("\n")
        text = " ".join(part for part in ["\n".join(lines[1:]).strip(), *notes] if part)
        if security is not None:
            doc["security"] = security
        return blp.doc(operationId=operation_id, responses=documented, description=text, **doc)(view)

    return decorate


def security_scheme() -> dict[str, Any]:
    return {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`porchlight keys create`), sent as `Authorization: Bearer <key>`. "
        "Scopes: read, intake (pledges for many people), admin (the /admin routes). A wrong or revoked "
        "key is a 401 on every route, public ones too.",
    }
