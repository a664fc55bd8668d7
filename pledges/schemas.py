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

from .emails import canonical_email
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


# What admin routes take to name things: as the app writes them, so nothing else (NUL, say) reaches SQL.
ADDRESS_HASH = validate.Regexp(r"^[0-9a-f]{64}$", error="An address hash is 64 lowercase hex digits.")
PUBLIC_ID = validate.Regexp(r"^[A-Za-z0-9_-]{1,24}$", error="A pledge id is 1 to 24 letters, digits, - or _.")
KEY_NAME = validate.Regexp(
    r"^[^\x00-\x1f\x7f]{1,80}$", error="A key name is 1 to 80 characters, none of them control characters."
)


class UTCTimestamp(fields.DateTime):
    """RFC 3339 in UTC with a Z, a four-digit year and whole seconds, as the contract asks."""

    def _serialize(self, value: datetime | None, attr: Any, obj: Any, **kwargs: Any) -> str | None:
        return None if value is None else self.text(value)

    @staticmethod
    def text(value: datetime) -> str:
        """Also what pages put in `<time datetime>`; strftime's %Y would drop the zeros of a year < 1000."""
        return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


FIRST_YEAR, LAST_YEAR = 2000, 2200


class DateTimeIn(fields.AwareDateTime):
    """A moment given to the API: RFC 3339, UTC when it names no offset, between 2000 and 2200 (in UTC)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            year = moment.astimezone(UTC).year
        except OverflowError:  # 9999-12-31T23:00-05:00 is past the last year datetime can hold
            year = LAST_YEAR + 1
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValidationError(
                _l("Give a date between the years %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR)
            )
        return moment


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
        address = checked.normalized.lower()
        # NFKC can lengthen an address (one ligature becomes many letters): its canonical form must fit.
        if len(canonical_email(address)) > EMAIL_MAX:
            raise ValidationError(_l("An email address has at most %(max)d characters.", max=EMAIL_MAX))
        return address


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
    """A pledge. A business pledge needs a `name` (422 otherwise): businesses are listed by name.

    `neighborhood` is a slug from GET /api/v1/neighborhoods; any other is a 422.
    """

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
        # Not an enum: the city imports neighborhoods, and an older client must still name new ones.
        metadata={"description": "A neighborhood's slug, from GET /api/v1/neighborhoods (422 if unknown)"},
    )
    email = EmailAddress(
        required=True,
        error_messages=_messages(_l("Enter your email address."), _l("Enter your email address as text.")),
        # example.net, not example.org: the privacy tests look for their own pledges' addresses in answers.
        metadata={"format": "email", "example": "you@example.net"},
    )
    name = DisplayName(
        load_default=None,
        allow_none=True,
        error_messages={"invalid": _l("Enter the name as text.")},
        metadata={
            "description": "Required for a business. At most 60 visible characters; no control "
            "characters, no web address, at most 2 accents on one letter.",
            "example": "Rosa's Bakery",
        },
    )
    show_name = StrictBoolean(
        load_default=False,
        error_messages=_messages(_l("Answer with true or false."), _l("Answer with true or false.")),
    )

    @validates_schema(skip_on_field_errors=False)
    def business_needs_a_name(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("kind") == "business" and not data.get("name"):
            raise ValidationError(_l("Enter the business's name: businesses are listed by name."), "name")


def absent() -> None:
    """A query parameter's load_default when leaving it out means "no filter": a callable, so the
    document shows no `default: null` (a query string is never null) and clients type it as a plain string.
    """
    return None


PUBLIC_STATUSES = ("counted", "pending")
CAMPAIGN_STATUSES = ("upcoming", "open", "closed")  # models.Campaign.status_at
INTERVALS = ("hour", "day")
# Documented on every cursor parameter: what decode_cursor (services/cursors.py) takes.
CURSOR = {
    "description": "Opaque: the `cursor` of a `next` URL, as given (unpadded URL-safe base64). Absent: "
    "the first page. Any other value is a 422.",
    "pattern": "^[A-Za-z0-9_-]*$",
}


class PledgeOut(Schema):
    """A new pledge: "counted" means in the totals now; "pending" says why it waits."""

    id = fields.String(required=True, metadata={"example": "Xq3vK9bN4rT1mAzW"})
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
    duplicate = fields.Boolean(required=True, metadata={"enum": [True]})


class CampaignOut(Schema):
    slug = fields.String(required=True, metadata={"example": "nno-2027"})
    name = fields.String(required=True, metadata={"example": "National Night Out 2027"})
    city = fields.String(required=True, metadata={"example": "Springfield"})
    starts_at = UTCTimestamp(required=True, metadata={"example": "2027-07-01T04:00:00Z"})
    ends_at = UTCTimestamp(required=True, metadata={"example": "2027-08-04T04:00:00Z"})
    goal = fields.Integer(allow_none=True, required=True, metadata={"example": 5000})
    status = fields.String(required=True, validate=validate.OneOf(CAMPAIGN_STATUSES))


class CampaignListOut(Schema):
    campaigns = fields.List(fields.Nested(CampaignOut), required=True)


class NeighborhoodOut(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)


class NeighborhoodListOut(Schema):
    neighborhoods = fields.List(fields.Nested(NeighborhoodOut), required=True)


class NeighborhoodTotalOut(Schema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    residents = fields.Integer(required=True)
    businesses = fields.Integer(required=True)
    total = fields.Integer(required=True)


class TotalsOut(Schema):
    campaign = fields.String(required=True, metadata={"example": "nno-2027"})
    total = fields.Integer(required=True, metadata={"example": 412})
    residents = fields.Integer(required=True, metadata={"example": 380})
    businesses = fields.Integer(required=True, metadata={"example": 32})
    goal = fields.Integer(allow_none=True, required=True)
    pending = fields.Integer(
        required=True,
        metadata={"description": "Pledges waiting for email confirmation or review: not in total."},
    )
    updated_at = UTCTimestamp(allow_none=True, required=True)
    neighborhoods = fields.List(fields.Nested(NeighborhoodTotalOut), required=True)


class TimeseriesQuery(Schema):
    interval = fields.String(load_default="hour", validate=validate.OneOf(INTERVALS))


class TimeseriesPointOut(Schema):
    start = UTCTimestamp(required=True)
    residents = fields.Integer(required=True)
    businesses = fields.Integer(required=True)
    total = fields.Integer(required=True)
    cumulative = fields.Integer(required=True)


class TimeseriesOut(Schema):
    interval = fields.String(required=True, validate=validate.OneOf(INTERVALS))
    points = fields.List(fields.Nested(TimeseriesPointOut), required=True)


class BusinessesQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(load_default=absent, validate=validate.Length(max=200), metadata=CURSOR)


class BusinessOut(Schema):
    name = fields.String(required=True)
    neighborhood = fields.String(metadata={"description": "The neighborhood's slug"}, required=True)


class BusinessListOut(Schema):
    businesses = fields.List(fields.Nested(BusinessOut), required=True)
    next = fields.String(
        allow_none=True, metadata={"description": "URL of the next page, or null"}, required=True
    )


class AdminPledgeQuery(Schema):
    campaign = fields.String(load_default=absent)
    neighborhood = fields.String(load_default=absent)
    kind = fields.String(load_default=absent, validate=validate.OneOf(KINDS))
    status = fields.String(load_default=absent, validate=validate.OneOf(STATUSES))
    pending_reason = fields.String(load_default=absent, validate=validate.OneOf(PENDING_REASONS))
    intake_key = fields.String(load_default=absent, validate=KEY_NAME)
    q = fields.String(load_default=absent, validate=validate.Length(min=1, max=320))
    since = DateTimeIn(load_default=absent)
    until = DateTimeIn(load_default=absent)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=absent, validate=validate.Length(max=200), metadata=CURSOR)


class AdminPledgeOut(Schema):
    """A pledge with its personal data: admin routes only."""

    id = fields.String(attribute="public_id", required=True)
    campaign = fields.String(required=True)
    neighborhood = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(KINDS))
    email = fields.String(required=True)
    name = fields.String(allow_none=True, required=True)
    show_name = fields.Boolean(required=True)
    status = fields.String(validate=validate.OneOf(STATUSES), required=True)
    pending_reason = fields.String(allow_none=True, validate=validate.OneOf(PENDING_REASONS), required=True)
    intake_key = fields.String(
        allow_none=True, metadata={"description": "The intake key that took it"}, required=True
    )
    synthetic = fields.Boolean(required=True)
    address_hash = fields.String(allow_none=True, required=True)
    created_at = UTCTimestamp(required=True)
    confirmation_sent_at = UTCTimestamp(allow_none=True, required=True)
    confirmation_failures = fields.Integer(required=True)
    confirmed_at = UTCTimestamp(allow_none=True, required=True)


class AdminPledgeListOut(Schema):
    pledges = fields.List(fields.Nested(AdminPledgeOut), required=True)
    next = fields.String(allow_none=True, required=True)


class ReasonIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class BulkRemoveIn(Schema):
    """Exactly one of address_hash, intake_key (its name) and email_domain picks the pledges; else a 422."""

    campaign = fields.String(load_default="current")
    address_hash = fields.String(load_default=None, validate=ADDRESS_HASH)
    intake_key = fields.String(load_default=None, validate=KEY_NAME)
    email_domain = fields.String(load_default=None, validate=validate.Length(min=1, max=253))
    since = DateTimeIn(required=True)
    until = DateTimeIn(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    dry_run = StrictBoolean(load_default=True)
    pending_review_only = StrictBoolean(
        load_default=False, metadata={"description": "Remove only the pledges waiting for review."}
    )


class BulkRemoveOut(Schema):
    campaign = fields.String(required=True)
    matched = fields.Integer(required=True)
    removed = fields.Integer(required=True)
    dry_run = fields.Boolean(required=True)


class BulkReleaseIn(Schema):
    """Every pledge waiting for review from exactly one of address_hash and intake_key, in [since, until)."""

    campaign = fields.String(load_default="current")
    address_hash = fields.String(load_default=None, validate=ADDRESS_HASH)
    intake_key = fields.String(load_default=None, validate=KEY_NAME)
    since = DateTimeIn(required=True)
    until = DateTimeIn(required=True)
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
    campaign = fields.String(required=True)
    matched = fields.Integer(required=True)
    released = fields.Integer(required=True)
    dry_run = fields.Boolean(required=True)


class QueueQuery(Schema):
    campaign = fields.String(load_default="current")


class QueueSourceOut(Schema):
    address_hash = fields.String(allow_none=True, required=True)
    intake_key = fields.String(allow_none=True, required=True)
    shared_place = fields.Boolean(metadata={"description": "Marked as a known shared place"}, required=True)
    pledges = fields.Integer(required=True)
    first_at = UTCTimestamp(required=True)
    last_at = UTCTimestamp(required=True)


class QueueOut(Schema):
    """What waits: pending pledges by reason, and those waiting for review by where they came from."""

    campaign = fields.String(required=True)
    waiting = fields.Dict(
        required=True,
        keys=fields.String(validate=validate.OneOf(PENDING_REASONS)),
        values=fields.Integer(),
        metadata={"description": "Pending pledges by reason: confirm_email and review"},
    )
    review_sources = fields.List(fields.Nested(QueueSourceOut), required=True)


class SharedPlaceIn(Schema):
    campaign = fields.String(load_default="current")
    address_hash = fields.String(required=True, validate=ADDRESS_HASH)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class SharedPlaceOut(Schema):
    campaign = fields.String(required=True)
    address_hash = fields.String(required=True)
    created_at = UTCTimestamp(required=True)
    actor = fields.String(required=True)


# A goal is a number of porch lights: at least one, and no more than the column holds.
GOAL_RANGE = validate.Range(min=1, max=2_147_483_647)


class CampaignIn(Schema):
    slug = fields.String(required=True, validate=validate.Length(min=2, max=64))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    city = fields.String(required=True, validate=validate.Length(min=1, max=120))
    timezone = fields.String(
        required=True,
        validate=validate.Length(min=1, max=64),
        metadata={
            "description": "An IANA time zone name, such as America/Chicago",
            "example": "America/Chicago",
        },
    )
    starts_at = DateTimeIn(required=True)
    ends_at = DateTimeIn(required=True)
    goal = fields.Integer(load_default=None, allow_none=True, strict=True, validate=GOAL_RANGE)


class CampaignChangeIn(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    city = fields.String(validate=validate.Length(min=1, max=120))
    timezone = fields.String(
        validate=validate.Length(min=1, max=64),
        metadata={"description": "An IANA time zone name, such as America/Chicago"},
    )
    starts_at = DateTimeIn()
    ends_at = DateTimeIn()
    goal = fields.Integer(allow_none=True, strict=True, validate=GOAL_RANGE)
    close = StrictBoolean()
    reopen = StrictBoolean()
    reason = fields.String(validate=validate.Length(max=500))


class AuditQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=absent, validate=validate.Length(max=200), metadata=CURSOR)


class AuditEntryOut(Schema):
    created_at = UTCTimestamp(required=True)
    actor = fields.String(required=True)
    action = fields.String(required=True)
    target = fields.String(allow_none=True, required=True)
    reason = fields.String(allow_none=True, required=True)
    details = fields.Dict(allow_none=True, required=True)


class AuditListOut(Schema):
    entries = fields.List(fields.Nested(AuditEntryOut), required=True)
    next = fields.String(allow_none=True, required=True)


class AbuseQuery(Schema):
    campaign = fields.String(load_default="current")
    hours = fields.Integer(load_default=24, validate=validate.Range(min=1, max=24 * 14))


class AbuseAddressOut(Schema):
    address_hash = fields.String(required=True)
    pledges = fields.Integer(required=True)
    flagged = fields.Boolean(required=True)


class AbuseDomainOut(Schema):
    email_domain = fields.String(required=True)
    pledges = fields.Integer(required=True)
    flagged = fields.Boolean(required=True)


class AbuseHourOut(Schema):
    start = UTCTimestamp(required=True)
    addresses = fields.List(fields.Nested(AbuseAddressOut), required=True)
    domains = fields.List(fields.Nested(AbuseDomainOut), required=True)


class AbuseReportOut(Schema):
    campaign = fields.String(required=True)
    address_threshold = fields.Integer(required=True)
    domain_threshold = fields.Integer(required=True)
    hours = fields.List(fields.Nested(AbuseHourOut), required=True)


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
        load_default=absent, metadata={"description": "A campaign slug or current; all campaigns when absent"}
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=absent, validate=validate.Length(max=200), metadata=CURSOR)


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
    next = fields.String(
        allow_none=True, metadata={"description": "URL of the next page, or null"}, required=True
    )


class NameDecisionIn(Schema):
    ids = fields.List(
        fields.String(validate=PUBLIC_ID),
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
