"""Opaque cursors for newest-first lists: stable while new rows keep arriving at the top."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_

from ..errors import INVALID_FIELDS, InvalidInput

Position = tuple[datetime, int]


def encode_cursor(created_at: datetime, row_id: int) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, row_id = raw.split("|")
        return datetime.fromisoformat(moment), int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        message = _l("This cursor is not valid: use the next link as given.")
        raise InvalidInput(INVALID_FIELDS, {"cursor": [message]}) from error


def older_than(created_at: Any, row_id: Any, position: Position | None) -> Any:
    """The condition for rows after `position` in (created_at, id) descending order."""
    if position is None:
        return True
    moment, last_id = position
    return or_(created_at < moment, (created_at == moment) & (row_id < last_id))
