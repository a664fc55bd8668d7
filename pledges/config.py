"""Settings, read from the environment in one place (documented in README.md)."""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_BODY_BYTES = 16 * 1024


def database_url(raw: str | None, instance_path: str) -> str:
    """The SQLAlchemy URL for DATABASE_URL, defaulting to SQLite in the instance folder.

    PostgreSQL URLs are pointed at psycopg 3, whatever driver they name.
    """
    if not raw:
        return f"sqlite:///{Path(instance_path, 'porchlight.db')}"
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
        if raw.startswith(prefix):
            return "postgresql+psycopg://" + raw[len(prefix) :]
    return raw


def secret_key(instance_path: str) -> str:
    """SECRET_KEY from the environment, else one generated once and kept in the instance folder."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    path = Path(instance_path, "secret_key")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: of several workers starting at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def engine_options(url: str) -> dict[str, Any]:
    # Parameters never appear in exception messages: they can hold emails.
    options: dict[str, Any] = {"hide_parameters": True}
    if url.startswith("sqlite"):
        options["connect_args"] = {"timeout": 30}
    else:
        options["pool_pre_ping"] = True
        # A database that accepts connections but never answers must become a 503, not a hang.
        options["connect_args"] = {"connect_timeout": 5}
    return options


def trusted_networks(raw: str | None) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """TRUSTED_NETWORKS: comma-separated CIDRs (city hall, libraries) whose pledges skip the burst check."""
    networks = []
    for part in (raw or "").split(","):
        if part.strip():
            try:
                networks.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError as error:
                raise ValueError(
                    f"TRUSTED_NETWORKS: {part.strip()!r} is not a network like 10.1.0.0/16"
                ) from error
    return tuple(networks)


def from_environment(instance_path: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every setting of the app. `overrides` (tests, create_app(config)) win over the environment."""
    overrides = dict(overrides or {})
    env = os.environ
    url = overrides.get("SQLALCHEMY_DATABASE_URI") or database_url(env.get("DATABASE_URL"), instance_path)
    public_url = env.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")  # also the OpenAPI contact
    settings: dict[str, Any] = {
        "SQLALCHEMY_DATABASE_URI": url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(url),
        "MAX_CONTENT_LENGTH": MAX_BODY_BYTES,
        "IMPORT_MAX_BYTES": int(env.get("IMPORT_MAX_BYTES", str(2 * 1024 * 1024))),  # a sign-up sheet upload
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0")),
        # X-Forwarded-Host is the client's to forge unless the proxy overwrites it: off unless asked.
        "TRUSTED_PROXY_HOST": env.get("TRUSTED_PROXY_HOST", "false").lower() == "true",
        # /metrics: with a token, only as its bearer; without one, only from the loopback address.
        "METRICS_TOKEN": env.get("METRICS_TOKEN", ""),
        "RATELIMIT_STORAGE_URI": env.get("RATELIMIT_STORAGE_URI", "memory://"),
        # Lets several deployments (or test runs) share one Redis without sharing counters.
        "RATELIMIT_KEY_PREFIX": env.get("RATELIMIT_KEY_PREFIX", "porchlight"),
        # ratelimits.add_rate_limit_headers writes them; flask-limiter's own put Retry-After on every answer.
        "RATELIMIT_HEADERS_ENABLED": False,
        # Redis down: keep serving, counting in memory for a while, with a warning in the log.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        "RATELIMIT_ENABLED": env.get("RATELIMIT_ENABLED", "true").lower() != "false",
        "PLEDGE_RATE_LIMIT": env.get("PLEDGE_RATE_LIMIT", "20/minute;200/hour"),
        "API_RATE_LIMIT": env.get("API_RATE_LIMIT", "300/minute"),
        # flask-limiter applies this to every route without a limit of its own.
        "RATELIMIT_DEFAULT": env.get("API_RATE_LIMIT", "300/minute"),
        "API_KEY_RATE_LIMIT": env.get("API_KEY_RATE_LIMIT", "1200/minute"),
        "CAMPAIGN_GOAL": int(env.get("CAMPAIGN_GOAL", "10000")),
        # Trust: email confirmation, bursts held for review, abuse report thresholds, retention.
        "PLEDGE_CONFIRMATION": env.get("PLEDGE_CONFIRMATION", "none").lower(),
        "PUBLIC_URL": env.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
        # Given (not the default): absolute links in pages are built from it, never from the Host header.
        "PUBLIC_URL_GIVEN": bool(env.get("PUBLIC_URL")) or "PUBLIC_URL" in overrides,
        # No SMTP_HOST: no mail is sent (confirmation links need one).
        "SMTP_HOST": env.get("SMTP_HOST", ""),
        "SMTP_PORT": int(env.get("SMTP_PORT", "25")),
        "SMTP_USER": env.get("SMTP_USER"),
        "SMTP_PASSWORD": env.get("SMTP_PASSWORD"),
        "SMTP_STARTTLS": env.get("SMTP_STARTTLS", "false").lower() == "true",
        "MAIL_FROM": env.get("MAIL_FROM", "Porch Light <porchlight@localhost>"),
        "BURST_LIMIT": int(env.get("BURST_LIMIT", "20")),
        "BURST_WINDOW_MINUTES": int(env.get("BURST_WINDOW_MINUTES", "10")),
        "TRUSTED_NETWORKS": trusted_networks(env.get("TRUSTED_NETWORKS")),
        # Business names asked to be shown: "review" (after the mayor's office approves) or "immediate".
        "BUSINESS_NAMES": env.get("BUSINESS_NAMES", "review").lower(),
        "ABUSE_ADDRESS_THRESHOLD": int(env.get("ABUSE_ADDRESS_THRESHOLD", "30")),
        "ABUSE_DOMAIN_THRESHOLD": int(env.get("ABUSE_DOMAIN_THRESHOLD", "200")),
        "ANONYMIZE_AFTER_DAYS": int(env.get("ANONYMIZE_AFTER_DAYS", "180")),
        "ADMIN_IDLE_MINUTES": int(env.get("ADMIN_IDLE_MINUTES", "30")),
        "ADMIN_SESSION_HOURS": int(env.get("ADMIN_SESSION_HOURS", "12")),  # a sign-in lasts this long at most
        # Operations: JSON lines on stderr (or "plain" to leave logging as it is).
        "LOG_FORMAT": env.get("LOG_FORMAT", "json"),
        "LOG_LEVEL": env.get("LOG_LEVEL", "INFO").upper(),
        # Live totals: how often each process looks for changes, and the stream's quiet-time heartbeat.
        "LIVE_POLL_SECONDS": float(env.get("LIVE_POLL_SECONDS", "1")),
        "STREAM_HEARTBEAT_SECONDS": float(env.get("STREAM_HEARTBEAT_SECONDS", "15")),
        # Open streams: at most this many from one address (429 beyond), and in one process (503 beyond).
        "STREAMS_PER_ADDRESS": int(env.get("STREAMS_PER_ADDRESS", "5")),
        "STREAMS_PER_PROCESS": int(env.get("STREAMS_PER_PROCESS", "500")),
        # How old a process's copy of the totals, the current campaign and the neighborhoods may be.
        "SNAPSHOT_SECONDS": float(env.get("SNAPSHOT_SECONDS", "1")),
        # flask-smorest: the OpenAPI document the contract names.
        "API_TITLE": "Porch Light",
        "API_VERSION": "v1",
        "OPENAPI_VERSION": "3.0.3",
        "OPENAPI_URL_PREFIX": "/api/v1",
        "OPENAPI_JSON_PATH": "openapi.json",
        # Relative, so the document is right behind any host; a client generated from it takes a base URL.
        "API_SPEC_OPTIONS": {
            "servers": [{"url": "/", "description": "This server: every path starts with /api/v1"}],
            # Public reads take a key or none; admin and intake routes say they need one.
            "security": [{}, {"bearerAuth": []}],
            "info": {
                "description": "Porch Light's API: National Night Out porch-light pledges, counted per "
                'neighborhood. Errors are always JSON: `{"error": {"code", "message", "fields"?}}`. '
                "Lists are newest first, paged by opaque cursors: follow `next` as given.",
                "contact": {"name": "Porch Light, the mayor's office", "url": public_url},
                "license": {"name": "All rights reserved: for the city and its partners", "url": public_url},
            },
        },
    }
    settings.update(overrides)
    if isinstance(settings["TRUSTED_NETWORKS"], str):  # given as the environment would give it
        settings["TRUSTED_NETWORKS"] = trusted_networks(settings["TRUSTED_NETWORKS"])
    if "SECRET_KEY" not in settings:
        settings["SECRET_KEY"] = secret_key(instance_path)
    return settings
