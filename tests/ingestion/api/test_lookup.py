"""GET lookups against a small published snapshot made here."""

from __future__ import annotations

from datetime import datetime

import duckdb
from fastapi.testclient import TestClient

from ingestion.config import Settings
from tests.ingestion.api.conftest import AUTH

ROWS = [
    # survey_id, flight_id, survey_submitted_at, age, satisfaction, passenger_name
    ("S-3", "CX88-20240501", datetime(2024, 5, 2, 9, 0), 30, "satisfied", "Ann Lee"),
    ("S-1", "CX88-20240501", datetime(2024, 5, 1, 22, 5), 41, "dissatisfied", "Bo Chan"),
    ("S-2", "CX88-20240501", None, 55, "satisfied", "Cy Wu"),
    ("S-9", "BA15-20240502", datetime(2024, 5, 3, 7, 30), 62, "satisfied", "Di Ng"),
]


def publish_snapshot(settings: Settings, *, with_table: bool = True) -> None:
    path = settings.serving_path
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = duckdb.connect(str(path))
    try:
        conn.execute("create schema marts")
        if with_table:
            conn.execute(
                "create table marts.fct_survey_responses (survey_id varchar, flight_id varchar, "
                "survey_submitted_at timestamp, age integer, satisfaction varchar, "
                "passenger_name varchar)"
            )
            conn.executemany(
                "insert into marts.fct_survey_responses values (?, ?, ?, ?, ?, ?)", ROWS
            )
    finally:
        conn.close()


def test_lookups_before_any_snapshot_are_503(client: TestClient):
    survey = client.get("/v1/surveys/S-1", headers=AUTH)
    flight = client.get("/v1/flights/CX88-20240501/surveys", headers=AUTH)

    assert survey.status_code == flight.status_code == 503
    assert "no published snapshot yet" in survey.json()["errors"][0]["reason"]


def test_snapshot_without_the_fact_table_is_503(client: TestClient, settings: Settings):
    publish_snapshot(settings, with_table=False)
    response = client.get("/v1/surveys/S-1", headers=AUTH)
    assert response.status_code == 503
    assert "fct_survey_responses" in response.json()["errors"][0]["reason"]


def test_survey_by_id_without_pii(client: TestClient, settings: Settings):
    publish_snapshot(settings)
    response = client.get("/v1/surveys/S-1", headers=AUTH)

    assert response.status_code == 200
    assert response.json() == {
        "survey_id": "S-1",
        "flight_id": "CX88-20240501",
        "survey_submitted_at": "2024-05-01T22:05:00",
        "age": 41,
        "satisfaction": "dissatisfied",
    }
    missing = client.get("/v1/surveys/S-404", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["path"] == "survey_id"


def test_surveys_of_a_flight_in_submission_order(client: TestClient, settings: Settings):
    publish_snapshot(settings)
    flight = "CX88-20240501"
    expected = sorted(
        (r for r in ROWS if r[1] == flight), key=lambda r: (r[2] is None, r[2] or datetime.min)
    )
    response = client.get(f"/v1/flights/{flight}/surveys", headers=AUTH)

    body = response.json()
    assert response.status_code == 200
    assert [s["survey_id"] for s in body["surveys"]] == [r[0] for r in expected]
    assert (body["count"], body["truncated"]) == (3, False)
    assert all("passenger_name" not in s for s in body["surveys"])

    first_two = client.get(f"/v1/flights/{flight}/surveys?limit=2", headers=AUTH).json()
    assert [s["survey_id"] for s in first_two["surveys"]] == [r[0] for r in expected[:2]]
    assert (first_two["count"], first_two["truncated"]) == (2, True)

    bad_limit = client.get(f"/v1/flights/{flight}/surveys?limit=0", headers=AUTH)
    assert bad_limit.status_code == 422
    assert bad_limit.json()["errors"][0]["path"] == "limit"
    assert client.get("/v1/flights/XX1-20240101/surveys", headers=AUTH).status_code == 404


def test_a_newly_published_snapshot_is_seen_by_the_next_request(
    client: TestClient, settings: Settings
):
    publish_snapshot(settings)
    assert client.get("/v1/surveys/S-NEW", headers=AUTH).status_code == 404
    replacement = settings.serving_path.with_name("next.duckdb")
    conn = duckdb.connect(str(replacement))
    conn.execute("create schema marts")
    conn.execute("create table marts.fct_survey_responses (survey_id varchar, flight_id varchar)")
    conn.execute("insert into marts.fct_survey_responses values ('S-NEW', 'XY1-20240101')")
    conn.close()
    replacement.replace(settings.serving_path)

    assert client.get("/v1/surveys/S-NEW", headers=AUTH).json() == {
        "survey_id": "S-NEW",
        "flight_id": "XY1-20240101",
    }
