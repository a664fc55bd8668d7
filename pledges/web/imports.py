"""Paper sign-up sheets: uploaded on /admin and /signup, previewed, then imported in one transaction.

Choose a CSV file → Preview (a dry run: each row's outcome) → "Import N pledges", which sends
the same file again from a hidden field of the preview (base64, so its bytes survive the form
exactly), and shows what was written. Both steps go through services.imports, as the API does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from flask import Blueprint, current_app, render_template, request, session
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.wrappers import Response

from ..auth import current_key
from ..errors import ApiError
from ..services.imports import ImportReport, caller_key, import_sheet
from ..services.keys import INTAKE_SCOPES, CallerKey
from .admin import SESSION_KEY as ADMIN_SESSION
from .admin import admin_required, signed_in_admin
from .signup import SESSION_KEY as SIGNUP_SESSION
from .signup import intake_required, signed_in_intake_key

bp = Blueprint("imports", __name__)
API_ENDPOINT = "campaigns.import_pledges"
# Room beyond the file for the form's other fields and multipart framing.
FORM_OVERHEAD = 64 * 1024
CHOOSE_FILE = _l("Choose a CSV file to upload.")
FORM_EXPIRED = _l("This form had expired, so nothing was imported. Please choose the file again.")


def admin_key() -> CallerKey | None:
    admin = signed_in_admin()
    return caller_key(admin["key_id"]) if admin is not None else None


# Each upload page: who may use it, and what its pages are built from.
PAGES: dict[str, dict[str, Any]] = {
    "admin": {"signed_in": admin_key, "layout": "admin", "session": ADMIN_SESSION},
    "signup": {"signed_in": signed_in_intake_key, "layout": "signup", "session": SIGNUP_SESSION},
}
UPLOAD_ENDPOINTS = {
    "imports.admin_upload": "admin",
    "imports.admin_import": "admin",
    "imports.signup_upload": "signup",
    "imports.signup_import": "signup",
}


def allow_sheet_uploads() -> None:
    """Lift the 16 KiB body limit to IMPORT_MAX_BYTES for the import routes, before the body is read.

    Only for a caller allowed to import: for anyone else the 16 KiB limit stays. On the pages the
    limit covers the file or its base64 in the preview's hidden field (4/3 its size), so the
    service, not the transport, says when a sheet is too large.
    """
    endpoint = request.endpoint
    limit = current_app.config["IMPORT_MAX_BYTES"]
    if endpoint == API_ENDPOINT:
        key = current_key()
        if key is not None and key.scope in INTAKE_SCOPES:
            request.max_content_length = limit
    elif (
        endpoint in UPLOAD_ENDPOINTS
        and request.method == "POST"
        and PAGES[UPLOAD_ENDPOINTS[endpoint]]["signed_in"]() is not None
    ):
        request.max_content_length = request.max_form_memory_size = 2 * limit + FORM_OVERHEAD


@bp.after_request
def never_cache(response: Response) -> Response:
    # The report lists people's emails' outcomes: never kept by a browser or a proxy.
    response.headers["Cache-Control"] = "no-store"
    response.vary.update(("Accept-Language", "Cookie"))
    return response


@bp.get("/admin/import")
@admin_required
def admin_upload_form() -> tuple[str, int]:
    return render_upload("admin")


@bp.post("/admin/import")
@admin_required
def admin_upload() -> tuple[str, int]:
    return preview("admin")


@bp.post("/admin/import/confirm")
@admin_required
def admin_import() -> tuple[str, int]:
    return confirm("admin")


@bp.get("/signup/import")
@intake_required
def signup_upload_form() -> tuple[str, int]:
    return render_upload("signup")


@bp.post("/signup/import")
@intake_required
def signup_upload() -> tuple[str, int]:
    return preview("signup")


@bp.post("/signup/import/confirm")
@intake_required
def signup_import() -> tuple[str, int]:
    return confirm("signup")


def preview(page: str) -> tuple[str, int]:
    """The chosen file, as a dry run: what importing it would do, row by row."""
    upload = request.files.get("sheet_file")
    sheet = upload.read() if upload is not None else b""
    if not sheet:
        return render_upload(page, CHOOSE_FILE, 400)
    return run(page, sheet, dry_run=True)


def confirm(page: str) -> tuple[str, int]:
    """The file the preview showed, imported for real."""
    try:
        sheet = base64.b64decode(request.form.get("sheet", ""), validate=True)
    except (binascii.Error, ValueError):
        sheet = b""
    if not sheet:
        return render_upload(page, CHOOSE_FILE, 400)
    return run(page, sheet, dry_run=False)


def run(page: str, sheet: bytes, dry_run: bool) -> tuple[str, int]:
    signed_in: Callable[[], CallerKey | None] = PAGES[page]["signed_in"]
    caller = signed_in()
    if caller is None:  # the key was revoked since the page's own check
        return render_upload(page, FORM_EXPIRED, 400)
    try:
        report = import_sheet("current", sheet, "text/csv", caller, dry_run=dry_run)
    except ApiError as error:
        return render_upload(page, error.message, error.status)
    return render_report(page, report, base64.b64encode(sheet).decode() if dry_run else None)


def _page_context(page: str) -> dict[str, Any]:
    return {"page": page, "layout": PAGES[page]["layout"], "signed_in": session.get(PAGES[page]["session"])}


def render_upload(page: str, problem: Any = None, status: int = 200) -> tuple[str, int]:
    return render_template("imports/upload.html", problem=problem, **_page_context(page)), status


def render_report(page: str, report: ImportReport, sheet: str | None) -> tuple[str, int]:
    return render_template("imports/report.html", report=report, sheet=sheet, **_page_context(page)), 200


@bp.errorhandler(CSRFError)
def form_expired(error: CSRFError) -> tuple[str, int] | Response:
    """A stale or missing CSRF token: nothing is imported; the page says so instead of a bare 400."""
    page = UPLOAD_ENDPOINTS.get(request.endpoint or "", "admin")
    if PAGES[page]["signed_in"]() is None:
        return render_template("error.html", title=_l("Sign in again"), message=FORM_EXPIRED), 400
    return render_upload(page, FORM_EXPIRED, 400)
