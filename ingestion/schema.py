"""The canonical survey columns and the raw tables every loader writes.

This module is the contract between the loaders (``load_csv``, the stream loader) and the
dbt sources in ``dbt_project/models/staging/__sources.yml``. Change both together.
"""

from __future__ import annotations

from dataclasses import dataclass

RAW_SCHEMA = "raw"

# Values as they appear in the public exports. Staging normalises them.
SATISFACTION_VALUES = ("satisfied", "dissatisfied", "neutral or dissatisfied")
GENDER_VALUES = ("Male", "Female")
CUSTOMER_TYPE_VALUES = ("Loyal Customer", "disloyal Customer")
TYPE_OF_TRAVEL_VALUES = ("Personal Travel", "Business travel")
TRAVEL_CLASS_VALUES = ("Eco", "Eco Plus", "Business")

# Every service a survey can rate, 0-5, where 0 means "not applicable".
RATING_COLUMNS: tuple[str, ...] = (
    "seat_comfort",
    "departure_arrival_time_convenient",
    "food_and_drink",
    "gate_location",
    "inflight_wifi_service",
    "inflight_entertainment",
    "online_support",
    "ease_of_online_booking",
    "on_board_service",
    "leg_room_service",
    "baggage_handling",
    "checkin_service",
    "cleanliness",
    "online_boarding",
    "inflight_service",
)

# The survey answers themselves, in canonical order, with their raw SQL type.
SURVEY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("satisfaction", "varchar"),
    ("gender", "varchar"),
    ("customer_type", "varchar"),
    ("age", "integer"),
    ("type_of_travel", "varchar"),
    ("travel_class", "varchar"),
    ("flight_distance", "integer"),
    *((name, "integer") for name in RATING_COLUMNS),
    ("departure_delay_minutes", "integer"),
    ("arrival_delay_minutes", "integer"),
)

# Columns added by enrichment (ingestion/enrich.py). Timestamps are UTC, without time zone.
ENRICHMENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("survey_id", "varchar"),
    ("customer_id", "varchar"),
    ("passenger_name", "varchar"),
    ("carrier_code", "varchar"),
    ("flight_number", "integer"),
    ("flight_id", "varchar"),
    ("flight_date", "date"),
    ("origin_airport", "varchar"),
    ("destination_airport", "varchar"),
    ("scheduled_departure_at", "timestamp"),
    ("actual_departure_at", "timestamp"),
    ("scheduled_arrival_at", "timestamp"),
    ("actual_arrival_at", "timestamp"),
    ("survey_submitted_at", "timestamp"),
)

# Load metadata on every landed row.
LOAD_METADATA_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "varchar"),
    ("source_file", "varchar"),
    ("source_line", "bigint"),
    ("file_sha256", "varchar"),
    ("loaded_at", "timestamp"),
)

SURVEY_RESPONSES_COLUMNS = LOAD_METADATA_COLUMNS + ENRICHMENT_COLUMNS + SURVEY_COLUMNS

# The envelope of a streamed survey event (ingestion/events.py), as landed.
EVENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "varchar"),
    ("event_type", "varchar"),
    ("schema_version", "integer"),
    ("submitted_at", "timestamp"),  # when the API accepted the survey
    ("byte_offset", "bigint"),  # where the record starts in its delivery object
)

# Streamed surveys: source_file is the delivery object's key, source_line the record's
# 1-based ordinal within it, file_sha256 the object's sha256.
SURVEY_EVENTS_COLUMNS = LOAD_METADATA_COLUMNS + EVENT_COLUMNS + ENRICHMENT_COLUMNS + SURVEY_COLUMNS

# One row per load attempt of one file or delivery object.
LOAD_AUDIT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "varchar"),
    ("source_kind", "varchar"),  # 'csv' or 'firehose'
    ("source_file", "varchar"),  # path of the CSV, or key of the delivery object
    ("file_sha256", "varchar"),
    ("file_bytes", "bigint"),
    ("layout", "varchar"),  # 'invistico', 'passenger-satisfaction', 'mapping:<file>', 'firehose'
    ("status", "varchar"),  # 'loaded', 'replaced', 'rejected'
    ("rows_in_file", "bigint"),  # data rows (lines after the header, blank lines included)
    ("rows_loaded", "bigint"),
    ("rows_quarantined", "bigint"),
    ("message", "varchar"),
    ("started_at", "timestamp"),
    ("finished_at", "timestamp"),
)

