"""Event records, ids and validation of bodies, below the HTTP layer."""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import datetime

import httpx

from ingestion.api import ApiConfig, create_app
from ingestion.api.records import Identity, event_record, identify, survey_json
from ingestion.api.validation import FieldError, parse_body
from ingestion.config import Settings
from ingestion.events import Survey, envelope
from tests.ingestion.api.conftest import AUTH, RecordingBuffer, make_survey


def test_event_record_is_the_shared_envelope():
    survey = Survey.model_validate(make_survey(arrival_delay_minutes=None, cleanliness=None))
    identity = Identity(None, uuid.uuid4().hex, "SRV-abc", None)
    at = datetime(2024, 5, 1, 12, 30, 15, 250000)

    record = event_record(survey_json(survey), identity, at)

    fields = {k: v for k, v in make_survey().items() if k not in ("arrival_delay_minutes",)}
    del fields["cleanliness"]
    expected = envelope(
        {"survey_id": "SRV-abc", **fields}, event_id=identity.event_id, submitted_at=at
    )
    assert json.loads(record) == expected


def test_ids_from_header_key_survey_id_or_random():
    plain = Survey.model_validate(make_survey())
    own = Survey.model_validate(make_survey(survey_id="K-7"))
    keyed = identify(plain, survey_json(plain), "abc", None)
    keyed_item = identify(plain, survey_json(plain), "abc", 3)

    assert keyed.event_id == identify(plain, survey_json(plain), "abc", None).event_id
    assert keyed.survey_id == "SRV-" + keyed.event_id[:16]
    assert keyed_item.event_id not in (keyed.event_id,)
    assert uuid.UUID(keyed.event_id).version == 5

    by_survey = identify(own, survey_json(own), None, None)
    assert by_survey.survey_id == "K-7"
    assert by_survey.event_id == identify(own, survey_json(own), None, None).event_id
    changed = Survey.model_validate(make_survey(survey_id="K-7", age=70))
    assert identify(changed, survey_json(changed), None, None).event_id != by_survey.event_id

    first = identify(plain, survey_json(plain), None, None)
    second = identify(plain, survey_json(plain), None, None)
    assert first.key is None and first.event_id != second.event_id
    assert uuid.UUID(first.event_id).version == 4


def test_batch_validation_keeps_good_items_and_errors_per_item():
    body = json.dumps(
        [make_survey(age=1), {"age": 2}, make_survey(age=3, extra_field=1), make_survey(age=4)]
    ).encode()
    parsed = parse_body(body, max_batch=10)

    assert parsed.is_batch
    assert [item.age for item in parsed.items if isinstance(item, Survey)] == [1, 4]
    required = [name for name, info in Survey.model_fields.items() if info.is_required()]
    assert [e.path for e in parsed.items[1]] == [name for name in required if name != "age"]
    assert parsed.items[2] == [
        FieldError(
            "extra_field",
            "unknown field; surveys use the canonical field names of the Survey schema",
        )
    ]


def test_concurrent_requests_share_one_journal_write(settings: Settings):
    class SlowBuffer(RecordingBuffer):
        def __init__(self) -> None:
            super().__init__()
            self.threads: set[int] = set()

        def add(self, records: list[bytes]) -> list[str]:
            self.threads.add(threading.get_ident())
            time.sleep(0.05)  # an fsync on a slow disk
            return super().add(records)

    buffer = SlowBuffer()
    app = create_app(settings, ApiConfig(api_keys=frozenset({AUTH["X-API-Key"]})), buffer)

    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            return await asyncio.gather(
                *(
                    http.post("/v1/surveys", json=make_survey(age=20 + i), headers=AUTH)
                    for i in range(20)
                )
            )

    responses = asyncio.run(post_all())

    assert [r.status_code for r in responses] == [202] * 20
    assert sorted(json.loads(r)["survey"]["age"] for r in buffer.records) == list(range(20, 40))
    assert len(buffer.adds) < 20 / 2  # grouped: many requests per journal write
    assert threading.get_ident() not in buffer.threads  # never on the event loop's thread
