"""Manage my pledge: a person asks for a signed link by email, then changes or withdraws their pledge."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("manage", __name__, url_prefix="/manage")
