"""Campaigns, pledges and their counts."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request, stream_with_context, url_for
from flask_smorest import Blueprint
from werkzeug.http import generate_etag, quote_etag

from .. import live
from ..caching import cacheable, tagged
from ..extensions import db
from ..models import Campaign
from ..ratelimits import api_read, exempt, pledging
from ..schemas import (
    BusinessesQuery,
    BusinessListOut,
    CampaignListOut,
    CampaignOut,
    NeighborhoodTotalOut,
    PledgeIn,
    PledgeOut,
    TimeseriesOut,
    TimeseriesQuery,
    TotalsOut,
)
from ..services.businesses import shown_businesses
from ..services.campaigns import all_campaigns, find_campaign
from ..services.cursors import decode_cursor, encode_cursor
from ..services.pledging import record_pledge
from ..services.totals import campaign_totals, neighborhood_total, timeseries, totals_csv
from ..snapshots import COUNTS, snapshot
from . import documented

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1/campaigns",
    description="Campaigns, pledges and their counts. `{campaign}` is a slug or `current`.",
)


@blp.route("")
@api_read
@blp.response(200, CampaignListOut)
def list_campaigns() -> dict[str, Any]:
    return {"campaigns": all_campaigns()}


@blp.route("/<campaign>")
@api_read
@blp.response(200, CampaignOut)
@blp.alt_response(404, description="No such campaign")
def get_campaign(campaign: str) -> Any:
    return find_campaign(campaign)


@blp.route("/<campaign>/pledges", methods=["POST"])
@pledging
@blp.arguments(PledgeIn())
@blp.response(201, PledgeOut, description="Pledge recorded and counted")
@blp.alt_response(200, schema=PledgeOut, description="This email already pledged; the first pledge")
@blp.alt_response(404, description="No such campaign")
@blp.alt_response(409, description="The campaign is not open")
@blp.alt_response(413, description="Body over 16 KiB")
@blp.alt_response(415, description="Body is not JSON")
def create_pledge(pledge: dict[str, Any], campaign: str) -> Any:
    receipt = record_pledge(campaign, pledge, client_address=request.remote_addr)
    return receipt, 201 if receipt.created else 200


@blp.route("/<campaign>/totals")
@api_read
@documented(
    blp.response(200, TotalsOut),
    blp.alt_response(304, description="Not modified since the ETag given in If-None-Match"),
    blp.alt_response(404, description="No such campaign"),
)
def get_totals(campaign: str) -> Response:
    body, etag = snapshot((COUNTS, "totals", campaign), lambda: _rendered_totals(campaign))
    return tagged(body, etag, "application/json")


def _rendered_totals(ref: str) -> tuple[bytes, str]:
    """The body and its ETag header value, computed once per snapshot, not per request."""
    body = render_totals(find_campaign(ref)).encode()
    return body, quote_etag(generate_etag(body))


@blp.route("/<campaign>/totals.csv")
@api_read
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
@api_read
@cacheable
@blp.response(200, NeighborhoodTotalOut)
@blp.alt_response(304, description="Not modified since the ETag given in If-None-Match")
@blp.alt_response(404, description="No such campaign or neighborhood")
def get_neighborhood_total(campaign: str, slug: str) -> Any:
    return neighborhood_total(find_campaign(campaign), slug)


@blp.route("/<campaign>/timeseries")
@api_read
@cacheable
@blp.arguments(TimeseriesQuery(), location="query")
@blp.response(200, TimeseriesOut)
@blp.alt_response(404, description="No such campaign")
def get_timeseries(query: dict[str, Any], campaign: str) -> Any:
    return timeseries(find_campaign(campaign), query["interval"])


@blp.route("/<campaign>/businesses")
@api_read
@cacheable
@blp.arguments(BusinessesQuery(), location="query")
@blp.response(200, BusinessListOut)
@blp.alt_response(404, description="No such campaign")
def list_businesses(query: dict[str, Any], campaign: str) -> dict[str, Any]:
    """Businesses that chose to be shown, newest first; follow `next` for more."""
    found = find_campaign(campaign)
    after = decode_cursor(query["cursor"]) if query["cursor"] else None
    page = shown_businesses(found, limit=query["limit"] + 1, after=after)
    more, page = len(page) > query["limit"], page[: query["limit"]]
    next_url = (
        url_for(
            ".list_businesses",
            campaign=campaign,
            limit=query["limit"],
            cursor=encode_cursor(page[-1].created_at, page[-1].pledge_id),
            _external=True,
        )
        if more
        else None
    )
    return {"businesses": page, "next": next_url}


def render_totals(campaign: Campaign | int) -> str:
    """The totals of a campaign as the totals route sends them: what every stream event carries."""
    if isinstance(campaign, int):
        campaign = db.session.get_one(Campaign, campaign)
    return TotalsOut().dumps(campaign_totals(campaign), separators=(",", ":"), ensure_ascii=False)


@blp.route("/<campaign>/stream")
@blp.response(200, {"type": "string"}, content_type="text/event-stream")
@blp.alt_response(404, description="No such campaign")
@exempt
def stream_totals(campaign: str) -> Response:
    """Server-Sent Events: `totals` at once and after every change; a heartbeat comment when quiet."""
    found = find_campaign(campaign)
    broadcaster = live.broadcaster(current_app)
    # The version is read before the totals: a pledge in between is sent twice, never lost.
    version = live.totals_version(found.id)
    first_payload = render_totals(found.id)
    subscription = broadcaster.subscribe(found.id, version)
    db.session.remove()  # an open stream holds no database connection
    body = live.stream_events(
        broadcaster, subscription, first_payload, heartbeat=current_app.config["STREAM_HEARTBEAT_SECONDS"]
    )
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
