"""Campaigns, pledges and their counts."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, jsonify, request, stream_with_context
from flask_limiter.util import get_remote_address
from flask_smorest import Blueprint
from werkzeug.http import generate_etag, quote_etag

from .. import live
from ..auth import Forbidden, Unauthorized, current_key
from ..caching import cacheable, conditional, tagged
from ..extensions import db
from ..models import Campaign
from ..ratelimits import api_read, exempt, pledging
from ..schemas import (
    BusinessesQuery,
    BusinessListOut,
    CampaignListOut,
    CampaignOut,
    DuplicatePledgeOut,
    ImportQuery,
    ImportReportOut,
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
from ..services.imports import MAX_ROWS, ImportReport, import_sheet
from ..services.keys import INTAKE_SCOPES, CallerKey
from ..services.pledging import record_pledge
from ..services.totals import campaign_totals, neighborhood_total, timeseries, totals_csv
from ..snapshots import COUNTS, snapshot
from ..urls import absolute_url
from . import CACHE_HEADERS, operation

blp = Blueprint(
    "campaigns",
    __name__,
    url_prefix="/api/v1/campaigns",
    description="Campaigns, pledges and their counts. `{campaign}` is a slug or `current`.",
)


@blp.route("")
@api_read
@blp.response(200, CampaignListOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "listCampaigns",
    "public",
    not_modified=True,
)
def list_campaigns() -> Response:
    """Every campaign, past, open and upcoming."""
    # Dumped here to be tagged and cached as the other public reads are (caching.py).
    return conditional(jsonify(CampaignListOut().dump({"campaigns": all_campaigns()})))


@blp.route("/<campaign>")
@api_read
@blp.response(200, CampaignOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "getCampaign",
    "public",
    description=(
        "`campaign` is a slug or `current`: the open campaign (the one ending soonest), else the most recent."
    ),
    errors={404: "No such campaign"},
    not_modified=True,
)
def get_campaign(campaign: str) -> Response:
    """One campaign: its dates, goal and status."""
    return conditional(jsonify(CampaignOut().dump(find_campaign(campaign))))


@blp.route("/<campaign>/pledges", methods=["POST"])
@pledging
@blp.arguments(PledgeIn())
@blp.response(201, PledgeOut, description="Pledge recorded: counted, or pending with its reason")
@blp.alt_response(
    200, schema=DuplicatePledgeOut, description="This email already pledged; the first pledge's id"
)
@operation(
    blp,
    "createPledge",
    "public_body",
    description=(
        "One pledge per email per campaign: sending it again answers 200 with the first pledge's "
        "id. Without a key, pledges from one address are limited and may wait for review; an "
        "intake or admin key takes them for many people."
    ),
    errors={
        404: "No such campaign",
        409: "The campaign is not open (upcoming or closed)",
        422: "A field is not valid, the neighborhood is not one of GET /api/v1/neighborhoods, or a "
        "business pledge has no name: see error.fields",
    },
    responses={
        201: {
            "links": {
                "RemovePledge": {
                    "operationId": "removePledge",
                    "parameters": {"pledge_id": "$response.body#/id"},
                }
            }
        }
    },
)
def create_pledge(pledge: dict[str, Any], campaign: str) -> Any:
    """A pledge; with an intake (or admin) key, taken for its person: no per-address checks."""
    receipt = record_pledge(campaign, pledge, client_address=request.remote_addr, intake_key=intake_caller())
    if not receipt.created:
        first = {"id": receipt.id, "status": receipt.status, "duplicate": True}
        return jsonify(DuplicatePledgeOut().dump(first)), 200
    return receipt, 201


def intake_caller() -> CallerKey | None:
    """The caller's key when it may take pledges for many people (intake or admin scope)."""
    key = current_key()
    return key if key is not None and key.scope in INTAKE_SCOPES else None


# The import's body is a CSV file or JSON: both documented, one read by the service.
SHEET_BODY = {
    "required": True,
    "content": {
        "text/csv": {
            "schema": {
                "type": "string",
                "description": "A header row naming the columns (kind, neighborhood, email, and optionally "
                f"name, show_name), then one pledge a row; at most {MAX_ROWS:,} rows.",
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["pledges"],
                "properties": {
                    "pledges": {
                        "type": "array",
                        # Not maxItems: more rows than that is a 413, which OpenAPI cannot say.
                        "description": f"At most {MAX_ROWS:,} rows; more is 413 payload_too_large.",
                        # Any value: each row is checked like a single pledge (PledgeIn), and a row
                        # that fails is reported "invalid" in the 200 answer, not refused whole.
                        "items": {
                            "description": "A pledge's fields, as PledgeIn; a row that is not a valid "
                            "pledge is reported as invalid, with its fields' messages.",
                        },
                    }
                },
            }
        },
    },
}


