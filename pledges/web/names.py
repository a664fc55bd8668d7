"""Business names for the wall: the mayor's office approves or rejects them before they are shown."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("names", __name__, url_prefix="/admin/names")
