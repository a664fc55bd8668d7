"""Absolute links, for pages and answers that others cache and share."""

from __future__ import annotations

from typing import Any

from flask import current_app, request, url_for


def absolute_url(endpoint: str, **values: Any) -> str:
    """A link with scheme and host: PUBLIC_URL's when it was given, else the request's own.

    The request's host comes from its Host header (or X-Forwarded-Host, with TRUSTED_PROXY_HOST),
    which a client can forge: a cached page would hand the forged link to everyone after.
    """
    if not current_app.config.get("PUBLIC_URL_GIVEN"):
        return url_for(endpoint, **values, _external=True)
    # PUBLIC_URL names the app's root, as confirmation links use it: the path within the app follows.
    path = url_for(endpoint, **values).removeprefix(request.script_root)
    return current_app.config["PUBLIC_URL"] + path
