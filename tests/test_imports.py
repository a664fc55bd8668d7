"""Paper sign-up sheets: many pledges at once, each row checked as one pledge, written all together."""

from __future__ import annotations

import io
import re

import pytest
from flask_migrate import upgrade

from pledges.services.seeding import seed

from .conftest import BOTH_BACKENDS, make_app
from .factories import bearer, csrf_token, make_key, post_pledge, totals

IMPORT_URL = "/api/v1/campaigns/current/pledges/import"
SHEET = (
    "kind,neighborhood,email,name,show_name\r\n"
    "resident,allentown,ana@example.org,,\r\n"  # 2 created
    "business,central,Shop@Example.org,Corner Shop,yes\r\n"  # 3 created
    "resident,allentown, ANA@example.org ,,\r\n"  # 4 the same email as line 2, once normalised
    "resident,central,existing@example.org,,\r\n"  # 5 pledged before the import
    "resident,allentown,not-an-email,,\r\n"  # 6
    "resident,atlantis,bo@example.org,,\r\n"  # 7
    "business,central,biz@example.org,,\r\n"  # 8
    "resident,allentown,cy@example.org,,maybe\r\n"  # 9
    ",,,,\r\n"  # 10 a blank spreadsheet row: skipped, but it keeps its number
    "resident,black-rock,dee@example.org,Dee,NO\r\n"  # 11 created
    "resident,black-rock,dee@example.org,Dee,NO\r\n"  # 12 the same row again
)
INVALID_ROWS = [
    {"line": line, "outcome": "invalid", "fields": {name: [message]}}
    for line, name, message in [
        (6, "email", "Enter an email address like name@example.org."),
        (7, "neighborhood", "Choose your neighborhood from the list."),
        (8, "name", "Enter the business's name: businesses are listed by name."),
        (9, "show_name", "Write yes or no (or leave the cell empty)."),
    ]
]


def send_csv(client, token: str, sheet: str | bytes, query: str = ""):
    body = sheet.encode() if isinstance(sheet, str) else sheet
    return client.post(IMPORT_URL + query, data=body, content_type="text/csv", headers=bearer(token))


def pledges_of(client, admin_token: str, key_name: str) -> list[dict]:
    query = f"?intake_key={key_name}&limit=500"
    response = client.get("/api/v1/admin/pledges" + query, headers=bearer(admin_token))
    assert response.status_code == 200
    return response.get_json()["pledges"]


def imports_in_audit(client, admin_token: str) -> list[dict]:
    entries = client.get("/api/v1/admin/audit", headers=bearer(admin_token)).get_json()["entries"]
    return [entry for entry in entries if entry["action"] == "pledge.import"]


@pytest.fixture
def keys(client, seeded_app) -> dict[str, str]:
    return {
        "intake": make_key(seeded_app, "block-club", scope="intake"),
        "admin": make_key(seeded_app, "mayor", scope="admin"),
        "read": make_key(seeded_app, "partner", scope="read"),
    }


@pytest.fixture
def existing_id(client) -> str:
    response = post_pledge(client, email="existing@example.org", neighborhood="central")
    assert response.status_code == 201
    return response.get_json()["id"]