@blp.route("/<campaign>/pledges/import", methods=["POST"])
@pledging
@blp.arguments(ImportQuery(), location="query")
@blp.doc(requestBody=SHEET_BODY)
@blp.response(200, ImportReportOut, description="Each row's outcome and the counts; a dry run writes nothing")
@operation(
    blp,
    "importPledges",
    "intake_body",
    errors={
        400: "The sheet cannot be read: a wrong header, not UTF-8, not CSV or JSON",
        401: "No key, or a wrong or revoked one",
        403: "The key is not an intake or admin key",
        404: "No such campaign",
        409: "The campaign is not open",
        413: f"Over IMPORT_MAX_BYTES (2 MiB by default) or over {MAX_ROWS:,} rows",
        415: "Neither text/csv nor JSON",
        422: "The query string is not valid",
    },
)
def import_pledges(query: dict[str, Any], campaign: str) -> ImportReport:
    """A paper sign-up sheet: many pledges at once, each checked as a single pledge, in one transaction.

    Needs an intake or admin key; the pledges are attributed to it. Sending the same sheet again
    creates nothing new: every row is then a duplicate.
    """
    key = current_key()
    if key is None:
        raise Unauthorized("This route needs an intake or admin key: send Authorization: Bearer <key>.")
    if key.scope not in INTAKE_SCOPES:
        raise Forbidden("This route needs a key with the intake or admin scope.")
    sheet = request.get_data(cache=True)
    return import_sheet(campaign, sheet, request.mimetype, key, dry_run=query["dry_run"])


@blp.route("/<campaign>/totals")
@api_read
# Documented with blp.doc only: the view builds its own Response, read thousands of times a second.
@operation(
    blp,
    "getTotals",
    "public",
    errors={404: "No such campaign"},
    not_modified=True,
    responses={
        200: {
            "description": "The campaign's counts, in total and per neighborhood",
            "headers": CACHE_HEADERS,
            "content": {"application/json": {"schema": TotalsOut}},
        }
    },
)
def get_totals(campaign: str) -> Response:
    """The campaign's counts, in total and per neighborhood.

    For live updates, the stream (GET /stream) sends the same body after every change.
    """
    body, etag = snapshot((COUNTS, "totals", campaign), lambda: _rendered_totals(campaign))
    return tagged(body, etag, "application/json")


def _rendered_totals(ref: str) -> tuple[bytes, str]:
    """The body and its ETag header value, computed once per snapshot, not per request."""
    body = render_totals(find_campaign(ref)).encode()
    return body, quote_etag(generate_etag(body))


