"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from .extensions import db, limiter

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is up; says nothing of its dependencies."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> tuple[Response, int] | Response:
    """Ready for traffic: the database answers, and so does Redis where it stores rate limits."""
    checks = {"database": "ok"}
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        log.warning("readiness: database unreachable (%s)", type(error).__name__)
        db.session.rollback()
        checks["database"] = "unavailable"
    if not current_app.config["RATELIMIT_STORAGE_URI"].startswith("memory://"):
        try:
            reachable = limiter.storage.check()
        except Exception:  # noqa: BLE001
            reachable = False
        checks["rate_limit_storage"] = "ok" if reachable else "unavailable"
    if all(v == "ok" for v in checks.values()):
        return jsonify(status="ok", checks=checks)
    response = jsonify(status="unavailable", checks=checks)
    response.headers["Retry-After"] = "5"
    return response, 503
