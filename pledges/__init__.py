"""Porch Light: pledges to leave the porch light on, counted per neighborhood."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from flask import Flask, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import BadRequest, UnsupportedMediaType
from werkzeug.middleware.proxy_fix import ProxyFix

from . import auth, config, i18n, live, observability, ratelimits, security, snapshots
from .database import configure_engine
from .errors import INVALID_FIELDS, ApiError, InvalidInput, is_api_path
from .extensions import csrf, db, limiter, migrate, openapi

JSON_BODY_METHODS = ("POST", "PUT", "PATCH")


def create_app(config_overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: config → extensions → blueprints → errors → cli.

    `config_overrides` wins over the environment (tests use it); INSTANCE_PATH
    moves the instance folder that holds the default database and generated key.
    """
    overrides = dict(config_overrides or {})
    instance_path = overrides.pop("INSTANCE_PATH", None) or os.environ.get("INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance_path)
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path, overrides))
    app.json.sort_keys = False  # type: ignore[attr-defined]  # fields in the contract's order
    app.jinja_env.trim_blocks = app.jinja_env.lstrip_blocks = True
    observability.init_app(app)
    register_proxy_fix(app)
    register_extensions(app)
    register_blueprints(app)
    register_errors(app)
    register_cli(app)
    return app


def register_proxy_fix(app: Flask) -> None:
    # Only as many X-Forwarded-For hops as there are proxies we run: the rest can be forged.
    hops = app.config["TRUSTED_PROXIES"]
    # X-Forwarded-Host only when the proxy sets it itself (TRUSTED_PROXY_HOST): else the client forges it.
    host_hops = hops if app.config["TRUSTED_PROXY_HOST"] else 0
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=host_hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    snapshots.init_app(app)
    with app.app_context():
        configure_engine(db.engine)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), os.pardir, "migrations"))
    from .schemas import ErrorOut

    openapi.ERROR_SCHEMA = ErrorOut  # document errors in the format errors.py writes
    openapi.init_app(app)
    from .api import BEARER, security_scheme

    openapi.spec.components.security_scheme(BEARER, security_scheme())
    # The caller's key is looked up before the limiter counts the request, and refused after.
    app.before_request(auth.identify_caller)
    limiter.init_app(app)
    ratelimits.init_app(app)
    app.before_request(auth.refuse_bad_credentials)
    # CSRF is checked below, by path, so every API blueprint (nested ones too) is exempt.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    i18n.init_app(app)
    security.init_app(app)


def register_blueprints(app: Flask) -> None:
    from . import health, web
    from .api import admin, campaigns, docs, neighborhoods
    from .web import admin as admin_pages
    from .web import confirm, embed, imports, manage, names, signup

    live.init_app(app, campaigns.render_totals)
    openapi.register_blueprint(campaigns.blp)
    openapi.register_blueprint(neighborhoods.blp)
    openapi.register_blueprint(admin.blp)
    app.register_blueprint(health.bp)
    app.register_blueprint(web.bp)
    app.register_blueprint(embed.bp)
    app.register_blueprint(confirm.bp)
    app.register_blueprint(admin_pages.bp)
    app.register_blueprint(signup.bp)
    app.register_blueprint(imports.bp)
    app.register_blueprint(manage.bp)
    app.register_blueprint(names.bp)
    app.register_blueprint(docs.bp)
    ratelimits.exempt(health.bp)
    ratelimits.exempt(app.view_functions["metrics"])

    # Before anything reads the body: the sheet upload routes take more than 16 KiB.
    app.before_request(imports.allow_sheet_uploads)

    @app.before_request
    def check_request_body() -> None:
        if is_api_path(request.path):
            # No text the app keeps or looks up has a NUL, and PostgreSQL refuses one: a 422 naming it.
            named = [name for name, value in request.args.items() if has_nul(name) or has_nul(value)]
            if named:
                raise InvalidInput(INVALID_FIELDS, {name: [NUL_REFUSED] for name in named})
        if request.method not in JSON_BODY_METHODS or request.routing_exception is not None:
            return  # a 404 or 405 is answered as such, whatever the body
        if not is_api_path(request.path):
            csrf.protect()
            return
        if not request.is_json:
            if request.endpoint == imports.API_ENDPOINT:
                return  # CSV or JSON: the import reads its own body, and answers 415 for anything else
            raise UnsupportedMediaType()
        body = request.get_data(cache=True)
        if not body:
            raise BadRequest()
        if json_nesting(body) > MAX_JSON_NESTING:
            raise ApiError(_l("The JSON body nests too deeply (at most %(n)s levels).", n=MAX_JSON_NESTING))
        # Read once here, where a number too long for int() is a 400: webargs' parser lets it out as a 500.
        try:
            document = json.loads(body, parse_int=json_integer)
        except ValueError:
            raise BadRequest() from None
        named = (
            [name for name, value in document.items() if has_nul(name) or has_nul(value)]
            if isinstance(document, dict)
            else (["_schema"] if has_nul(document) else [])
        )
        if named:
            raise InvalidInput(INVALID_FIELDS, {name: [NUL_REFUSED] for name in named})


MAX_JSON_NESTING = 32
NUL_REFUSED = _l("A NUL character is in this field, and no field takes one.")


def has_nul(value: object) -> bool:
    """Whether a parsed JSON value holds a NUL in any string (keys too); it nests 32 levels at most."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(key) or has_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(has_nul(item) for item in value)
    return False


def json_integer(digits: str) -> int:
    """An integer of a JSON body; a 400 if it is longer than int() reads (0: no limit)."""
    longest = sys.get_int_max_str_digits()
    if longest and len(digits.lstrip("-")) > longest:
        raise ApiError(_l("A number in the JSON body has more than %(n)s digits.", n=longest))
    return int(digits)


def json_nesting(body: bytes) -> int:
    """How deeply arrays and objects nest in a JSON body, without parsing it.

    Python's parser recurses: a 16 KiB body of brackets would exhaust its stack.
    """
    deepest = depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def register_errors(app: Flask) -> None:
    from .errors import register_error_handlers

    register_error_handlers(app)


def register_cli(app: Flask) -> None:
    from .cli import register_commands

    register_commands(app)
