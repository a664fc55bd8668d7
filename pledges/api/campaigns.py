"""Campaigns, pledges and their counts."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app
from flask_smorest import Blueprint

from ..extensions import limiter
from ..schemas import (
    CampaignListOut,
    CampaignOut,
    NeighborhoodTotalOut,
    PledgeIn,
    PledgeOut,
    TimeseriesOut,
    TimeseriesQuery,
    TotalsOut,
)
from ..services.campaigns import all_campaigns, find_campaign
from ..services.pledging import record_pledge
from ..services.totals import campaign_totals, neighborhood_total, timeseries, totals_csv
from .caching import cacheable

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1/campaigns",
    description="Campaigns, pledges and their counts. `{campaign}` is a slug or `current`.",
)


def pledge_rate_limit() -> str:
    return current_app.config["PLEDGE_RATE_LIMIT"]


@blp.route("")
@blp.response(200, CampaignListOut)
def list_campaigns() -> dict[str, Any]:
    return {"campaigns": all_campaigns()}


@blp.route("/<campaign>")
@blp.response(200, CampaignOut)
@blp.alt_response(404, description="No such campaign")
def get_campaign(campaign: str) -> Any:
    return find_campaign(campaign)


@blp.route("/<campaign>/pledges", methods=["POST"])
@limiter.limit(pledge_rate_limit)
@blp.arguments(PledgeIn)
@blp.response(201, PledgeOut, description="Pledge recorded and counted")
@blp.alt_response(200, schema=PledgeOut, description="This email already pledged; the first pledge")
@blp.alt_response(404, description="No such campaign")
@blp.alt_response(409, description="The campaign is not open")
@blp.alt_response(413, description="Body over 16 KiB")
@blp.alt_response(415, description="Body is not JSON")
def create_pledge(pledge: dict[str, Any], campaign: str) -> Any:
    receipt = record_pledge(campaign, pledge)
    return receipt, 201 if receipt.created else 200


@blp.route("/<campaign>/totals")
@cacheable
@blp.response(200, TotalsOut)
@blp.alt_response(304, description="Not modified since the ETag given in If-None-Match")
@blp.alt_response(404, description="No such campaign")
def get_totals(campaign: str) -> Any:
    return campaign_totals(find_campaign(campaign))


@blp.route("/<campaign>/totals.csv")
@cacheable
@blp.response(200, {"type": "string"}, content_type="text/csv")
@blp.alt_response(304, description="Not modified since the ETag given in If-None-Match")
@blp.alt_response(404, description="No such campaign")
def get_totals_csv(campaign: str) -> Response:
    found = find_campaign(campaign)
    body = totals_csv(campaign_totals(found))
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'inline; filename="{found.slug}-totals.csv"'
    return response


@blp.route("/<campaign>/neighborhoods/<slug>")
@blp.response(200, NeighborhoodTotalOut)
@blp.alt_response(404, description="No such campaign or neighborhood")
def get_neighborhood_total(campaign: str, slug: str) -> Any:
    return neighborhood_total(find_campaign(campaign), slug)


@blp.route("/<campaign>/timeseries")
@cacheable
@blp.arguments(TimeseriesQuery, location="query")
@blp.response(200, TimeseriesOut)
@blp.alt_response(404, description="No such campaign")
def get_timeseries(query: dict[str, Any], campaign: str) -> Any:
    return timeseries(find_campaign(campaign), query["interval"])
