"""The mayor's office's API: pledges with their personal data, moderation, campaigns, audit.

Every route needs an admin-scope key; every change is written to the audit log. Business names asked to be
shown wait here for approval (BUSINESS_NAMES=review) before any public page shows them.
"""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from ..auth import check_scope, current_key
from ..ratelimits import api_read
from ..schemas import (
    AbuseQuery,
    AbuseReportOut,
    AdminPledgeListOut,
    AdminPledgeOut,
    AdminPledgeQuery,
    AuditListOut,
    AuditQuery,
    BulkReleaseIn,
    BulkReleaseOut,
    BulkRemoveIn,
    BulkRemoveOut,
    CampaignChangeIn,
    CampaignIn,
    CampaignOut,
    NameDecisionIn,
    NameDecisionOut,
    NameListOut,
    NamesQuery,
    QueueOut,
    QueueQuery,
    ReasonIn,
    SharedPlaceIn,
    SharedPlaceOut,
)
from ..services.abuse import abuse_report
from ..services.audit import audit_entries
from ..services.campaigns import create_campaign, find_campaign, update_campaign
from ..services.cursors import decode_cursor, encode_cursor
from ..services.moderation import (
    BulkCriteria,
    PledgeFilter,
    bulk_release,
    bulk_remove,
    mark_shared_place,
    remove_pledge,
    restore_pledge,
    review_queue,
    search_pledges,
)
from ..services.names import decide_names, names_for_review
from ..urls import absolute_url
from . import operation

blp = Blueprint(
    "admin",
    __name__,
    url_prefix="/api/v1/admin",
    description="For the mayor's office: needs a key with the admin scope.",
)
ADMIN_ERRORS = {401: "No key, or a wrong or revoked one", 403: "The key lacks the admin scope"}


@blp.before_request
def admins_only() -> None:
    check_scope("admin")


def actor() -> str:
    key = current_key()
    return key.name if key is not None else "unknown"


def _page(rows: list[Any], limit: int, endpoint: str, position: Any, **args: Any) -> str | None:
    if len(rows) <= limit:
        return None
    return absolute_url(endpoint, **args, limit=limit, cursor=encode_cursor(*position(rows[limit - 1])))


def _admin_pledge(pledge: Any, campaign: str, neighborhood: str, intake_key: str | None) -> dict[str, Any]:
    return {
        "public_id": pledge.public_id,
        "campaign": campaign,
        "neighborhood": neighborhood,
        "kind": pledge.kind,
        "email": pledge.email,
        "name": pledge.name,
        "show_name": pledge.show_name,
        "status": pledge.status,
        "pending_reason": pledge.pending_reason,
        "intake_key": intake_key,
        "synthetic": pledge.synthetic,
        "address_hash": pledge.address_hash,
        "created_at": pledge.created_at,
        "confirmation_sent_at": pledge.confirmation_sent_at,
        "confirmation_failures": pledge.confirmation_failures,
        "confirmed_at": pledge.confirmed_at,
    }


@blp.route("/pledges")
@api_read
@blp.arguments(AdminPledgeQuery(), location="query")
@blp.response(200, AdminPledgeListOut)
@operation(
    blp,
    "listPledges",
    "admin",
    description="Filters combine; `q` searches email and name. Paged: follow `next`.",
    errors={**ADMIN_ERRORS},
)
def list_pledges(query: dict[str, Any]) -> dict[str, Any]:
    """Search pledges, newest first, with their personal data."""
    limit, cursor = query.pop("limit"), query.pop("cursor")
    rows = search_pledges(PledgeFilter(**query), limit + 1, decode_cursor(cursor) if cursor else None)
    args = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in query.items() if v is not None}
    next_url = _page(rows, limit, ".list_pledges", lambda row: (row[0].created_at, row[0].id), **args)
    return {"pledges": [_admin_pledge(*row) for row in rows[:limit]], "next": next_url}


@blp.route("/pledges/<pledge_id>/remove", methods=["POST"])
@blp.arguments(ReasonIn())
@blp.response(200, AdminPledgeOut)
@operation(
    blp,
    "removePledge",
    "admin_body",
    description="Removing a removed pledge changes nothing.",
    errors={**ADMIN_ERRORS, 404: "No such pledge"},
    responses={
        200: {
            "links": {
                "RestorePledge": {
                    "operationId": "restorePledge",
                    "parameters": {"pledge_id": "$response.body#/id"},
                }
            }
        }
    },
)
def remove(body: dict[str, Any], pledge_id: str) -> dict[str, Any]:
    """Take a pledge out of the count, with a reason; totals follow at once."""
    return _admin_pledge(*remove_pledge(pledge_id, body["reason"], actor()))