@BOTH_BACKENDS
def test_a_sheet_writes_its_valid_rows_and_reports_every_row(client, keys, existing_id):
    before = totals(client)["total"]

    response = send_csv(client, keys["intake"], SHEET)

    assert response.status_code == 200
    report = response.get_json()
    rows = {row["line"]: row for row in report["rows"]}
    ana, shop, dee = rows[2]["id"], rows[3]["id"], rows[11]["id"]
    assert len({ana, shop, dee, existing_id}) == 4
    assert report["rows"] == [
        {"line": 2, "outcome": "created", "id": ana},
        {"line": 3, "outcome": "created", "id": shop},
        {"line": 4, "outcome": "duplicate", "id": ana},
        {"line": 5, "outcome": "duplicate", "id": existing_id},
        *INVALID_ROWS,
        {"line": 11, "outcome": "created", "id": dee},
        {"line": 12, "outcome": "duplicate", "id": dee},
    ]
    assert report["counts"] == {"created": 3, "duplicate": 3, "invalid": 4}
    assert report["dry_run"] is False and report["campaign"]
    assert totals(client)["total"] == before + 3
    stored = {p["email"]: p for p in pledges_of(client, keys["admin"], "block-club")}
    assert set(stored) == {"ana@example.org", "shop@example.org", "dee@example.org"}
    assert stored["shop@example.org"]["name"] == "Corner Shop" and stored["shop@example.org"]["show_name"]
    assert stored["dee@example.org"]["show_name"] is False
    assert {p["intake_key"] for p in stored.values()} == {"block-club"}
    assert {p["status"] for p in stored.values()} == {"counted"}
    # A sheet's people are not the uploader's address: no address is linked to them.
    assert {p["address_hash"] for p in stored.values()} == {None}
    [entry] = imports_in_audit(client, keys["admin"])
    assert entry["actor"] == "block-club"
    assert entry["details"] == {"created": 3, "duplicate": 3, "invalid": 4}


def test_a_dry_run_reports_the_same_and_writes_nothing(client, keys, existing_id):
    before = totals(client)

    response = send_csv(client, keys["intake"], SHEET, "?dry_run=true")

    assert response.status_code == 200
    report = response.get_json()
    assert report["dry_run"] is True
    assert report["rows"] == [
        {"line": 2, "outcome": "created"},
        {"line": 3, "outcome": "created"},
        {"line": 4, "outcome": "duplicate"},
        {"line": 5, "outcome": "duplicate", "id": existing_id},
        *INVALID_ROWS,
        {"line": 11, "outcome": "created"},
        {"line": 12, "outcome": "duplicate"},
    ]
    assert report["counts"] == {"created": 3, "duplicate": 3, "invalid": 4}
    assert totals(client) == before
    assert pledges_of(client, keys["admin"], "block-club") == []
    assert imports_in_audit(client, keys["admin"]) == []


@BOTH_BACKENDS
def test_sending_the_same_sheet_again_creates_nothing_new(client, keys, existing_id):
    first = send_csv(client, keys["intake"], SHEET).get_json()
    after_first = totals(client)

    again = send_csv(client, keys["intake"], SHEET)

    assert again.status_code == 200
    report = again.get_json()
    assert report["counts"] == {"created": 0, "duplicate": 6, "invalid": 4}
    ids = {row["line"]: row.get("id") for row in first["rows"]}
    valid = [(row["line"], row["outcome"], row.get("id")) for row in report["rows"] if "fields" not in row]
    assert valid == [(line, "duplicate", ids[line]) for line in (2, 3, 4, 5, 11, 12)]
    assert totals(client) == after_first
    assert len(pledges_of(client, keys["admin"], "block-club")) == 3
    assert [e["details"] for e in imports_in_audit(client, keys["admin"])][0] == {
        "created": 0,
        "duplicate": 6,
        "invalid": 4,
    }


