"""POST /v1/surveys through the ASGI app: acceptance, validation, batches, auth, limits, retries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingestion.config import REPO_ROOT
from ingestion.events import EventEnvelope
from ingestion.schema import RATING_COLUMNS
from tests.ingestion.api.conftest import AUTH, ClientFactory, RecordingBuffer, make_survey

URL = "/v1/surveys"


def post(client: TestClient, body: Any, **headers: str) -> Any:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(
        URL, content=content, headers={**AUTH, "Content-Type": "application/json", **headers}
    )


def envelopes(buffer: RecordingBuffer) -> list[dict[str, Any]]:
    return [json.loads(record) for record in buffer.records]


def test_single_survey_is_journaled_as_an_envelope(client: TestClient, buffer: RecordingBuffer):
    survey = make_survey(age=33, seat_comfort=0, inflight_service=None)
    response = post(client, survey)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "accepted" and body["replayed"] is False
    assert len(body["event_id"]) == 32
    assert body["survey_id"] == "SRV-" + body["event_id"][:16]
    EventEnvelope.model_validate_json(buffer.records[0])  # the shared envelope contract
    [record] = envelopes(buffer)
    assert record["event_id"] == body["event_id"]
    assert record["event_type"] == "survey_submitted"
    assert record["schema_version"] == 1
    assert "T" in record["submitted_at"]
    expected = {k: v for k, v in survey.items() if v is not None}
    assert record["survey"] == {**expected, "survey_id": body["survey_id"]}


def test_enrichment_fields_pass_through_and_timestamps_become_naive_utc(
    client: TestClient, buffer: RecordingBuffer
):
    survey = make_survey(
        survey_id="S-1",
        carrier_code="CX",
        flight_number=88,
        flight_date="2024-05-01",
        origin_airport="HKG",
        destination_airport="LHR",
        scheduled_departure_at="2024-05-01T10:00:00+02:00",
    )
    response = post(client, survey)

    assert response.status_code == 202, response.text
    assert response.json()["survey_id"] == "S-1"
    [record] = envelopes(buffer)
    assert record["survey"]["survey_id"] == "S-1"
    assert record["survey"]["scheduled_departure_at"] == "2024-05-01T08:00:00"
    assert record["survey"]["flight_date"] == "2024-05-01"


def test_one_error_per_invalid_field(client: TestClient, buffer: RecordingBuffer):
    response = post(client, make_survey(age=-1, gender="X", seat_comfort=9))

    assert response.status_code == 422
    errors = response.json()["errors"]
    assert sorted(e["path"] for e in errors) == ["age", "gender", "seat_comfort"]
    assert all(e["reason"] for e in errors)
    assert buffer.adds == []


# Malformed bodies: (case, body, extra headers, status, error path, words the reason holds).
SURVEY = make_survey()
MALFORMED: list[tuple[str, bytes, dict[str, str], int, str, str]] = [
    ("truncated JSON", b'{"age": 41', {}, 422, "body", "not valid JSON"),
    ("empty body", b"", {}, 422, "body", "empty body"),
    ("whitespace only", b"  \n", {}, 422, "body", "empty body"),
    ("a number", b"42", {}, 422, "body", "got number"),
    ("a string", b'"survey"', {}, 422, "body", "got string"),
    ("null", b"null", {}, 422, "body", "got null"),
    ("empty array", b"[]", {}, 422, "body", "empty array"),
    ("invalid UTF-8", b'{"gender": "\xff\xfe"}', {}, 422, "body", "not valid JSON"),
    ("trailing garbage", json.dumps(SURVEY).encode() + b" x", {}, 422, "body", "trailing"),
    ("age as text", json.dumps({**SURVEY, "age": "41"}).encode(), {}, 422, "age", "integer"),
    ("age as boolean", json.dumps({**SURVEY, "age": True}).encode(), {}, 422, "age", "integer"),
    ("age fractional", json.dumps({**SURVEY, "age": 41.5}).encode(), {}, 422, "age", "integer"),
    ("age too high", json.dumps({**SURVEY, "age": 130}).encode(), {}, 422, "age", "120"),
    (
        "rating out of range",
        json.dumps({**SURVEY, "seat_comfort": 6}).encode(),
        {},
        422,
        "seat_comfort",
        "less than or equal to 5",
    ),
    (
        "negative delay",
        json.dumps({**SURVEY, "departure_delay_minutes": -3}).encode(),
        {},
        422,
        "departure_delay_minutes",
        "greater than or equal to 0",
    ),
    (
        "unknown class",
        json.dumps({**SURVEY, "travel_class": "First"}).encode(),
        {},
        422,
        "travel_class",
        "'Eco', 'Eco Plus' or 'Business'",
    ),
    (
        "missing answer",
        json.dumps({k: v for k, v in SURVEY.items() if k != "satisfaction"}).encode(),
        {},
        422,
        "satisfaction",
        "required field is missing",
    ),
    (
        "misspelt field",
        json.dumps({**SURVEY, "gendr": "Male"}).encode(),
        {},
        422,
        "gendr",
        "did you mean 'gender'",
    ),
    (
        "impossible date",
        json.dumps({**SURVEY, "flight_date": "2024-13-01"}).encode(),
        {},
        422,
        "flight_date",
        "date",
    ),
    (
        "lower-case carrier",
        json.dumps({**SURVEY, "carrier_code": "cx"}).encode(),
        {},
        422,
        "carrier_code",
        "pattern",
    ),
    (
        "not JSON content type",
        json.dumps(SURVEY).encode(),
        {"Content-Type": "text/csv"},
        415,
        "Content-Type",
        "application/json",
    ),
    (
        "501 surveys",
        json.dumps([SURVEY] * 501).encode(),
        {},
        422,
        "body",
        "at most 500",
    ),
    (
        "idempotency key too long",
        json.dumps(SURVEY).encode(),
        {"Idempotency-Key": "k" * 256},
        422,
        "Idempotency-Key",
        "1 to 255",
    ),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "path", "words"),
    [case[1:] for case in MALFORMED],
    ids=[case[0] for case in MALFORMED],
)
def test_malformed_body_is_refused_with_a_clear_error(
    client: TestClient,
    buffer: RecordingBuffer,
    body: bytes,
    headers: dict[str, str],
    status: int,
    path: str,
    words: str,
):
    response = post(client, body, **headers)

    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    matching = [e for e in errors if e["path"] == path]
    assert matching, errors
    assert words in matching[0]["reason"], matching[0]["reason"]
    assert buffer.adds == []


def test_batch_with_bad_items_reports_each_and_journals_the_good(
    client: TestClient, buffer: RecordingBuffer
):
    good = [make_survey(age=20), make_survey(age=30), make_survey(age=40)]
    batch = [good[0], {**SURVEY, "age": "x"}, good[1], 7, good[2]]
    response = post(client, batch)

    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (3, 2)
    statuses = [(r["index"], r["status"]) for r in body["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
        (3, "rejected"),
        (4, "accepted"),
    ]
    assert body["results"][1]["errors"][0]["path"] == "age"
    assert body["results"][3]["errors"][0] == {
        "path": "survey",
        "reason": "expected a survey object, got number",
    }
    records = envelopes(buffer)
    assert [r["survey"]["age"] for r in records] == [20, 30, 40]
    accepted_ids = [r["event_id"] for r in body["results"] if r["status"] == "accepted"]
    assert [r["event_id"] for r in records] == accepted_ids
    assert len(set(accepted_ids)) == 3


def test_all_good_batch_is_202_and_all_bad_batch_is_422(
    client: TestClient, buffer: RecordingBuffer
):
    ages = [18 + i % 90 for i in range(500)]  # 500, the maximum
    ok = post(client, [make_survey(age=age) for age in ages])
    assert ok.status_code == 202
    assert (ok.json()["accepted"], ok.json()["rejected"]) == (500, 0)
    assert [json.loads(r)["survey"]["age"] for r in buffer.records] == ages

    bad = post(client, [{**SURVEY, "age": -1}, {**SURVEY, "gender": None}])
    assert bad.status_code == 422
    assert (bad.json()["accepted"], bad.json()["rejected"]) == (0, 2)
    assert len(buffer.records) == 500


def test_api_key_is_required(client: TestClient, buffer: RecordingBuffer):
    missing = client.post(URL, json=SURVEY)
    wrong = client.post(URL, json=SURVEY, headers={"X-API-Key": "test-key-3"})
    second_key = client.post(URL, json=SURVEY, headers={"X-API-Key": "test-key-2"})

    assert missing.status_code == 401
    assert "missing API key" in missing.json()["errors"][0]["reason"]
    assert wrong.status_code == 401
    assert "invalid API key" in wrong.json()["errors"][0]["reason"]
    assert second_key.status_code == 202
    assert len(buffer.records) == 1
    lookup = client.get("/v1/surveys/S-1")
    assert lookup.status_code == 401


def test_no_keys_refuses_to_start_unless_explicitly_insecure(
    make_client: ClientFactory, buffer: RecordingBuffer
):
    from ingestion.errors import ContrailError

    with pytest.raises(ContrailError, match="--insecure-no-auth"):
        make_client(api_keys=frozenset())
    open_client = make_client(api_keys=frozenset(), allow_no_auth=True)
    assert open_client.post(URL, json=SURVEY).status_code == 202


def test_body_over_the_limit_is_413(make_client: ClientFactory, buffer: RecordingBuffer):
    client = make_client(max_body_bytes=2_000)
    small = post(client, make_survey())
    large = post(client, [make_survey()] * 10)
    chunked = client.post(
        URL,
        content=iter([json.dumps([make_survey()] * 10).encode()]),
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert small.status_code == 202
    assert large.status_code == 413
    assert "larger than 2000 bytes" in large.json()["errors"][0]["reason"]
    assert chunked.status_code == 413
    assert len(buffer.records) == 1


def test_idempotency_key_retry_returns_the_same_ids_and_buffers_once(
    client: TestClient, buffer: RecordingBuffer
):
    first = post(client, make_survey(), **{"Idempotency-Key": "order-77"})
    retry = post(client, make_survey(), **{"Idempotency-Key": "order-77"})
    other = post(client, make_survey(age=50), **{"Idempotency-Key": "order-77"})

    assert first.status_code == retry.status_code == 202
    assert (retry.json()["event_id"], retry.json()["survey_id"]) == (
        first.json()["event_id"],
        first.json()["survey_id"],
    )
    assert retry.json()["replayed"] is True
    assert other.status_code == 409
    assert other.json()["errors"][0]["path"] == "Idempotency-Key"
    assert len(buffer.records) == 1


def test_idempotency_key_gives_the_same_event_id_after_a_restart(
    make_client: ClientFactory, buffer: RecordingBuffer
):
    first = post(make_client(), make_survey(), **{"Idempotency-Key": "k-1"})
    after_restart = post(make_client(), make_survey(), **{"Idempotency-Key": "k-1"})

    # A new process has forgotten the key but derives the same ids; staging drops the copy.
    assert after_restart.json()["event_id"] == first.json()["event_id"]
    assert after_restart.json()["replayed"] is False
    assert [json.loads(r)["event_id"] for r in buffer.records] == [first.json()["event_id"]] * 2


def test_batch_retry_with_a_key_replays_each_item(client: TestClient, buffer: RecordingBuffer):
    batch = [make_survey(age=21), make_survey(age=22)]
    first = post(client, batch, **{"Idempotency-Key": "batch-9"})
    retry = post(client, batch, **{"Idempotency-Key": "batch-9"})

    ids = [(r["event_id"], r["survey_id"]) for r in first.json()["results"]]
    assert [(r["event_id"], r["survey_id"]) for r in retry.json()["results"]] == ids
    assert len(set(ids)) == 2
    assert [r["replayed"] for r in retry.json()["results"]] == [True, True]
    assert len(buffer.records) == 2


def test_own_survey_id_makes_retries_safe_and_corrections_new_events(
    client: TestClient, buffer: RecordingBuffer
):
    first = post(client, make_survey(survey_id="KIOSK-1"))
    retry = post(client, make_survey(survey_id="KIOSK-1"))
    corrected = post(client, make_survey(survey_id="KIOSK-1", age=42))
    in_one_batch = post(client, [make_survey(survey_id="KIOSK-2")] * 2)

    assert retry.json()["event_id"] == first.json()["event_id"]
    assert retry.json()["replayed"] is True
    assert corrected.status_code == 202
    assert corrected.json()["event_id"] != first.json()["event_id"]
    assert corrected.json()["survey_id"] == "KIOSK-1"
    results = in_one_batch.json()["results"]
    assert results[0]["event_id"] == results[1]["event_id"]
    ages = [(r["survey"]["survey_id"], r["survey"]["age"]) for r in envelopes(buffer)]
    assert ages == [("KIOSK-1", 41), ("KIOSK-1", 42), ("KIOSK-2", 41)]


def test_journal_failure_is_503_and_the_key_is_not_remembered(
    client: TestClient, buffer: RecordingBuffer
):
    buffer.fail = OSError(28, "No space left on device")
    failed = post(client, make_survey(), **{"Idempotency-Key": "k-disk"})
    buffer.fail = None
    retried = post(client, make_survey(), **{"Idempotency-Key": "k-disk"})

    assert failed.status_code == 503
    assert "No space left on device" in failed.json()["errors"][0]["reason"]
    assert retried.status_code == 202
    assert retried.json()["replayed"] is False
    assert len(buffer.records) == 1


def test_metrics_count_accepted_rejected_buffered_and_requests(
    client: TestClient, buffer: RecordingBuffer
):
    post(client, make_survey())
    post(client, [make_survey(), {**SURVEY, "age": -5}, make_survey()])
    post(client, {**SURVEY, "age": "old"})
    client.post(URL, json=SURVEY)  # no key

    text = client.get("/metrics").text
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["contrail_api_surveys_accepted_total"] == 3
    assert samples["contrail_api_surveys_rejected_total"] == 2
    assert samples["contrail_api_buffered_records"] == 3
    assert samples["contrail_api_buffered_bytes"] == sum(map(len, buffer.records))
    assert samples["contrail_api_journal_seconds_count"] == 2
    assert samples['contrail_api_flush_seconds_bucket{le="+Inf"}'] == 0
    route = 'contrail_api_requests_total{method="POST",route="/v1/surveys",status="%s"}'
    assert samples[route % 202] == 1
    assert samples[route % 207] == 1
    assert samples[route % 422] == 1
    assert samples[route % 401] == 1
    assert "# TYPE contrail_api_flush_seconds histogram" in text


def test_healthz(client: TestClient):
    post(client, make_survey())
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["buffered_records"] == 1


def test_background_task_flushes_what_is_due(make_client: ClientFactory, buffer: RecordingBuffer):
    import time

    make_client(flush_poll_s=0.01)
    deadline = time.monotonic() + 5
    while buffer.flush_due_calls < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert buffer.flush_due_calls >= 3


def test_shutdown_delivers_everything_buffered(settings, buffer: RecordingBuffer):
    from ingestion.api import ApiConfig, create_app

    app = create_app(settings, ApiConfig(allow_no_auth=True), buffer)
    with TestClient(app) as client:
        post(client, make_survey())
        assert buffer.flushes == 0
    assert buffer.flushes == 1


def test_openapi_is_served_and_the_committed_copy_is_current(client: TestClient):
    from ingestion.api_server import openapi_text

    served = client.get("/openapi.json").json()
    committed = (REPO_ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert json.loads(committed) == served, "regenerate: python -m ingestion.api_server"
    assert committed == openapi_text()
    schema = served["components"]["schemas"]["Survey"]
    assert set(RATING_COLUMNS) <= set(schema["properties"])
    assert "/v1/flights/{flight_id}/surveys" in served["paths"]
    assert client.get("/docs").status_code == 404  # no UI that loads assets from the internet
