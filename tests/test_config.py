"""Settings come from the environment, as the contract lists them."""

from __future__ import annotations

import stat

import pytest

from pledges import create_app
from pledges.config import database_url


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (
        "DATABASE_URL",
        "SECRET_KEY",
        "RATELIMIT_STORAGE_URI",
        "TRUSTED_PROXIES",
        "PLEDGE_RATE_LIMIT",
        "API_RATE_LIMIT",
        "API_KEY_RATE_LIMIT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


def test_the_default_database_is_sqlite_in_the_instance_folder(clean_env):
    app = create_app()
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{clean_env / 'porchlight.db'}"


def test_a_secret_key_is_generated_once_and_kept_private(clean_env):
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]

    assert first == second and len(first) >= 32
    key_file = clean_env / "secret_key"
    assert key_file.read_text().strip() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secret_key_from_the_environment_wins_and_writes_no_file(clean_env, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    assert create_app().config["SECRET_KEY"] == "from-the-environment"
    assert not (clean_env / "secret_key").exists()


def test_every_contract_setting_is_read_from_the_environment(clean_env, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://porch@db.internal/porchlight")
    monkeypatch.setenv("RATELIMIT_STORAGE_URI", "redis://cache.internal:6379/1")
    monkeypatch.setenv("TRUSTED_PROXIES", "2")
    monkeypatch.setenv("PLEDGE_RATE_LIMIT", "5/minute")
    monkeypatch.setenv("API_RATE_LIMIT", "60/minute")
    monkeypatch.setenv("API_KEY_RATE_LIMIT", "600/minute")
    monkeypatch.setenv("SECRET_KEY", "k")

    config = create_app().config

    assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://porch@db.internal/porchlight"
    assert config["RATELIMIT_STORAGE_URI"] == "redis://cache.internal:6379/1"
    assert config["TRUSTED_PROXIES"] == 2
    assert config["PLEDGE_RATE_LIMIT"] == "5/minute"
    assert config["API_RATE_LIMIT"] == "60/minute"
    assert config["API_KEY_RATE_LIMIT"] == "600/minute"


def test_defaults_match_the_contract(clean_env, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k")
    config = create_app().config
    assert config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert config["TRUSTED_PROXIES"] == 0
    assert config["MAX_CONTENT_LENGTH"] == 16 * 1024


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg2://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////var/lib/porchlight.db", "sqlite:////var/lib/porchlight.db"),
    ],
)
def test_postgresql_urls_use_psycopg_3(given, used):
    assert database_url(given, "/unused") == used


def test_config_given_to_create_app_wins_over_the_environment(clean_env, monkeypatch):
    monkeypatch.setenv("PLEDGE_RATE_LIMIT", "5/minute")
    app = create_app({"PLEDGE_RATE_LIMIT": "7/minute", "SECRET_KEY": "k"})
    assert app.config["PLEDGE_RATE_LIMIT"] == "7/minute"


def test_wsgi_exposes_the_app(clean_env, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "k")
    import importlib

    import wsgi

    assert importlib.reload(wsgi).app.name == "pledges"
