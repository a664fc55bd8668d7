"""/api/v1/openapi.json describes the routes and the error format the API really uses."""

from __future__ import annotations

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
