"""The abuse report: per hour, the address hashes and email domains with the most pledges."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import func

from ..database import utcnow
from ..extensions import db
from ..models import Campaign, Pledge
from .counts import as_hour, hour_bucket

TOP = 10


@dataclass
class HourReport:
    start: datetime
    addresses: list[dict[str, Any]] = field(default_factory=list)
    domains: list[dict[str, Any]] = field(default_factory=list)


def _email_domain() -> Any:
    if db.session.get_bind().dialect.name == "sqlite":
        return func.substr(Pledge.email, func.instr(Pledge.email, "@") + 1)
    return func.split_part(Pledge.email, "@", 2)


def abuse_report(campaign: Campaign, hours: int = 24, now: datetime | None = None) -> list[HourReport]:
    """The last `hours` hours, newest first; entries above the configured thresholds are flagged."""
    since = (now or utcnow()) - timedelta(hours=hours)
    config = current_app.config
    reports: dict[datetime, HourReport] = {}
    bucket = hour_bucket().label("hour")
    window = (Pledge.campaign_id == campaign.id, Pledge.created_at >= since)
    tallies = (
        ("addresses", "address_hash", Pledge.address_hash, config["ABUSE_ADDRESS_THRESHOLD"]),
        ("domains", "email_domain", _email_domain().label("domain"), config["ABUSE_DOMAIN_THRESHOLD"]),
    )
    for section, key, column, threshold in tallies:
        counted: dict[datetime, list[tuple[str, int]]] = defaultdict(list)
        rows = db.session.execute(
            db.select(bucket, column, func.count().label("n"))
            .where(*window, Pledge.address_hash.is_not(None) if key == "address_hash" else True)
            .group_by(bucket, column)
        )
        for hour, value, n in rows:
            counted[as_hour(hour)].append((value, n))
        for hour, entries in counted.items():
            report = reports.setdefault(hour, HourReport(hour))
            entries.sort(key=lambda entry: (-entry[1], entry[0]))
            getattr(report, section).extend(
                {key: value, "pledges": n, "flagged": n > threshold} for value, n in entries[:TOP]
            )
    return [reports[hour] for hour in sorted(reports, reverse=True)]
