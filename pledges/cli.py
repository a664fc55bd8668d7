"""Command-line tools: `flask --app wsgi pledges|neighborhoods …`."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .database import snapshot_read, write_transaction
from .errors import ApiError
from .extensions import db
from .models import Campaign
from .services.campaigns import create_campaign, find_campaign, update_campaign
from .services.confirmation import retry_confirmations
from .services.counts import find_drift, rebuild_counts
from .services.demo import add_synthetic_pledges, purge_synthetic_pledges
from .services.keys import SCOPES, KeyRequestError, create_key, list_keys, revoke_key
from .services.privacy import anonymize_campaign, campaigns_to_anonymize
from .services.seeding import import_neighborhoods, read_neighborhood_file, seed

pledges_cli = AppGroup("pledges", help="Seed, count and demo pledges.")
keys_cli = AppGroup("keys", help="Partner API keys.")
campaigns_cli = AppGroup("campaigns", help="Create and edit campaigns.")
neighborhoods_cli = AppGroup("neighborhoods", help="Manage the city's neighborhoods.")


def _campaign_or_exit(ref: str) -> Campaign:
    try:
        return find_campaign(ref)
    except ApiError as error:
        raise click.ClickException(str(error.message)) from error


@pledges_cli.command("seed")
@click.option("--goal", type=click.IntRange(min=1), help="Pledge goal of the default campaign.")
def seed_command(goal: int | None) -> None:
    """Load Buffalo's neighborhoods and open the default campaign, where none exist yet."""
    result = seed(goal or current_app.config["CAMPAIGN_GOAL"], update_goal=goal is not None)
    click.echo(
        f"neighborhoods added: {result.neighborhoods_added}; "
        f"default campaign {'created' if result.campaign_created else 'already there'}"
    )


@pledges_cli.command("recount")
@click.option("--check", is_flag=True, help="Only report drift; exit 1 if there is any.")
@click.option("--campaign", "campaign_ref", help="One campaign's slug (default: all).")
def recount_command(check: bool, campaign_ref: str | None) -> None:
    """Compare the stored counts with the pledge rows, and repair them unless --check."""
    campaigns = (
        [_campaign_or_exit(campaign_ref)] if campaign_ref else list(db.session.scalars(db.select(Campaign)))
    )
    drifted = 0
    for campaign in campaigns:
        slug, campaign_id = campaign.slug, campaign.id
        with snapshot_read():
            drift = find_drift(campaign_id)
        for d in drift:
            click.echo(f"{slug}: {d.table} {d.key}: stored {d.stored}, pledges {d.actual}")
        drifted += len(drift)
        if drift and not check:
            with write_transaction():
                rebuild_counts(campaign_id)
            click.echo(f"{slug}: counts rebuilt from the pledges")
    if check and drifted:
        click.echo(f"drift: {drifted} stored counts differ from the pledges", err=True)
        sys.exit(1)
    click.echo("counts match the pledges" if not drifted else "repaired")


@pledges_cli.command("demo")
@click.option("--count", type=click.IntRange(min=1), help="How many synthetic pledges to add.")
@click.option("--purge", is_flag=True, help="Remove the synthetic pledges and their counts instead.")
@click.option("--campaign", "campaign_ref", default="current", show_default=True)
@click.option(
    "--days", type=click.IntRange(min=1), default=3, show_default=True, help="Spread over the last N days."
)
def demo_command(count: int | None, purge: bool, campaign_ref: str, days: int) -> None:
    """Add synthetic pledges (marked as such), or purge them."""
    if purge == (count is not None):
        raise click.UsageError("give either --count N or --purge")
    campaign = _campaign_or_exit(campaign_ref)
    started = time.perf_counter()
    if purge:
        removed = purge_synthetic_pledges(campaign)
        click.echo(f"removed {removed} synthetic pledges from {campaign.slug}")
        return
    try:
        added = add_synthetic_pledges(campaign, count, days=days)
    except ValueError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"added {added} synthetic pledges to {campaign.slug} in {time.perf_counter() - started:.1f} s")


@neighborhoods_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name-property", help="GeoJSON: the property holding the name (default: name, nbhdname…).")
def import_command(file: Path, name_property: str | None) -> None:
    """Load neighborhoods from a names file, a CSV with a name column, or GeoJSON (keeping boundaries)."""
    try:
        specs = read_neighborhood_file(file, name_property)
    except (ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"cannot import {file}: {error}") from error
    added, updated = import_neighborhoods(specs)
    click.echo(f"neighborhoods: {added} added, {updated} updated, {len(specs) - added - updated} unchanged")


