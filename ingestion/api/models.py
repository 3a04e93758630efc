"""Response bodies of the API, as documented in its OpenAPI spec."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class FieldErrorBody(BaseModel):
    path: str = Field(
        description="The field at fault ('age'), 'body' for the body as a whole, 'survey' for a "
        "batch item as a whole, or the header ('X-API-Key', 'Idempotency-Key')."
    )
    reason: str = Field(description="What is wrong and how to fix it.")


class ErrorBody(BaseModel):
    errors: list[FieldErrorBody]


class Accepted(BaseModel):
    """A single survey, journaled for delivery."""

    status: Literal["accepted"]
    event_id: str
    survey_id: str
    replayed: bool = Field(
        description="True when this was a retry of a survey already accepted; it was not "
        "buffered again."
    )


class ItemResult(BaseModel):
    index: int = Field(description="Position of the survey in the posted array, from 0.")
    status: Literal["accepted", "rejected"]
    event_id: str | None = None
    survey_id: str | None = None
    replayed: bool | None = None
    errors: list[FieldErrorBody] | None = None


class BatchResult(BaseModel):
    """Per-item results of a posted array; no item is dropped silently."""

    results: list[ItemResult]
    accepted: int
    rejected: int


class Health(BaseModel):
    status: Literal["ok"]
    buffered_records: int
    buffered_bytes: int


class SurveyRecord(BaseModel):
    """A row of marts.fct_survey_responses (no passenger names or customer ids)."""

    model_config = {"extra": "allow"}

    survey_id: str


class FlightSurveys(BaseModel):
    flight_id: str
    count: int
    truncated: bool = Field(description="True when the flight has more surveys than `limit`.")
    surveys: list[dict[str, Any]]
