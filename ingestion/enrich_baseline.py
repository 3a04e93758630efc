"""The naive enrichment the benchmark measures ``ingestion.enrich.enrich`` against.

One Python iteration per row with per-row Faker calls for an id, a name, a location and a
timestamp: the obvious way to write enrichment, and hundreds of times slower than the vectorised
one. It is not used by the pipeline.
"""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
from faker import Faker

WINDOW_START = datetime(2026, 1, 1)
WINDOW_END = datetime(2026, 6, 30)


def naive_enrich_rows(table: pa.Table, *, seed: int) -> list[dict]:
    """One dict per row of ``table``: survey id, passenger name, origin place, submission time."""
    fake = Faker("en_US")
    fake.seed_instance(seed)
    rows = []
    for gender in table.column("gender").to_pylist():
        name = fake.name_female() if gender == "Female" else fake.name_male()
        latitude, longitude, place, country_code, timezone = fake.location_on_land()
        rows.append(
            {
                "survey_id": fake.uuid4(),
                "passenger_name": name,
                "origin_place": place,
                "origin_country_code": country_code,
                "origin_latitude": float(latitude),
                "origin_longitude": float(longitude),
                "origin_timezone": timezone,
                "survey_submitted_at": fake.date_time_between(
                    start_date=WINDOW_START, end_date=WINDOW_END
                ),
            }
        )
    return rows
