"""Streamed survey events: the survey a client posts, and the envelope it travels in.

A client posts canonical survey fields (``schema.SURVEY_COLUMNS``), optionally with the
enrichment fields (``schema.ENRICHMENT_COLUMNS``). The API validates them with ``Survey``,
fills missing enrichment, and wraps each in an ``EventEnvelope`` that the delivery buffer
writes, Kinesis Firehose style, and the stream loader lands in ``raw.survey_events``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, create_model

from ingestion.schema import (
    CUSTOMER_TYPE_VALUES,
    GENDER_VALUES,
    RATING_COLUMNS,
    SATISFACTION_VALUES,
    TRAVEL_CLASS_VALUES,
    TYPE_OF_TRAVEL_VALUES,
)

EVENT_TYPE = "survey_submitted"
SCHEMA_VERSION = 1

StrictInt = Annotated[int, Strict()]
Rating = Annotated[StrictInt, Field(ge=0, le=5, description="0-5; 0 means not applicable")]


class _SurveyBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # Enrichment fields: optional; the API fills what is missing.
    survey_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    customer_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    passenger_name: Annotated[str, Field(max_length=200)] | None = None
    carrier_code: Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")] | None = None
    flight_number: Annotated[StrictInt, Field(ge=1, le=9999)] | None = None
    flight_id: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    flight_date: date | None = None
    origin_airport: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    destination_airport: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] | None = None
    scheduled_departure_at: datetime | None = None
    actual_departure_at: datetime | None = None
    scheduled_arrival_at: datetime | None = None
    actual_arrival_at: datetime | None = None
    survey_submitted_at: datetime | None = None

    # The answers.
    satisfaction: Literal[SATISFACTION_VALUES]  # type: ignore[valid-type]
    gender: Literal[GENDER_VALUES]  # type: ignore[valid-type]
    customer_type: Literal[CUSTOMER_TYPE_VALUES]  # type: ignore[valid-type]
    age: Annotated[StrictInt, Field(ge=0, le=120)]
    type_of_travel: Literal[TYPE_OF_TRAVEL_VALUES]  # type: ignore[valid-type]
    travel_class: Literal[TRAVEL_CLASS_VALUES]  # type: ignore[valid-type]
    flight_distance: Annotated[StrictInt, Field(ge=0, le=20_000)]
    departure_delay_minutes: Annotated[StrictInt, Field(ge=0)]
    arrival_delay_minutes: Annotated[StrictInt, Field(ge=0)] | None = None


# One optional field per rated service; a missing rating means the survey did not ask it.
Survey = create_model(  # type: ignore[call-overload]
    "Survey",
    __base__=_SurveyBase,
    __doc__="One survey as a client posts it: canonical field names, enrichment optional.",
    **{name: (Rating | None, None) for name in RATING_COLUMNS},
)


class EventEnvelope(BaseModel):
    """A survey as it travels through the delivery buffer and lands in raw.survey_events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Annotated[str, Field(min_length=1, max_length=64)]
    event_type: Literal["survey_submitted"]
    schema_version: Literal[1]
    submitted_at: datetime
    survey: Survey  # type: ignore[valid-type]


def new_event_id() -> str:
    return uuid.uuid4().hex


def utc_now() -> datetime:
    """Naive UTC, as every timestamp in the warehouse."""
    return datetime.now(UTC).replace(tzinfo=None)


def envelope(
    survey: dict[str, Any], *, event_id: str | None = None, submitted_at: datetime | None = None
) -> dict[str, Any]:
    """The JSON-ready envelope dict for an already validated (and enriched) survey dict."""
    return {
        "event_id": event_id or new_event_id(),
        "event_type": EVENT_TYPE,
        "schema_version": SCHEMA_VERSION,
        "submitted_at": (submitted_at or utc_now()).isoformat(),
        "survey": survey,
    }
