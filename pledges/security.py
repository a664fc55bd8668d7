"""Headers and cookies every page carries: nothing loads from another host, nothing frames us."""

from __future__ import annotations

from flask import Flask, Response, request
from flask.sessions import SecureCookieSessionInterface

from .errors import is_api_path

# No inline script or style: everything the page runs or wears is a file served by the app.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


CORS_EXPOSED = "ETag, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
CORS_READ_HEADERS = (("Access-Control-Allow-Origin", "*"), ("Access-Control-Expose-Headers", CORS_EXPOSED))


SAFETY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
)
# A year of HTTPS only, for this host alone: served at a city's own domain, includeSubDomains
# would lock out its other sites that are still plain HTTP.
STRICT_TRANSPORT = ("Strict-Transport-Security", "max-age=31536000")


def add_security_headers(response: Response) -> Response:
    """Each one a route has not set itself (an embeddable counter sets its own CSP).

    One pass over the headers already there, not a setdefault per header: each of those
    rescans them all, twice, and raises a KeyError when the header is missing.
    """
    headers = response.headers
    present = {name.lower() for name, _ in headers}
    for name, value in SAFETY_HEADERS:
        if name.lower() not in present:
            headers.add(name, value)
    # Over HTTPS only (directly, or as a trusted proxy reports it): over HTTP browsers ignore it.
    if request.is_secure and "strict-transport-security" not in present:
        headers.add(*STRICT_TRANSPORT)
    own_policy = (
        headers["Content-Security-Policy"]
        if "content-security-policy" in present
        else CONTENT_SECURITY_POLICY
    )
    if "frame-ancestors 'none'" in own_policy and "x-frame-options" not in present:
        headers.add("X-Frame-Options", "DENY")  # for browsers without CSP 3
    return response


def allow_cross_origin_reads(response: Response) -> Response:
    """Any site may read the public API from a browser, without cookies; writes and admin stay closed."""
    method, path = request.method, request.path
    if method not in ("GET", "HEAD", "OPTIONS"):
        return response
    if not is_api_path(path) or path.startswith(("/api/v1/admin", "/api/docs")):
        return response
    # Added, not set: no view sets these, and set() rescans the header list on every public read.
    for name, value in CORS_READ_HEADERS:
        response.headers.add(name, value)
    if method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, HEAD"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, If-None-Match"
        response.headers["Access-Control-Max-Age"] = "86400"
    return response


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (directly or via a trusted proxy)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config["SESSION_COOKIE_SECURE"]) or request.is_secure


def init_app(app: Flask) -> None:
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config["SESSION_COOKIE_SAMESITE"] = app.config.get("SESSION_COOKIE_SAMESITE") or "Lax"
    app.session_interface = SessionInterface()
    app.after_request(add_security_headers)
    app.after_request(allow_cross_origin_reads)