@keys_cli.command("create")
@click.option("--name", required=True, help="Who the key is for, e.g. 'Buffalo News'.")
@click.option("--scope", type=click.Choice(SCOPES), default="read", show_default=True)
@click.option(
    "--limit", "rate_limit", help="Its own rate limit, e.g. '1200/minute' (default: API_KEY_RATE_LIMIT)."
)
def create_key_command(name: str, scope: str, rate_limit: str | None) -> None:
    """Create a key and print it once, alone on the last line: only its hash is stored."""
    try:
        token = create_key(name, scope, rate_limit)
    except KeyRequestError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"Created the {scope} key {name!r}. Keep it now: it cannot be shown again.")
    click.echo(token)


@keys_cli.command("list")
def list_keys_command() -> None:
    """Name, scope, created, last used and limit of every key (never the key itself)."""
    rows = [("NAME", "SCOPE", "CREATED", "LAST USED", "LIMIT", "STATUS")]
    for key in list_keys():
        rows.append(
            (
                key.name,
                key.scope,
                key.created_at.strftime("%Y-%m-%d %H:%M"),
                key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never",
                key.rate_limit or f"default ({current_app.config['API_KEY_RATE_LIMIT']})",
                "revoked" if key.revoked_at else "active",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


@keys_cli.command("revoke")
@click.argument("name")
def revoke_key_command(name: str) -> None:
    """Revoke a key: from the next request on, it is refused with 401."""
    try:
        revoke_key(name)
    except KeyRequestError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"revoked {name!r}")


@pledges_cli.command("send-confirmations")
def send_confirmations_command() -> None:
    """Send the confirmation links that could not be sent before (run it from cron)."""
    sent, failed = retry_confirmations()
    click.echo(f"confirmation links sent: {sent}; still failing: {failed}")
    if failed:
        sys.exit(1)


@pledges_cli.command("anonymize")
@click.option(
    "--campaign", "campaign_ref", help="One campaign (default: every campaign closed long enough ago)."
)
def anonymize_command(campaign_ref: str | None) -> None:
    """Replace emails, names and address hashes with placeholders; the counts stay."""
    days = current_app.config["ANONYMIZE_AFTER_DAYS"]
    campaigns = [_campaign_or_exit(campaign_ref)] if campaign_ref else campaigns_to_anonymize(days)
    if not campaigns:
        click.echo(f"no campaign closed more than {days} days ago")
    for campaign in campaigns:
        slug = campaign.slug
        click.echo(f"{slug}: {anonymize_campaign(campaign)} pledges anonymized")


UTC_TIME = click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z", "%Y-%m-%d"])


def _campaign_values(options: dict[str, Any]) -> dict[str, Any]:
    values = {k: v for k, v in options.items() if v is not None}
    for moment in ("starts_at", "ends_at"):
        if moment in values and values[moment].tzinfo is None:
            values[moment] = values[moment].replace(tzinfo=UTC)
    return values


def _apply_or_exit(action: Callable[[], Campaign]) -> Campaign:
    try:
        return action()
    except ApiError as error:
        details = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in (error.fields or {}).items())
        raise click.ClickException(f"{error.message} {details}".strip()) from error


@campaigns_cli.command("create")
@click.option("--slug", required=True)
@click.option("--name", required=True)
@click.option("--city", required=True)
@click.option("--timezone", "timezone_name", required=True, help="e.g. America/New_York")
@click.option(
    "--starts", "starts_at", type=UTC_TIME, required=True, help="ISO time with offset, or a date (UTC)"
)
@click.option("--ends", "ends_at", type=UTC_TIME, required=True)
@click.option("--goal", type=click.IntRange(min=1))
def create_campaign_command(**options: Any) -> None:
    """Create a campaign."""
    options["timezone"] = options.pop("timezone_name")
    campaign = _apply_or_exit(lambda: create_campaign(_campaign_values(options), actor="cli"))
    click.echo(f"created {campaign.slug} ({campaign.status})")


@campaigns_cli.command("update")
@click.argument("slug")
@click.option("--name")
@click.option("--city")
@click.option("--timezone", "timezone_name")
@click.option("--starts", "starts_at", type=UTC_TIME)
@click.option("--ends", "ends_at", type=UTC_TIME)
@click.option("--goal", type=click.IntRange(min=1))
@click.option("--close", is_flag=True, default=None, help="Close it now, before its end.")
@click.option("--reopen", is_flag=True, default=None, help="Open it again after closing it early.")
@click.option("--reason")
def update_campaign_command(slug: str, reason: str | None, **options: Any) -> None:
    """Edit a campaign: dates, goal, name; close it early or reopen it."""
    options["timezone"] = options.pop("timezone_name")
    campaign = _apply_or_exit(lambda: update_campaign(slug, _campaign_values(options), "cli", reason))
    click.echo(f"updated {campaign.slug} ({campaign.status})")


def register_commands(app: Flask) -> None:
    app.cli.add_command(pledges_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(campaigns_cli)
    app.cli.add_command(neighborhoods_cli)
