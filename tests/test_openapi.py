"""/api/v1/openapi.json describes the routes and the error format the API really uses."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

CORE_PATHS = {
    "/api/v1/campaigns": {"get"},
    "/api/v1/campaigns/{campaign}": {"get"},
    "/api/v1/campaigns/{campaign}/pledges": {"post"},
    "/api/v1/campaigns/{campaign}/totals": {"get"},
    "/api/v1/campaigns/{campaign}/totals.csv": {"get"},
    "/api/v1/campaigns/{campaign}/neighborhoods/{slug}": {"get"},
    "/api/v1/campaigns/{campaign}/timeseries": {"get"},
    "/api/v1/neighborhoods": {"get"},
}


def test_the_openapi_document_is_3_0_3_and_lists_every_core_route(client):
    response = client.get("/api/v1/openapi.json")

    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"] == "3.0.3"
    for path, methods in CORE_PATHS.items():
        assert methods <= set(spec["paths"][path]), path


def test_the_documented_error_is_the_error_the_api_sends(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    error = spec["components"]["schemas"]["ErrorOut"]
    body = spec["components"]["schemas"]["ErrorBody"]

    assert error["required"] == ["error"]
    assert set(body["properties"]) == {"code", "message", "fields"}
    sent = client.get("/api/v1/campaigns/nope").get_json()
    assert set(sent) == {"error"} and set(sent["error"]) <= set(body["properties"])


def test_the_pledge_route_documents_201_200_and_its_errors(client):
    responses = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/campaigns/{campaign}/pledges"]
    assert {"201", "200", "404", "409", "413", "415", "422"} <= set(responses["post"]["responses"])


def test_the_totals_route_documents_its_body_304_and_404(client):
    """Its view builds its own response; the document still says what it answers."""
    get = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/campaigns/{campaign}/totals"]["get"]

    assert set(get["responses"]) >= {"200", "304", "404"}
    assert get["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/TotalsOut"
    }


def test_every_operation_has_an_operation_id_and_says_who_may_call_it(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    operations = [op for ops in spec["paths"].values() for op in ops.values() if "responses" in op]

    ids = [op["operationId"] for op in operations]
    assert len(ids) == len(set(ids)) == len(operations)
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": spec["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    admin = spec["paths"]["/api/v1/admin/pledges"]["get"]
    assert admin["security"] == [{"bearerAuth": []}]
    # Public reads take the document's own: anonymous, or a key (stated per operation, a generator
    # would make the key required).
    assert spec["security"] == [{}, {"bearerAuth": []}]
    assert "security" not in spec["paths"]["/api/v1/campaigns/{campaign}/totals"]["get"]
    assert {"401", "403", "429"} <= set(admin["responses"])
    assert spec["servers"] and spec["info"]["contact"] and spec["info"]["license"]


def test_every_error_status_documents_the_json_error_body(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    pledge = spec["paths"]["/api/v1/campaigns/{campaign}/pledges"]["post"]["responses"]

    for status in ("400", "401", "404", "405", "409", "413", "415", "429", "500", "503"):
        content = pledge[status]["content"]["application/json"]
        assert content["schema"] == {"$ref": "#/components/schemas/ErrorOut"}, status
        assert content["example"]["error"]["code"], status
    assert "Retry-After" in pledge["429"]["headers"]


def test_cached_reads_document_their_304(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    for path in (
        "/api/v1/neighborhoods",
        "/api/v1/campaigns/{campaign}/timeseries",
        "/api/v1/campaigns/{campaign}/businesses",
    ):
        assert "304" in paths[path]["get"]["responses"], path
        assert "ETag" in paths[path]["get"]["responses"]["200"]["headers"], path


def test_response_schemas_state_required_fields_and_enums(client):
    schemas = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]

    assert set(schemas["TotalsOut"]["required"]) >= {"campaign", "total", "neighborhoods", "updated_at"}
    assert schemas["CampaignOut"]["properties"]["status"]["enum"] == ["upcoming", "open", "closed"]
    assert schemas["AdminPledgeOut"]["properties"]["kind"]["enum"] == ["resident", "business"]
    assert "pending_reason" not in schemas["PledgeOut"]["required"]  # absent unless pending


def test_the_stream_is_documented_as_an_endless_event_stream(client):
    get = client.get("/api/v1/openapi.json").get_json()["paths"]["/api/v1/campaigns/{campaign}/stream"]["get"]

    ok = get["responses"]["200"]
    assert set(ok["content"]) == {"text/event-stream"}
    assert "endless" in ok["description"] and "timeout" in ok["description"]
    assert {"429", "503"} <= set(get["responses"])


def test_pledge_remove_and_restore_are_linked_for_clients_and_fuzzers(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]

    created = paths["/api/v1/campaigns/{campaign}/pledges"]["post"]["responses"]["201"]
    removed = paths["/api/v1/admin/pledges/{pledge_id}/remove"]["post"]["responses"]["200"]
    assert created["links"]["RemovePledge"]["operationId"] == "removePledge"
    assert removed["links"]["RestorePledge"]["operationId"] == "restorePledge"
    assert created["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/PledgeOut"}


LINTERS = {
    "redocly": ["lint", "--format=stylish"],
    "spectral": ["lint", "--ruleset", str(REPO_ROOT / ".spectral.yaml"), "--format=text"],
}


@pytest.mark.parametrize("linter", sorted(LINTERS))
def test_the_document_passes_redocly_and_spectral_with_no_error(client, tmp_path, linter):
    binary = REPO_ROOT / "node_modules" / ".bin" / linter
    if not binary.exists():
        message = f"{binary} is missing: run `npm ci`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    document = tmp_path / "openapi.json"
    document.write_text(client.get("/api/v1/openapi.json").get_data(as_text=True))
    # Offline: no telemetry, no update check.
    env = {**os.environ, "REDOCLY_TELEMETRY": "off", "REDOCLY_SUPPRESS_UPDATE_NOTICE": "true"}
    run = subprocess.run(
        [str(binary), *LINTERS[linter], str(document)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
    )
    report = run.stdout + run.stderr
    # Both exit non-zero on any error, and only then (warnings are printed, not failed on).
    warnings = len(re.findall(r"\bwarning\b", report))
    print(f"{linter}: exit {run.returncode}, {warnings} warning lines\n{report[-3000:]}")
    assert run.returncode == 0, report[-3000:]