@blp.route("/<campaign>/totals.csv")
@api_read
@cacheable
@blp.response(
    200,
    {"type": "string", "description": "A header row, then one row a neighborhood"},
    content_type="text/csv",
    description="The totals per neighborhood as CSV",
    headers=CACHE_HEADERS,
)
@operation(
    blp,
    "getTotalsCsv",
    "public",
    errors={404: "No such campaign"},
    not_modified=True,
)
def get_totals_csv(campaign: str) -> Response:
    """The totals per neighborhood, as CSV."""
    found = find_campaign(campaign)
    body = totals_csv(campaign_totals(found))
    response = Response(body, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'inline; filename="{found.slug}-totals.csv"'
    return response


@blp.route("/<campaign>/neighborhoods/<slug>")
@api_read
@cacheable
@blp.response(200, NeighborhoodTotalOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "getNeighborhoodTotal",
    "public",
    description="`slug` is one of GET /api/v1/neighborhoods.",
    errors={404: "No such campaign or neighborhood"},
    not_modified=True,
)
def get_neighborhood_total(campaign: str, slug: str) -> Any:
    """One neighborhood's counts in the campaign."""
    return neighborhood_total(find_campaign(campaign), slug)


@blp.route("/<campaign>/timeseries")
@api_read
@cacheable
@blp.arguments(TimeseriesQuery(), location="query")
@blp.response(200, TimeseriesOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "getTimeseries",
    "public",
    description="Oldest first: hours in UTC, days in the campaign's own time zone.",
    errors={404: "No such campaign", 422: "interval is not hour or day"},
    not_modified=True,
)
def get_timeseries(query: dict[str, Any], campaign: str) -> Any:
    """Pledges counted per hour or per day, with the running total."""
    return timeseries(find_campaign(campaign), query["interval"])


@blp.route("/<campaign>/businesses")
@api_read
@cacheable
@blp.arguments(BusinessesQuery(), location="query")
@blp.response(200, BusinessListOut, headers=CACHE_HEADERS)
@operation(
    blp,
    "listBusinesses",
    "public",
    description="Only names the mayor's office approved (BUSINESS_NAMES=review, the default).",
    errors={404: "No such campaign", 422: "limit is out of range, or the cursor is not one a next link gave"},
    not_modified=True,
)
def list_businesses(query: dict[str, Any], campaign: str) -> dict[str, Any]:
    """Businesses that chose to be shown, newest first; follow `next` for more."""
    found = find_campaign(campaign)
    after = decode_cursor(query["cursor"]) if query["cursor"] else None
    page = shown_businesses(found, limit=query["limit"] + 1, after=after)
    more, page = len(page) > query["limit"], page[: query["limit"]]
    next_url = (
        absolute_url(
            ".list_businesses",
            campaign=campaign,
            limit=query["limit"],
            cursor=encode_cursor(page[-1].created_at, page[-1].pledge_id),
        )
        if more
        else None
    )
    return {"businesses": page, "next": next_url}


STREAM_BODY = {
    "type": "string",
    "description": "`retry: 2000` first, then an event `totals` at once and after every change: its `id` "
    "the totals' version (send it back as Last-Event-ID on reconnect), its `data` one line of JSON shaped "
    "as TotalsOut (GET /totals). A comment line `: heartbeat` when quiet (every STREAM_HEARTBEAT_SECONDS, "
    "15 s by default).",
    "example": "retry: 2000\nid: 42.1785801600000000.0\nevent: totals\n"
    'data: {"campaign":"nno-2027","total":42}\n\n: heartbeat\n\n',
}


def render_totals(campaign: Campaign | int) -> str:
    """The totals of a campaign as the totals route sends them: what every stream event carries."""
    if isinstance(campaign, int):
        campaign = db.session.get_one(Campaign, campaign)
    return TotalsOut().dumps(campaign_totals(campaign), separators=(",", ":"), ensure_ascii=False)


@blp.route("/<campaign>/stream")
@blp.response(
    200,
    STREAM_BODY,
    content_type="text/event-stream",
    description="An endless stream of Server-Sent Events: it never ends on its own. Read it with an "
    "EventSource, or with no total timeout (a read timeout over 15 s, the heartbeat); reconnect after "
    "the `retry` delay if it drops.",
    headers={"Cache-Control": {"description": "no-cache", "schema": {"type": "string"}}},
)
@operation(
    blp,
    "streamTotals",
    "stream",
    errors={
        404: "No such campaign",
        429: "STREAMS_PER_ADDRESS streams are open from this address; see Retry-After",
        503: "STREAMS_PER_PROCESS streams are open in this process; see Retry-After",
    },
    parameters=[
        {
            "in": "header",
            "name": "Last-Event-ID",
            "required": False,
            "schema": {"type": "string", "maxLength": 200},
            "description": "The id of the last event received: if the totals have not changed since, the "
            "first event waits for a change.",
        }
    ],
)
@exempt
def stream_totals(campaign: str) -> Response:
    """Server-Sent Events: `totals` at once and after every change; a heartbeat comment when quiet.

    Streams are capped per address and per process, so they never take the connections that
    pledges and pages need; a refused dashboard polls the totals instead.
    """
    found = find_campaign(campaign)
    broadcaster = live.broadcaster(current_app)
    seat = broadcaster.seats.take(get_remote_address())  # refused before any database work
    try:
        # The version is read before the totals: a pledge in between is sent twice, never lost.
        version = live.totals_version(found.id)
        # A reconnect that already holds this version is sent nothing until the totals change.
        seen = request.headers.get("Last-Event-ID") == live.version_id(version)
        first = None if seen else (render_totals(found.id), version)
    except BaseException:
        broadcaster.seats.release(seat)
        raise
    subscription = broadcaster.subscribe(found.id, version, seat)
    db.session.remove()  # an open stream holds no database connection
    body = live.stream_events(
        broadcaster,
        subscription,
        first,
        heartbeat=current_app.config["STREAM_HEARTBEAT_SECONDS"],
        connection=request.environ.get("gunicorn.socket"),
    )
    response = Response(stream_with_context(body), mimetype="text/event-stream")
    # Also when the body is closed before it was read: the seat is given back either way.
    response.call_on_close(lambda: broadcaster.unsubscribe(subscription))
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response
