"""Marshmallow schemas: the one way data enters and leaves the API as JSON."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Any

import regex
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l
from marshmallow import Schema, ValidationError, fields, post_dump, validate, validates, validates_schema

from .models import KINDS, PENDING_REASONS, STATUSES

NAME_MAX = 120  # code points: what the column holds
NAME_VISIBLE_MAX = 60  # grapheme clusters: what a reader sees as characters, on a page or a projector
NAME_MARKS_MAX = 2  # combining marks on one letter: enough for any Latin or Thai name, not for "Zalgo"
EMAIL_MAX = 254
# Bidirectional controls (Unicode's Bidi_Control) can make a shown name read differently from what was typed.
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Variation selectors (emoji vs text style) are marks that stack nothing visible.
_VARIATION_SELECTORS = re.compile("[\ufe00-\ufe0f\U000e0100-\U000e01ef]")
# A web address in a shown name would put a link on the projector: a scheme, "www.", a host with a path,
# or a host under a common top-level domain. "St. Mary's" and "A.J. Hardware" have no such shape.
_WEB_ADDRESS = re.compile(
    r"[a-z][a-z0-9+.-]*://|\bwww\.|(?<![\w.])[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}/"
    r"|(?<![\w.])[\w-]{2,}(?:\.[\w-]+)*\.(?:com|net|org|info|biz|io|co|us|me|ly|xyz|app|shop|site|online"
    r"|store|link|club|top|gg|tv)\b",
    re.IGNORECASE,
)


class UTCTimestamp(fields.DateTime):
    """ISO 8601 in UTC with a Z, as the contract asks."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        if value is None:
            return None
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EmailAddress(fields.String):
    """An email checked for form (no DNS), then trimmed and lower-cased."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError(_l("Enter your email address."))
        if len(text) > EMAIL_MAX:
            raise ValidationError(_l("An email address has at most %(max)d characters.", max=EMAIL_MAX))
        try:
            checked = validate_email(text, check_deliverability=False)
        except EmailNotValidError as error:
            raise ValidationError(_l("Enter an email address like name@example.org.")) from error
        return checked.normalized.lower()


class DisplayName(fields.String):
    """A person's or business's name, as it may be shown on the projector: trimmed and NFC, at most 60
    visible characters (grapheme clusters), no control characters, no stacks of accents, no web address.
    """

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str | None:
        text = unicodedata.normalize("NFC", super()._deserialize(value, attr, data, **kwargs)).strip()
        if any(unicodedata.category(ch) == "Cc" for ch in text) or _BIDI_CONTROLS.search(text):
            raise ValidationError(_l("A name cannot contain control characters such as line breaks."))
        if _stacked_marks(text) > NAME_MARKS_MAX:
            raise ValidationError(_l("A name has at most %(max)d accents on one letter.", max=NAME_MARKS_MAX))
        # Full-width letters and dots read as a web address too: ｗｗｗ．
        if _WEB_ADDRESS.search(unicodedata.normalize("NFKC", text)):
            raise ValidationError(_l("A name cannot contain a web address."))
        if len(regex.findall(r"\X", text)) > NAME_VISIBLE_MAX:
            raise ValidationError(_l("A name has at most %(max)d characters.", max=NAME_VISIBLE_MAX))
        if len(text) > NAME_MAX:
            raise ValidationError(_l("This name is too long to store: use fewer accents or symbols."))
        return text or None


def _stacked_marks(text: str) -> int:
    """The longest run of combining marks on one base character (after NFC, which folds most accents in)."""
    longest = run = 0
    for ch in _VARIATION_SELECTORS.sub("", text):
        run = run + 1 if unicodedata.category(ch) in ("Mn", "Me") else 0
        longest = max(longest, run)
    return longest


class StrictBoolean(fields.Boolean):
    """JSON true or false only: reading consent into "no", 1 or "on" would be a guess."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


def _messages(required: Any, invalid: Any) -> dict[str, Any]:
    return {"required": required, "null": required, "invalid": invalid}


CHOOSE_KIND = _l("Choose whether you pledge as a resident or a business.")
CHOOSE_NEIGHBORHOOD = _l("Choose your neighborhood from the list.")


