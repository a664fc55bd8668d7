"""Command-line tools: `flask --app wsgi pledges|neighborhoods …`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .database import snapshot_read, write_transaction
from .errors import ApiError
from .extensions import db
from .models import Campaign
from .services.campaigns import find_campaign
from .services.counts import find_drift, rebuild_counts
from .services.demo import add_synthetic_pledges, purge_synthetic_pledges
from .services.keys import SCOPES, KeyRequestError, create_key, list_keys, revoke_key
from .services.seeding import import_neighborhoods, read_neighborhood_file, seed

pledges_cli = AppGroup("pledges", help="Seed, count and demo pledges.")
keys_cli = AppGroup("keys", help="Partner API keys.")
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


def register_commands(app: Flask) -> None:
    app.cli.add_command(pledges_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(neighborhoods_cli)
