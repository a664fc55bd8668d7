"""Paper sign-up sheets: many pledges at once, each checked exactly as a single pledge is.

A sheet is CSV (a header row naming the pledge fields, then one pledge a row) or JSON
`{"pledges": [...]}`. Every row is validated by PledgeIn and the neighborhood check of
`prepare_pledge`, deduplicated within the sheet and against the campaign, and the valid ones
are written by `store_pledges` in one transaction: all of them or none. A sheet that cannot
be read at all (wrong header, not UTF-8, too large) raises before anything is written, so the
same sheet sent twice creates nothing the second time.

With PLEDGE_CONFIRMATION=email the imported pledges are stored pending (confirm_email) and
no mail is sent from the request (a sheet can hold 5,000 people): `pledges send-confirmations`,
run from cron, sends their links.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError

from ..errors import ApiError, InvalidInput, field_messages
from ..extensions import db
from ..models import ApiKey, Pledge
from ..schemas import PledgeIn
from .audit import record_action
from .keys import CallerKey
from .pledging import NewPledge, PledgeReceipt, open_campaign, prepare_pledge, store_pledges

MAX_ROWS = 5_000
COLUMNS = ("kind", "neighborhood", "email", "name", "show_name")
REQUIRED_COLUMNS = ("kind", "neighborhood", "email")
CSV_TYPES = ("text/csv",)
# How a spreadsheet writes a tick box; an empty cell is "no".
YES, NO = ("true", "yes", "1"), ("false", "no", "0", "")
EMAILS_PER_QUERY = 500  # well under SQLite's limit on bound parameters


class UnreadableSheet(ApiError):
    status = 400
    code = "bad_request"


class SheetTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class UnsupportedSheet(ApiError):
    status = 415
    code = "unsupported_media_type"


@dataclass
class RowReport:
    """One row as a spreadsheet numbers it: created, duplicate (with the pledge's id) or invalid."""

    line: int
    outcome: str
    id: str | None = None
    fields: dict[str, list[str]] | None = None


@dataclass
class ImportReport:
    campaign: str
    dry_run: bool
    rows: list[RowReport] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {"created": 0, "duplicate": 0, "invalid": 0}
        for row in self.rows:
            counts[row.outcome] += 1
        return counts


def read_sheet(body: bytes, mimetype: str) -> list[tuple[int, Any]]:
    """The rows of a sheet as (line, pledge fields); raises when the sheet as a whole cannot be read."""
    if len(body) > current_app.config["IMPORT_MAX_BYTES"]:
        raise SheetTooLarge(
            _l("The sheet is larger than %(n)s bytes: split it.", n=current_app.config["IMPORT_MAX_BYTES"])
        )
    if mimetype in CSV_TYPES:
        rows = list(_csv_rows(_text(body)))
    elif mimetype == "application/json" or mimetype.endswith("+json"):
        rows = _json_rows(body)
    else:
        raise UnsupportedSheet(_l("Send the sheet as CSV (Content-Type: text/csv) or as JSON."))
    if len(rows) > MAX_ROWS:
        raise SheetTooLarge(
            _l(
                "The sheet has %(rows)s rows; at most %(max)s are taken at once: split it.",
                rows=len(rows),
                max=MAX_ROWS,
            )
        )
    return rows


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8-sig")  # a spreadsheet's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as error:
        raise UnreadableSheet(
            _l("The file is not UTF-8 text. In the spreadsheet, save it as “CSV UTF-8”.")
        ) from error


def _csv_rows(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip().lower() for cell in next(reader, [])]
        columns = _checked_header(header)
        # Numbered as the spreadsheet shows them: the header is line 1, a blank row keeps its number.
        for line, cells in enumerate(reader, start=2):
            if any(cell.strip() for cell in cells):
                yield line, _csv_pledge(columns, cells)
    except csv.Error as error:
        raise UnreadableSheet(_l("The file is not readable as CSV.")) from error


def _checked_header(header: list[str]) -> list[str]:
    unknown = [name for name in header if name not in COLUMNS]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if unknown or missing or len(set(header)) != len(header):
        raise UnreadableSheet(
            _l(
                "The first row must name the columns, each once: %(required)s, and optionally name "
                "and show_name.",
                required=", ".join(REQUIRED_COLUMNS),
            )
        )
    return header


class ExtraCells(dict[str, Any]):
    """A CSV row with filled cells beyond the header's columns (an unquoted comma, most often)."""


def _csv_pledge(columns: list[str], cells: list[str]) -> dict[str, Any]:
    pledge = {name: cell.strip() for name, cell in zip(columns, cells, strict=False) if cell.strip()}
    if any(cell.strip() for cell in cells[len(columns) :]):
        return ExtraCells(pledge)
    return pledge


def _json_rows(body: bytes) -> list[tuple[int, Any]]:
    try:
        document = json.loads(body)
    except ValueError as error:  # not JSON, or not UTF-8
        raise UnreadableSheet(_l("The body is not valid JSON.")) from error
    pledges = document.get("pledges") if isinstance(document, dict) else None
    if not isinstance(pledges, list) or set(document) != {"pledges"}:
        raise UnreadableSheet(_l('Send the pledges as {"pledges": [{…}, …]}.'))
    return [(index + 1, pledge) for index, pledge in enumerate(pledges)]


def _show_name(value: Any) -> bool:
    """A CSV cell, as a spreadsheet's tick box or a person's yes/no."""
    text = str(value).strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise ValidationError(_l("Write yes or no (or leave the cell empty)."))


def _validated(
    schema: PledgeIn, row: Any, from_csv: bool, campaign_id: int, key: CallerKey
) -> NewPledge | dict[str, list[str]]:
    """The row ready to write, or its field messages: PledgeIn, then the neighborhood, as for one pledge."""
    errors: dict[str, Any] = {}
    if isinstance(row, ExtraCells):
        errors["_schema"] = [_l("This row has more cells than the header has columns.")]
    if from_csv and "show_name" in row:
        row = dict(row)
        try:
            row["show_name"] = _show_name(row.pop("show_name"))
        except ValidationError as error:
            errors["show_name"] = error.messages
    try:
        pledge = schema.load(row)
    except ValidationError as error:
        errors.update(error.normalized_messages())
    if errors:
        return field_messages(errors)
    try:
        return prepare_pledge(campaign_id, pledge, address_hash=None, trusted=True, intake_key=key)
    except InvalidInput as error:
        return field_messages(error.fields or {})


def caller_key(key_id: int) -> CallerKey | None:
    """The key a signed-in page acts as (its session keeps the key's id, never its token), if active."""
    key = db.session.get(ApiKey, key_id)
    if key is None or not key.active:
        return None
    return CallerKey(key.id, key.name, key.scope, key.rate_limit)


def existing_pledges(campaign_id: int, emails: list[str]) -> dict[str, str]:
    """Canonical email → public id of the pledges this campaign already has, among those given."""
    found: dict[str, str] = {}
    for start in range(0, len(emails), EMAILS_PER_QUERY):
        query = db.select(Pledge.email_canonical, Pledge.public_id).where(
            Pledge.campaign_id == campaign_id,
            Pledge.email_canonical.in_(emails[start : start + EMAILS_PER_QUERY]),
        )
        found.update(db.session.execute(query).tuples().all())
    return found


def import_sheet(
    campaign_ref: str, body: bytes, mimetype: str, key: CallerKey, dry_run: bool = False
) -> ImportReport:
    """Validate, dedupe and (unless `dry_run`) write a sheet's pledges, attributed to `key`.

    A dry run answers the same report (against the campaign's pledges as they are now) and
    writes nothing; "created" then means "would be created", and has no id yet.
    """
    campaign = open_campaign(campaign_ref)
    rows = read_sheet(body, mimetype)
    schema, from_csv = PledgeIn(), mimetype in CSV_TYPES
    checked = [(line, _validated(schema, row, from_csv, campaign.id, key)) for line, row in rows]
    valid_emails = list(dict.fromkeys(p.email_canonical for _, p in checked if isinstance(p, NewPledge)))
    existing = existing_pledges(campaign.id, valid_emails)

    report = ImportReport(campaign.slug, dry_run)
    first_of: dict[str, RowReport] = {}  # email → the row that takes it
    repeats: list[tuple[RowReport, RowReport]] = []  # (a later row, the row that took its email)
    to_write: list[tuple[RowReport, NewPledge]] = []
    for line, pledge in checked:
        if not isinstance(pledge, NewPledge):
            report.rows.append(RowReport(line, "invalid", fields=pledge))
        elif pledge.email_canonical in existing:
            report.rows.append(RowReport(line, "duplicate", id=existing[pledge.email_canonical]))
        elif pledge.email_canonical in first_of:
            report.rows.append(row := RowReport(line, "duplicate"))
            repeats.append((row, first_of[pledge.email_canonical]))
        else:
            report.rows.append(row := RowReport(line, "created"))
            first_of[pledge.email_canonical] = row
            to_write.append((row, pledge))
    if dry_run:
        return report

    def audited(answers: list[tuple[PledgeReceipt, str]]) -> None:
        for (row, _), (receipt, stored_as) in zip(to_write, answers, strict=True):
            # Another request took this email between our read and our write: a duplicate after all.
            row.outcome, row.id = ("duplicate" if stored_as == "duplicate" else "created"), receipt.id
        record_action(key.name, "pledge.import", campaign.slug, None, report.counts)

    store_pledges([pledge for _, pledge in to_write], then=audited)
    for row, first in repeats:
        row.id = first.id
    return report