# One row per rejected input row or record.
QUARANTINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("batch_id", "varchar"),
    ("source_kind", "varchar"),
    ("source_file", "varchar"),
    ("file_sha256", "varchar"),
    ("source_line", "bigint"),  # 1-based physical line in the file (header is line 1)
    ("byte_offset", "bigint"),  # for delivery objects; null for CSV
    ("reason", "varchar"),  # one of QUARANTINE_REASONS
    ("detail", "varchar"),  # what, where, how to fix: 'column "Age" = "abc" is not an integer'
    ("raw_text", "varchar"),  # the line as read; invalid bytes escaped as \\xNN
    ("quarantined_at", "timestamp"),
)

QUARANTINE_REASONS = (
    "wrong_field_count",
    "not_an_integer",
    "rating_out_of_range",
    "age_out_of_range",
    "negative_delay",
    "unknown_value",
    "empty_required_field",
    "repeated_header",
    "invalid_utf8",
    "blank_line",
    # delivery objects (stream path)
    "truncated_json",
    "wrong_envelope",
    "schema_violation",
    "corrupt_gzip",
)


@dataclass(frozen=True)
class RawTable:
    name: str
    columns: tuple[tuple[str, str], ...]
    # The landing-time column: a row inserted later never has an older value. A stream
    # cycle's publish copies the rows at or after the snapshot's newest value
    # (ingestion/snapshot_patch.py); if rows were deleted meanwhile (a CSV batch replaced),
    # the row counts differ and the table is copied whole.
    appended_by: str

    @property
    def qualified(self) -> str:
        return f"{RAW_SCHEMA}.{self.name}"

    def create_sql(self) -> str:
        """Portable DDL (DuckDB and PostgreSQL)."""
        cols = ",\n    ".join(f"{name} {sql_type}" for name, sql_type in self.columns)
        return f"create table if not exists {self.qualified} (\n    {cols}\n)"


SURVEY_RESPONSES = RawTable("survey_responses", SURVEY_RESPONSES_COLUMNS, "loaded_at")
# One row per micro-batch cycle of `contrail stream run`, written after its publish.
STREAM_CYCLES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cycle_id", "varchar"),
    ("started_at", "timestamp"),
    ("published_at", "timestamp"),  # when the cycle's snapshot became visible to readers
    ("objects_loaded", "bigint"),
    ("events_loaded", "bigint"),
    ("events_quarantined", "bigint"),
    # seconds from an event's submitted_at to published_at, over the events loaded this cycle
    ("freshness_p50_s", "double precision"),
    ("freshness_p95_s", "double precision"),
    ("freshness_max_s", "double precision"),
    ("load_s", "double precision"),
    ("build_s", "double precision"),
    ("publish_s", "double precision"),
    ("cycle_s", "double precision"),
)

SURVEY_EVENTS = RawTable("survey_events", SURVEY_EVENTS_COLUMNS, "loaded_at")
STREAM_CYCLES = RawTable("stream_cycles", STREAM_CYCLES_COLUMNS, "started_at")
LOAD_AUDIT = RawTable("load_audit", LOAD_AUDIT_COLUMNS, "finished_at")
QUARANTINE = RawTable("quarantine", QUARANTINE_COLUMNS, "quarantined_at")
RAW_TABLES = (SURVEY_RESPONSES, SURVEY_EVENTS, LOAD_AUDIT, QUARANTINE, STREAM_CYCLES)


def raw_ddl() -> list[str]:
    """Statements that create the raw schema and tables if they are missing."""
    return [f"create schema if not exists {RAW_SCHEMA}", *(t.create_sql() for t in RAW_TABLES)]
