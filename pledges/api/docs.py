"""API documentation that works with no internet: Swagger UI served by the app itself."""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from ..ratelimits import exempt

bp = Blueprint("docs", __name__, url_prefix="/api/docs")
ASSETS = ("swagger-ui.css", "swagger-ui-bundle.js")


@bp.get("")
def docs_page() -> str:
    return render_template("api_docs.html")


@bp.get("/assets/<name>")
def docs_asset(name: str) -> Response:
    if name not in ASSETS:
        abort(404)
    return send_from_directory(swagger_ui_path, name, max_age=86_400)


exempt(bp)
