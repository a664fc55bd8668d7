"""HTTP caching for public reads: an ETag, a short public max-age, and 304 to If-None-Match."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Response, request

MAX_AGE = 5  # seconds; the contract allows at most 10
STALE_WHILE_REVALIDATE = 30
CONDITIONAL_HEADERS = frozenset({"HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE"})
CACHE_CONTROL = f"public, max-age={MAX_AGE}, stale-while-revalidate={STALE_WHILE_REVALIDATE}"


def conditional(response: Response) -> Response:
    """Tag a successful response and answer 304 when the client already holds this version."""
    if response.status_code != 200:
        return response
    response.add_etag()
    response.headers["Cache-Control"] = CACHE_CONTROL
    if not any(header in request.environ for header in CONDITIONAL_HEADERS):
        return response  # nothing to compare: skip make_conditional's parsing on the hot path
    return response.make_conditional(request)


def cacheable(view: Callable[..., Response]) -> Callable[..., Response]:
    """Apply `conditional` to what a view (already dumped to a Response) returns."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        return conditional(view(*args, **kwargs))

    return wrapper