def many_rows(count: int) -> str:
    rows = (f"resident,allentown,n{i}@example.org\n" for i in range(count))
    return "kind,neighborhood,email\n" + "".join(rows)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "says"),
    [
        ("kind,hood,email\nresident,allentown,a@example.org\n", "text/csv", 400, "bad_request", "first row"),
        ("kind,neighborhood\nresident,allentown\n", "text/csv", 400, "bad_request", "first row"),
        ("kind,email,email,neighborhood\n", "text/csv", 400, "bad_request", "first row"),
        (
            "kind,neighborhood,email,name\nbusiness,central,caf\xe9@example.org,Caf\xe9\n".encode("latin-1"),
            "text/csv",
            400,
            "bad_request",
            "UTF-8",
        ),
        ('{"pledges": [', "application/json", 400, "bad_request", "JSON"),
        ('{"rows": []}', "application/json", 400, "bad_request", '{"pledges"'),
        (many_rows(1), "text/plain", 415, "unsupported_media_type", "text/csv"),
        (many_rows(1), "application/x-www-form-urlencoded", 415, "unsupported_media_type", "text/csv"),
        (many_rows(5001), "text/csv", 413, "payload_too_large", "5000"),
    ],
    ids=[
        "unknown-column",
        "missing-column",
        "repeated-column",
        "not-utf8",
        "broken-json",
        "no-pledges-list",
        "text-plain",
        "form",
        "5001-rows",
    ],
)
def test_a_sheet_that_cannot_be_read_changes_nothing_and_says_why(
    client, keys, body, content_type, status, code, says
):
    before = totals(client)
    data = body.encode() if isinstance(body, str) else body

    response = client.post(IMPORT_URL, data=data, content_type=content_type, headers=bearer(keys["intake"]))

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code and says in error["message"]
    assert totals(client) == before
    assert pledges_of(client, keys["admin"], "block-club") == []
    assert imports_in_audit(client, keys["admin"]) == []


def test_a_body_over_import_max_bytes_is_refused_unread(database_url, tmp_path):
    app = make_app(database_url, tmp_path, IMPORT_MAX_BYTES=4096)
    with app.app_context():
        upgrade()
        seed(goal=100)
    client = app.test_client()
    token = make_key(app, "block-club", scope="intake")
    sheet = many_rows(200)  # about 7 KiB
    assert 4096 < len(sheet) < 16 * 1024

    response = send_csv(client, token, sheet)

    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
    assert totals(client)["total"] == 0


def test_the_whole_5000_rows_are_taken_past_the_16_kib_limit_of_other_routes(client, keys):
    sheet = many_rows(5000)
    assert len(sheet) > 100 * 1024

    response = send_csv(client, keys["intake"], sheet, "?dry_run=1")

    assert response.status_code == 200
    assert response.get_json()["counts"] == {"created": 5000, "duplicate": 0, "invalid": 0}
    big_pledge = client.post(
        "/api/v1/campaigns/current/pledges",
        json={"kind": "business", "neighborhood": "central", "email": "a@example.org", "name": "x" * 20_000},
        headers=bearer(keys["intake"]),
    )
    assert big_pledge.status_code == 413


def test_the_json_form_reports_lines_as_positions_from_one(client, keys):
    pledges = [
        {"kind": "resident", "neighborhood": "allentown", "email": "json1@example.org"},
        {"kind": "business", "neighborhood": "central", "email": "json2@example.org", "name": "Deli"},
        "not a pledge",
        {"kind": "resident", "neighborhood": "allentown", "email": "JSON1@example.org"},
        {"kind": "resident", "neighborhood": "allentown", "email": "json3@example.org", "show_name": "yes"},
        {"kind": "resident", "neighborhood": "allentown", "email": "json4@example.org", "age": 40},
    ]
    before = totals(client)["total"]

    response = client.post(IMPORT_URL, json={"pledges": pledges}, headers=bearer(keys["intake"]))

    assert response.status_code == 200
    report = response.get_json()
    first, deli = report["rows"][0]["id"], report["rows"][1]["id"]
    assert report["rows"] == [
        {"line": 1, "outcome": "created", "id": first},
        {"line": 2, "outcome": "created", "id": deli},
        {"line": 3, "outcome": "invalid", "fields": {"_schema": ["Send the pledge as a JSON object."]}},
        {"line": 4, "outcome": "duplicate", "id": first},
        {"line": 5, "outcome": "invalid", "fields": {"show_name": ["Answer with true or false."]}},
        {"line": 6, "outcome": "invalid", "fields": {"age": ["This field is not part of a pledge."]}},
    ]
    assert report["counts"] == {"created": 2, "duplicate": 1, "invalid": 3}
    assert totals(client)["total"] == before + 2


