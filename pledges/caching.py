"""HTTP caching for public reads: an ETag, a short public max-age, and 304 to If-None-Match."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, request

MAX_AGE = 5  # seconds; the contract allows at most 10
STALE_WHILE_REVALIDATE = 30
STALE_IF_ERROR = 86400  # a day: a partner's page keeps showing the last totals through an outage of ours
CACHE_CONTROL = (
    f"public, max-age={MAX_AGE}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"
    f", stale-if-error={STALE_IF_ERROR}"
)


def conditional(response: Response) -> Response:
    """Tag a successful response and answer 304 when the client already holds this version."""
    if response.status_code != 200:
        return response
    response.add_etag()
    response.headers["Cache-Control"] = CACHE_CONTROL
    return compared(response)


def tagged(body: bytes, etag: str, content_type: str) -> Response:
    """`conditional` for a body whose ETag header value was computed with it (once per snapshot)."""
    return compared(
        Response(body, content_type=content_type, headers=(("ETag", etag), ("Cache-Control", CACHE_CONTROL)))
    )


def compared(response: Response) -> Response:
    """304 when the request's If-None-Match or If-Modified-Since matches this version."""
    environ = request.environ
    if "HTTP_IF_NONE_MATCH" not in environ and "HTTP_IF_MODIFIED_SINCE" not in environ:
        return response  # nothing to compare: skip make_conditional's parsing on the hot path
    return response.make_conditional(request)


def cacheable(view: Callable[..., Response]) -> Callable[..., Response]:
    """Apply `conditional` to what a view (already dumped to a Response) returns."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        return conditional(view(*args, **kwargs))

    return wrapper
