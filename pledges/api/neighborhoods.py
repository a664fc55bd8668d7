"""The neighborhoods pledges can be made for."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from ..caching import cacheable
from ..extensions import db
from ..models import Neighborhood
from ..ratelimits import api_read
from ..schemas import NeighborhoodListOut

blp = Blueprint("neighborhoods", __name__, url_prefix="/api/v1/neighborhoods", description="Neighborhoods")


@blp.route("")
@api_read
@cacheable
@blp.response(200, NeighborhoodListOut)
def list_neighborhoods() -> dict[str, Any]:
    rows = db.session.scalars(db.select(Neighborhood).order_by(db.func.lower(Neighborhood.name)))
    return {"neighborhoods": list(rows)}