def test_only_an_intake_or_admin_key_may_import(client, keys):
    assert send_csv(client, keys["read"], SHEET).status_code == 403
    assert send_csv(client, keys["read"], SHEET).get_json()["error"]["code"] == "forbidden"
    anonymous = client.post(IMPORT_URL, data=SHEET, content_type="text/csv")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthorized"
    assert send_csv(client, "pl_not_a_key", SHEET).status_code == 401
    # A stranger's big body is refused for what it is, not for its size.
    assert client.post(IMPORT_URL, data=many_rows(1000), content_type="text/csv").status_code == 401
    assert totals(client)["total"] == 0
    by_admin = send_csv(client, keys["admin"], SHEET)
    assert by_admin.status_code == 200 and by_admin.get_json()["counts"]["created"] == 4


def test_imported_pledges_wait_for_their_mail_which_the_cli_sends_later(database_url, tmp_path, smtp):
    inbox, port = smtp
    app = make_app(
        database_url,
        tmp_path,
        PLEDGE_CONFIRMATION="email",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=port,
        PUBLIC_URL="http://localhost",
    )
    with app.app_context():
        upgrade()
        seed(goal=100)
    client = app.test_client()
    token = make_key(app, "block-club", scope="intake")

    response = send_csv(client, token, many_rows(3))

    assert response.get_json()["counts"] == {"created": 3, "duplicate": 0, "invalid": 0}
    assert inbox.messages == []  # none sent inside the request
    admin = make_key(app, "mayor", scope="admin")
    assert {(p["status"], p["pending_reason"]) for p in pledges_of(client, admin, "block-club")} == {
        ("pending", "confirm_email")
    }
    assert totals(client)["total"] == 0
    result = app.test_cli_runner().invoke(args=["pledges", "send-confirmations"])
    assert result.exit_code == 0, result.output
    assert sorted(m["To"] for m in inbox.messages) == [f"n{i}@example.org" for i in range(3)]


def sign_in_admin(client, token: str) -> None:
    form = {"key": token, "csrf_token": csrf_token(client, "/admin/sign-in")}
    assert client.post("/admin/sign-in", data=form).status_code == 303


HIDDEN_SHEET = re.compile(r'name="sheet" value="([^"]+)"')


def test_an_admin_previews_a_sheet_then_imports_it_with_one_more_click(client, keys, existing_id):
    assert client.get("/admin/import").status_code == 303  # signed out: to the sign-in page
    sign_in_admin(client, keys["admin"])
    form = client.get("/admin/import")
    assert form.status_code == 200 and form.headers["Cache-Control"] == "no-store"
    token = csrf_token(client, "/admin/import")
    before = totals(client)["total"]

    preview = client.post(
        "/admin/import",
        data={"csrf_token": token, "sheet_file": (io.BytesIO(SHEET.encode()), "sheet.csv")},
        content_type="multipart/form-data",
    )

    assert preview.status_code == 200 and preview.headers["Cache-Control"] == "no-store"
    page = preview.get_data(as_text=True)
    assert "Import 3 pledges" in page and "Write yes or no (or leave the cell empty)." in page
    assert totals(client)["total"] == before
    carried = HIDDEN_SHEET.search(page).group(1)
    without_token = client.post("/admin/import/confirm", data={"sheet": carried})
    assert without_token.status_code == 400
    assert totals(client)["total"] == before

    done = client.post(
        "/admin/import/confirm",
        data={"csrf_token": token, "sheet": carried},
        content_type="multipart/form-data",
    )

    assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
    assert "3 pledges imported" in done.get_data(as_text=True)
    assert totals(client)["total"] == before + 3
    assert {p["intake_key"] for p in pledges_of(client, keys["admin"], "mayor")} == {"mayor"}
    assert len(pledges_of(client, keys["admin"], "mayor")) == 3
    [entry] = imports_in_audit(client, keys["admin"])
    assert entry["actor"] == "mayor"


