"""The neighborhoods pledges can be made for."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from ..caching import cacheable
from ..extensions import db
from ..models import Neighborhood
from ..ratelimits import api_read
from ..schemas import NeighborhoodListOut
from . import CACHE_HEADERS, operation

blp = Blueprint(
    "neighborhoods",
    __name__,
    url_prefix="/api/v1/neighborhoods",
    description="The neighborhoods pledges can be made for",
)


@blp.route("")
@api_read
@cacheable
@blp.response(200, NeighborhoodListOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "listNeighborhoods",
    "public",
    not_modified=True,
)
def list_neighborhoods() -> dict[str, Any]:
    """Every neighborhood a pledge can name, by name; `slug` is what a pledge sends."""
    rows = db.session.scalars(db.select(Neighborhood).order_by(db.func.lower(Neighborhood.name)))
    return {"neighborhoods": list(rows)}