class PledgeIn(Schema):
    """A pledge as the API and the web form both take it; every message is translated."""

    error_messages = {
        "unknown": _l("This field is not part of a pledge."),
        "type": _l("Send the pledge as a JSON object."),
    }

    kind = fields.String(
        required=True,
        validate=validate.OneOf(KINDS, error=CHOOSE_KIND),
        error_messages=_messages(CHOOSE_KIND, CHOOSE_KIND),
    )
    neighborhood = fields.String(
        required=True,
        validate=validate.Length(min=1, max=80, error=CHOOSE_NEIGHBORHOOD),
        error_messages=_messages(CHOOSE_NEIGHBORHOOD, CHOOSE_NEIGHBORHOOD),
    )
    email = EmailAddress(
        required=True,
        error_messages=_messages(_l("Enter your email address."), _l("Enter your email address as text.")),
    )
    name = DisplayName(
        load_default=None, allow_none=True, error_messages={"invalid": _l("Enter the name as text.")}
    )
    show_name = StrictBoolean(
        load_default=False,
        error_messages=_messages(_l("Answer with true or false."), _l("Answer with true or false.")),
    )

    @validates_schema(skip_on_field_errors=False)
    def business_needs_a_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") == "business" and not data.get("name"):
            raise ValidationError(_l("Enter the business's name: businesses are listed by name."), "name")


PUBLIC_STATUSES = ("counted", "pending")


class PledgeOut(Schema):
    """A new pledge: "counted" means in the totals now; "pending" says why it waits."""

    id = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    neighborhood = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(PUBLIC_STATUSES))
    pending_reason = fields.String(
        validate=validate.OneOf(PENDING_REASONS),
        metadata={
            "description": "Only when pending: confirm_email (counted once the emailed link is "
            "confirmed) or review (counted once the mayor's office releases it)."
        },
    )
    created_at = UTCTimestamp(required=True)

    @post_dump
    def drop_missing_reason(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if data.get("pending_reason") is None:
            data.pop("pending_reason", None)
        return data


class DuplicatePledgeOut(Schema):
    """This email had already pledged in this campaign: the first pledge's id and status, nothing else."""

    id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(PUBLIC_STATUSES))
    duplicate = fields.Constant(True, required=True)


class CampaignOut(Schema):
    slug = fields.String()
    name = fields.String()
    city = fields.String()
    starts_at = UTCTimestamp()
    ends_at = UTCTimestamp()
    goal = fields.Integer(allow_none=True)
    status = fields.String()


class CampaignListOut(Schema):
    campaigns = fields.List(fields.Nested(CampaignOut))


class NeighborhoodOut(Schema):
    slug = fields.String()
    name = fields.String()


class NeighborhoodListOut(Schema):
    neighborhoods = fields.List(fields.Nested(NeighborhoodOut))


class NeighborhoodTotalOut(Schema):
    slug = fields.String()
    name = fields.String()
    residents = fields.Integer()
    businesses = fields.Integer()
    total = fields.Integer()


class TotalsOut(Schema):
    campaign = fields.String()
    total = fields.Integer()
    residents = fields.Integer()
    businesses = fields.Integer()
    goal = fields.Integer(allow_none=True)
    pending = fields.Integer(
        metadata={"description": "Pledges waiting for email confirmation or review: not in total."}
    )
    updated_at = UTCTimestamp(allow_none=True)
    neighborhoods = fields.List(fields.Nested(NeighborhoodTotalOut))


class TimeseriesQuery(Schema):
    interval = fields.String(load_default="hour", validate=validate.OneOf(["hour", "day"]))


class TimeseriesPointOut(Schema):
    start = UTCTimestamp()
    residents = fields.Integer()
    businesses = fields.Integer()
    total = fields.Integer()
    cumulative = fields.Integer()


class TimeseriesOut(Schema):
    interval = fields.String()
    points = fields.List(fields.Nested(TimeseriesPointOut))


class BusinessesQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class BusinessOut(Schema):
    name = fields.String()
    neighborhood = fields.String(metadata={"description": "The neighborhood's slug"})


class BusinessListOut(Schema):
    businesses = fields.List(fields.Nested(BusinessOut))
    next = fields.String(allow_none=True, metadata={"description": "URL of the next page, or null"})


class AdminPledgeQuery(Schema):
    campaign = fields.String(load_default=None)
    neighborhood = fields.String(load_default=None)
    kind = fields.String(load_default=None, validate=validate.OneOf(KINDS))
    status = fields.String(load_default=None, validate=validate.OneOf(STATUSES))
    pending_reason = fields.String(load_default=None, validate=validate.OneOf(PENDING_REASONS))
    intake_key = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    q = fields.String(load_default=None, validate=validate.Length(min=1, max=320))
    since = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    until = fields.AwareDateTime(load_default=None, default_timezone=UTC)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class AdminPledgeOut(Schema):
    """A pledge with its personal data: admin routes only."""

    id = fields.String(attribute="public_id")
    campaign = fields.String()
    neighborhood = fields.String()
    kind = fields.String()
    email = fields.String()
    name = fields.String(allow_none=True)
    show_name = fields.Boolean()
    status = fields.String(validate=validate.OneOf(STATUSES))
    pending_reason = fields.String(allow_none=True, validate=validate.OneOf(PENDING_REASONS))
    intake_key = fields.String(allow_none=True, metadata={"description": "The intake key that took it"})
    synthetic = fields.Boolean()
    address_hash = fields.String(allow_none=True)
    created_at = UTCTimestamp()
    confirmation_sent_at = UTCTimestamp(allow_none=True)
    confirmation_failures = fields.Integer()
    confirmed_at = UTCTimestamp(allow_none=True)