@blp.route("/pledges/<pledge_id>/restore", methods=["POST"])
@blp.arguments(ReasonIn())
@blp.response(200, AdminPledgeOut)
@operation(
    blp,
    "restorePledge",
    "admin_body",
    description="Restoring a counted pledge changes nothing.",
    errors={**ADMIN_ERRORS, 404: "No such pledge"},
)
def restore(body: dict[str, Any], pledge_id: str) -> dict[str, Any]:
    """Count a removed (or held) pledge again, with a reason; totals follow at once."""
    return _admin_pledge(*restore_pledge(pledge_id, body["reason"], actor()))


@blp.route("/pledges/bulk-remove", methods=["POST"])
@blp.arguments(BulkRemoveIn())
@blp.response(200, BulkRemoveOut)
@operation(
    blp,
    "bulkRemovePledges",
    "admin_body",
    errors={
        **ADMIN_ERRORS,
        404: "No such campaign",
        422: "Not exactly one of address_hash, intake_key and email_domain, or a field is not valid",
    },
)
def bulk(body: dict[str, Any]) -> dict[str, Any]:
    """Remove every pledge from one address hash, intake key or email domain in a time window.

    `pending_review_only` removes only those waiting for review. `dry_run` (the default) only counts.
    """
    reason, dry_run = body.pop("reason"), body.pop("dry_run")
    only_review = body.pop("pending_review_only")
    return bulk_remove(
        BulkCriteria(**body, pending_reason="review" if only_review else None), reason, actor(), dry_run
    )


@blp.route("/pledges/bulk-release", methods=["POST"])
@blp.arguments(BulkReleaseIn())
@blp.response(200, BulkReleaseOut)
@operation(
    blp,
    "bulkReleasePledges",
    "admin_body",
    errors={
        **ADMIN_ERRORS,
        404: "No such campaign",
        422: "Not exactly one of address_hash and intake_key, or a field is not valid",
    },
)
def release(body: dict[str, Any]) -> dict[str, Any]:
    """Count every pledge waiting from one address hash or intake key in a time window.

    Those waiting for review, or with `waiting_for: confirm_email`, for their emailed link.

    `dry_run` (the default) only counts them; totals follow at once otherwise.
    """
    reason, dry_run, waiting_for = body.pop("reason"), body.pop("dry_run"), body.pop("waiting_for")
    return bulk_release(BulkCriteria(**body, pending_reason=waiting_for), reason, actor(), dry_run)


@blp.route("/queue")
@api_read
@blp.arguments(QueueQuery(), location="query")
@blp.response(200, QueueOut)
@operation(
    blp,
    "getReviewQueue",
    "admin",
    errors={**ADMIN_ERRORS, 404: "No such campaign"},
)
def queue(query: dict[str, Any]) -> dict[str, Any]:
    """How many pledges wait, by reason, and those waiting for review by address hash or intake key."""
    return review_queue(find_campaign(query["campaign"]))


@blp.route("/shared-places", methods=["POST"])
@blp.arguments(SharedPlaceIn())
@blp.response(201, SharedPlaceOut)
@operation(
    blp,
    "markSharedPlace",
    "admin_body",
    errors={**ADMIN_ERRORS, 404: "No such campaign"},
)
def shared_place(body: dict[str, Any]) -> dict[str, Any]:
    """Mark an address hash (from the abuse report) as a known shared place: no burst check there."""
    place = mark_shared_place(body["campaign"], body["address_hash"], body["reason"], actor())
    return {
        "campaign": find_campaign(body["campaign"]).slug,
        "address_hash": place.address_hash,
        "created_at": place.created_at,
        "actor": place.actor,
    }


@blp.route("/campaigns", methods=["POST"])
@blp.arguments(CampaignIn())
@blp.response(201, CampaignOut)
@operation(
    blp,
    "createCampaign",
    "admin_body",
    description=(
        "`timezone` is an IANA name; `starts_at` is before `ends_at`; `goal`, when given, at least 1."
    ),
    errors={**ADMIN_ERRORS, 422: "A field is not valid, or a campaign with this slug exists already"},
)
def new_campaign(body: dict[str, Any]) -> Any:
    """Create a campaign."""
    return create_campaign(body, actor())