def test_the_upload_page_says_why_a_file_cannot_be_read(client, keys):
    sign_in_admin(client, keys["admin"])
    token = csrf_token(client, "/admin/import")

    response = client.post(
        "/admin/import",
        data={"csrf_token": token, "sheet_file": (io.BytesIO(b"name,email\nAna,a@example.org\n"), "x.csv")},
        content_type="multipart/form-data",
    )

    assert response.status_code == 400
    assert "The first row must name the columns" in response.get_data(as_text=True)


def test_a_sign_up_table_imports_a_sheet_under_its_own_key(client, keys):
    form = {"key": keys["intake"], "csrf_token": csrf_token(client, "/signup/sign-in")}
    assert client.post("/signup/sign-in", data=form).status_code == 303
    token = csrf_token(client, "/signup/import")
    preview = client.post(
        "/signup/import",
        data={"csrf_token": token, "sheet_file": (io.BytesIO(many_rows(2).encode()), "sheet.csv")},
        content_type="multipart/form-data",
    )
    carried = HIDDEN_SHEET.search(preview.get_data(as_text=True)).group(1)

    done = client.post(
        "/signup/import/confirm",
        data={"csrf_token": token, "sheet": carried},
        content_type="multipart/form-data",
    )

    assert done.status_code == 200 and "2 pledges imported" in done.get_data(as_text=True)
    assert totals(client)["total"] == 2
    assert len(pledges_of(client, keys["admin"], "block-club")) == 2


def test_a_full_sheet_goes_through_the_pages_past_every_form_limit(client, keys):
    """5,000 rows with names: the preview's hidden field is over werkzeug's 500 kB limit for a field."""
    sign_in_admin(client, keys["admin"])
    token = csrf_token(client, "/admin/import")
    rows = (f"resident,allentown,full{i}@example.org,{'Neighbor ' * 6}{i}\n" for i in range(5000))  # <= 60
    sheet = ("kind,neighborhood,email,name\n" + "".join(rows)).encode()
    assert len(sheet) * 4 / 3 > 500_000

    preview = client.post(
        "/admin/import",
        data={"csrf_token": token, "sheet_file": (io.BytesIO(sheet), "sheet.csv")},
        content_type="multipart/form-data",
    )
    assert preview.status_code == 200 and "Import 5000 pledges" in preview.get_data(as_text=True)
    carried = HIDDEN_SHEET.search(preview.get_data(as_text=True)).group(1)
    done = client.post(
        "/admin/import/confirm",
        data={"csrf_token": token, "sheet": carried},
        content_type="multipart/form-data",
    )

    assert done.status_code == 200 and "5000 pledges imported" in done.get_data(as_text=True)
    assert totals(client)["total"] == 5000


def test_a_spreadsheet_export_is_read_as_the_spreadsheet_shows_it(client, keys):
    """A byte-order mark, columns in any order, a quoted cell over two lines, an unquoted comma."""
    sheet = (
        "\ufeffEmail,Kind,Neighborhood,Name\r\n"
        'bom@example.org,business,central,"Corner\r\nShop"\r\n'  # row 2, over two lines of the file
        "comma@example.org,business,central,Smith, John\r\n"  # row 3: one cell too many
        "after@example.org,resident,allentown,\r\n"  # row 4
    )

    response = send_csv(client, keys["intake"], sheet.encode(), "?dry_run=true")

    assert response.status_code == 200
    assert response.get_json()["rows"] == [
        {
            "line": 2,
            "outcome": "invalid",
            "fields": {
                "name": [
                    "A name cannot contain control characters such as line breaks.",
                    "Enter the business's name: businesses are listed by name.",
                ]
            },
        },
        {
            "line": 3,
            "outcome": "invalid",
            "fields": {"_schema": ["This row has more cells than the header has columns."]},
        },
        {"line": 4, "outcome": "created"},
    ]