class AdminPledgeListOut(Schema):
    pledges = fields.List(fields.Nested(AdminPledgeOut))
    next = fields.String(allow_none=True)


class ReasonIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class BulkRemoveIn(Schema):
    """Exactly one of address_hash, intake_key (its name) and email_domain picks the pledges."""

    campaign = fields.String(load_default="current")
    address_hash = fields.String(load_default=None, validate=validate.Length(equal=64))
    intake_key = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    email_domain = fields.String(load_default=None, validate=validate.Length(min=1, max=253))
    since = fields.AwareDateTime(required=True, default_timezone=UTC)
    until = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    dry_run = StrictBoolean(load_default=True)
    pending_review_only = StrictBoolean(
        load_default=False, metadata={"description": "Remove only the pledges waiting for review."}
    )


class BulkRemoveOut(Schema):
    campaign = fields.String()
    matched = fields.Integer()
    removed = fields.Integer()
    dry_run = fields.Boolean()


class BulkReleaseIn(Schema):
    """Every pledge waiting for review from one address hash or one intake key, in [since, until)."""

    campaign = fields.String(load_default="current")
    address_hash = fields.String(load_default=None, validate=validate.Length(equal=64))
    intake_key = fields.String(load_default=None, validate=validate.Length(min=1, max=80))
    since = fields.AwareDateTime(required=True, default_timezone=UTC)
    until = fields.AwareDateTime(required=True, default_timezone=UTC)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    dry_run = StrictBoolean(load_default=True)
    waiting_for = fields.String(
        load_default="review",
        validate=validate.OneOf(PENDING_REASONS),
        metadata={
            "description": "review (the default), or confirm_email: the mayor's office vouches for "
            "pledges whose emailed link was never used, such as a block club's paper sheet."
        },
    )


class BulkReleaseOut(Schema):
    campaign = fields.String()
    matched = fields.Integer()
    released = fields.Integer()
    dry_run = fields.Boolean()


class QueueQuery(Schema):
    campaign = fields.String(load_default="current")


class QueueSourceOut(Schema):
    address_hash = fields.String(allow_none=True)
    intake_key = fields.String(allow_none=True)
    shared_place = fields.Boolean(metadata={"description": "Marked as a known shared place"})
    pledges = fields.Integer()
    first_at = UTCTimestamp()
    last_at = UTCTimestamp()


class QueueOut(Schema):
    """What waits: pending pledges by reason, and those waiting for review by where they came from."""

    campaign = fields.String()
    waiting = fields.Dict(
        keys=fields.String(validate=validate.OneOf(PENDING_REASONS)),
        values=fields.Integer(),
        metadata={"description": "Pending pledges by reason: confirm_email and review"},
    )
    review_sources = fields.List(fields.Nested(QueueSourceOut))


class SharedPlaceIn(Schema):
    campaign = fields.String(load_default="current")
    address_hash = fields.String(required=True, validate=validate.Length(equal=64))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SharedPlaceOut(Schema):
    campaign = fields.String()
    address_hash = fields.String()
    created_at = UTCTimestamp()
    actor = fields.String()


# A goal is a number of porch lights: at least one, and no more than the column holds.
GOAL_RANGE = validate.Range(min=1, max=2_147_483_647)


class CampaignIn(Schema):
    slug = fields.String(required=True, validate=validate.Length(min=2, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(required=True, validate=validate.Length(min=1, max=120))
    timezone = fields.String(required=True, validate=validate.Length(min=1, max=64))
    starts_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    ends_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    goal = fields.Integer(load_default=None, allow_none=True, strict=True, validate=GOAL_RANGE)


class CampaignChangeIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    city = fields.String(validate=validate.Length(min=1, max=120))
    timezone = fields.String(validate=validate.Length(min=1, max=64))
    starts_at = fields.AwareDateTime(default_timezone=UTC)
    ends_at = fields.AwareDateTime(default_timezone=UTC)
    goal = fields.Integer(allow_none=True, strict=True, validate=GOAL_RANGE)
    close = StrictBoolean()
    reopen = StrictBoolean()
    reason = fields.String(validate=validate.Length(max=500))


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class AuditEntryOut(Schema):
    created_at = UTCTimestamp()
    actor = fields.String()
    action = fields.String()
    target = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)
    details = fields.Dict(allow_none=True)


class AuditListOut(Schema):
    entries = fields.List(fields.Nested(AuditEntryOut))
    next = fields.String(allow_none=True)


class AbuseQuery(Schema):
    campaign = fields.String(load_default="current")
    hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=24 * 14))