@blp.route("/campaigns/<slug>", methods=["PATCH"])
@blp.arguments(CampaignChangeIn())
@blp.response(200, CampaignOut)
@operation(
    blp,
    "updateCampaign",
    "admin_body",
    description="Only the fields sent change.",
    errors={**ADMIN_ERRORS, 404: "No such campaign"},
)
def edit_campaign(body: dict[str, Any], slug: str) -> Any:
    """Edit a campaign: dates, goal, name; `close: true` closes it early, `reopen: true` reopens it."""
    reason = body.pop("reason", None)
    return update_campaign(slug, body, actor(), reason)


@blp.route("/audit")
@api_read
@blp.arguments(AuditQuery(), location="query")
@blp.response(200, AuditListOut)
@operation(
    blp,
    "listAuditEntries",
    "admin",
    description="Paged: follow `next`.",
    errors={**ADMIN_ERRORS},
)
def audit(query: dict[str, Any]) -> dict[str, Any]:
    """Every admin action, newest first."""
    limit, cursor = query["limit"], query["cursor"]
    rows = audit_entries(limit + 1, decode_cursor(cursor) if cursor else None)
    return {"entries": rows[:limit], "next": _page(rows, limit, ".audit", lambda e: (e.created_at, e.id))}


@blp.route("/abuse")
@api_read
@blp.arguments(AbuseQuery(), location="query")
@blp.response(200, AbuseReportOut)
@operation(
    blp,
    "getAbuseReport",
    "admin",
    description="`hours` back from now, at most 14 days.",
    errors={**ADMIN_ERRORS, 404: "No such campaign"},
)
def abuse(query: dict[str, Any]) -> dict[str, Any]:
    """Per hour, the address hashes and email domains with the most pledges; flagged above thresholds."""
    campaign = find_campaign(query["campaign"])
    return {
        "campaign": campaign.slug,
        "address_threshold": current_app.config["ABUSE_ADDRESS_THRESHOLD"],
        "domain_threshold": current_app.config["ABUSE_DOMAIN_THRESHOLD"],
        "hours": abuse_report(campaign, query["hours"]),
    }


@blp.route("/names")
@api_read
@blp.arguments(NamesQuery(), location="query")
@blp.response(200, NameListOut)
@operation(
    blp,
    "listNames",
    "admin",
    description="Paged: follow `next`.",
    errors={**ADMIN_ERRORS, 404: "No such campaign"},
)
def list_names(query: dict[str, Any]) -> dict[str, Any]:
    """Business names asked to be shown, by the name's status (`pending` by default), newest first."""
    limit, cursor = query.pop("limit"), query.pop("cursor")
    after = decode_cursor(cursor) if cursor else None
    rows = names_for_review(query["status"], query["campaign"], limit + 1, after)
    args = {name: value for name, value in query.items() if value is not None}
    next_url = _page(rows, limit, ".list_names", lambda row: (row.created_at, row.row_id), **args)
    return {"names": rows[:limit], "next": next_url}


@blp.route("/names/approve", methods=["POST"])
@blp.arguments(NameDecisionIn())
@blp.response(200, NameDecisionOut)
@operation(
    blp,
    "approveNames",
    "admin_body",
    errors={**ADMIN_ERRORS, 422: "An id is not a business name asked to be shown: nothing changed"},
)
def approve_names(body: dict[str, Any]) -> dict[str, Any]:
    """Show these business names on public pages (all or none: an unknown id is 422)."""
    return decide_names(body["ids"], "approve", body["reason"], actor())


@blp.route("/names/reject", methods=["POST"])
@blp.arguments(NameDecisionIn())
@blp.response(200, NameDecisionOut)
@operation(
    blp,
    "rejectNames",
    "admin_body",
    errors={**ADMIN_ERRORS, 422: "An id is not a business name asked to be shown: nothing changed"},
)
def reject_names(body: dict[str, Any]) -> dict[str, Any]:
    """Never show these business names; their pledges still count (all or none: an unknown id is 422)."""
    return decide_names(body["ids"], "reject", body["reason"], actor())
