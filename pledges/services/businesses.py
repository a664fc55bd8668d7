"""The wall of businesses that chose to be shown by name."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import or_

from ..errors import INVALID_FIELDS, InvalidInput
from ..extensions import db
from ..models import Campaign, Neighborhood, Pledge


@dataclass(frozen=True)
class ShownBusiness:
    name: str
    neighborhood: str  # slug
    neighborhood_name: str
    created_at: datetime
    pledge_id: int  # internal: only ever inside an opaque cursor


def encode_cursor(business: ShownBusiness) -> str:
    raw = f"{business.created_at.isoformat()}|{business.pledge_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        moment, pledge_id = raw.split("|")
        return datetime.fromisoformat(moment), int(pledge_id)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        raise InvalidInput(
            INVALID_FIELDS, {"cursor": [_l("This cursor is not valid: use the next link as given.")]}
        ) from error


def shown_businesses(
    campaign: Campaign, limit: int = 60, after: tuple[datetime, int] | None = None
) -> list[ShownBusiness]:
    """Counted business pledges whose owners asked to be shown, newest first.

    `after` is the (created_at, id) of the last one already seen: pages stay stable while pledges arrive.
    """
    query = (
        db.select(Pledge.name, Neighborhood.slug, Neighborhood.name, Pledge.created_at, Pledge.id)
        .join(Neighborhood, Neighborhood.id == Pledge.neighborhood_id)
        .where(
            Pledge.campaign_id == campaign.id,
            Pledge.show_name.is_(True),
            Pledge.kind == "business",
            Pledge.status == "counted",
        )
        .order_by(Pledge.created_at.desc(), Pledge.id.desc())
        .limit(limit)
    )
    if after is not None:
        moment, pledge_id = after
        query = query.where(
            or_(Pledge.created_at < moment, (Pledge.created_at == moment) & (Pledge.id < pledge_id))
        )
    return [ShownBusiness(*row) for row in db.session.execute(query)]