class AbuseAddressOut(Schema):
    address_hash = fields.String()
    pledges = fields.Integer()
    flagged = fields.Boolean()


class AbuseDomainOut(Schema):
    email_domain = fields.String()
    pledges = fields.Integer()
    flagged = fields.Boolean()


class AbuseHourOut(Schema):
    start = UTCTimestamp()
    addresses = fields.List(fields.Nested(AbuseAddressOut))
    domains = fields.List(fields.Nested(AbuseDomainOut))


class AbuseReportOut(Schema):
    campaign = fields.String()
    address_threshold = fields.Integer()
    domain_threshold = fields.Integer()
    hours = fields.List(fields.Nested(AbuseHourOut))


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={"example": "validation_error"})
    message = fields.String(required=True)
    fields = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Only where a field is at fault: its messages, by field name."},
    )


class ErrorOut(Schema):
    """Every API error: {"error": {"code", "message", "fields"?}}."""

    error = fields.Nested(ErrorBody, required=True)


class ImportQuery(Schema):
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "true: answer the report, write nothing"}
    )


class ImportRowOut(Schema):
    """One row of a sheet, numbered as a spreadsheet shows it (CSV: the header is line 1; JSON: index + 1)."""

    line = fields.Integer(required=True)
    outcome = fields.String(required=True, validate=validate.OneOf(["created", "duplicate", "invalid"]))
    id = fields.String(
        metadata={
            "description": "created: the new pledge's id; duplicate: the id of the pledge that has this "
            "email. Absent in a dry run for pledges not written yet."
        }
    )
    fields = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Only when invalid: the messages, by field (_schema: the whole row)."},
    )

    @post_dump
    def drop_missing(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return {name: value for name, value in data.items() if value is not None}


class ImportCountsOut(Schema):
    created = fields.Integer(required=True)
    duplicate = fields.Integer(required=True)
    invalid = fields.Integer(required=True)


class ImportReportOut(Schema):
    """What a sheet's import did (or, in a dry run, would do), row by row."""

    campaign = fields.String(required=True)
    dry_run = fields.Boolean(required=True)
    counts = fields.Nested(ImportCountsOut, required=True)
    rows = fields.List(fields.Nested(ImportRowOut), required=True)


NAME_STATUSES = ("pending", "approved", "rejected")
NAME_IDS_MAX = 300  # 300 ids of 24 characters fit the 16 KiB body limit


class NamesQuery(Schema):
    status = fields.String(load_default="pending", validate=validate.OneOf(NAME_STATUSES))
    campaign = fields.String(
        load_default=None, metadata={"description": "A campaign slug or current; all campaigns when absent"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, validate=validate.Length(max=200))


class NameOut(Schema):
    """A business name asked to be shown, and the mayor's office's decision on it."""

    id = fields.String(required=True, metadata={"description": "The pledge's id"})
    name = fields.String(required=True)
    campaign = fields.String(required=True)
    neighborhood = fields.String(required=True, metadata={"description": "The neighborhood's slug"})
    created_at = UTCTimestamp(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(NAME_STATUSES),
        metadata={"description": "The name's: shown on public pages only once approved"},
    )
    pledge_status = fields.String(
        required=True,
        validate=validate.OneOf(STATUSES),
        metadata={"description": "The pledge's, which no decision on its name changes"},
    )


class NameListOut(Schema):
    names = fields.List(fields.Nested(NameOut), required=True)
    next = fields.String(allow_none=True, metadata={"description": "URL of the next page, or null"})


class NameDecisionIn(Schema):
    ids = fields.List(
        fields.String(validate=validate.Length(min=1, max=24)),
        required=True,
        metadata={
            "description": f"1 to {NAME_IDS_MAX} pledge ids; all are decided, or none when one is "
            "unknown (422). (No maxItems: a longer list can pass the 16 KiB body limit, a 413.)"
        },
    )
    reason = fields.String(load_default=None, validate=validate.Length(max=500))

    @validates("ids")
    def one_page_of_ids(self, ids: list[str], **kwargs: Any) -> None:
        if not 1 <= len(ids) <= NAME_IDS_MAX:
            raise ValidationError(_l("Choose from 1 to %(max)s names at once.", max=NAME_IDS_MAX))


class NameDecisionOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(NAME_STATUSES))
    changed = fields.Integer(required=True)
    unchanged = fields.Integer(required=True, metadata={"description": "Already had this status"})
    ids = fields.List(fields.String(), required=True, metadata={"description": "The ids that changed"})
