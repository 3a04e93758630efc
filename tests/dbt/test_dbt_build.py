"""`dbt build` end to end on DuckDB and PostgreSQL, over hand-made raw rows.

The raw rows below hold the edge cases the marts must get right: a survey id landed in two
batches (the later one wins), 0 ratings ("not applicable", never averaged), a NULL arrival delay,
a quarantined row, ratings a layout does not ask (NULL inflight_service in the Invistico layout,
NULL online_support in the other), a repeat passenger and a rejected file. Every expected value
is computed here from these rows, in plain Python.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from ingestion.config import REPO_ROOT, PostgresSettings
from ingestion.schema import LOAD_AUDIT, QUARANTINE, RATING_COLUMNS, SURVEY_RESPONSES

from .conftest import Warehouse

pytestmark = pytest.mark.slow

INVISTICO_ASKS = tuple(r for r in RATING_COLUMNS if r != "inflight_service")
PASSENGER_SATISFACTION_ASKS = tuple(r for r in RATING_COLUMNS if r != "online_support")

B1_LOADED = datetime(2026, 3, 10, 8, 0, 0)
B2_LOADED = datetime(2026, 3, 12, 8, 0, 0)


def ratings(asked: tuple[str, ...], start: int, **overrides: int) -> dict[str, int | None]:
    """A survey's ratings: asked services cycle through 0-5 from `start`, others are NULL."""
    values: dict[str, int | None] = {r: None for r in RATING_COLUMNS}
    for i, service in enumerate(asked):
        values[service] = (start + i) % 6
    values.update(overrides)
    return values


def survey(
    survey_id: str,
    batch_id: str,
    line: int,
    *,
    satisfaction: str,
    gender: str,
    customer_type: str,
    age: int,
    type_of_travel: str,
    travel_class: str,
    departure_delay: int,
    arrival_delay: int | None,
    submitted: datetime,
    flight: tuple[str, date, str, str],
    customer_id: str,
    rating_values: dict[str, int | None],
) -> dict[str, Any]:
    flight_id, flight_date, origin, destination = flight
    scheduled_departure = datetime.combine(flight_date, datetime.min.time()) + timedelta(hours=9)
    return {
        "batch_id": batch_id,
        "source_file": f"exports/{batch_id}.csv",
        "source_line": line,
        "file_sha256": batch_id * 4,
        "loaded_at": B1_LOADED if batch_id == "batch-1" else B2_LOADED,
        "survey_id": survey_id,
        "customer_id": customer_id,
        "passenger_name": f"Name of {customer_id}",
        "carrier_code": flight_id[:2],
        "flight_number": int(flight_id[2:5]),
        "flight_id": flight_id,
        "flight_date": flight_date,
        "origin_airport": origin,
        "destination_airport": destination,
        "scheduled_departure_at": scheduled_departure,
        "actual_departure_at": scheduled_departure + timedelta(minutes=departure_delay),
        "scheduled_arrival_at": scheduled_departure + timedelta(hours=7),
        "actual_arrival_at": None
        if arrival_delay is None
        else scheduled_departure + timedelta(hours=7, minutes=arrival_delay),
        "survey_submitted_at": submitted,
        "satisfaction": satisfaction,
        "gender": gender,
        "customer_type": customer_type,
        "age": age,
        "type_of_travel": type_of_travel,
        "travel_class": travel_class,
        "flight_distance": 1000 + line,
        **rating_values,
        "departure_delay_minutes": departure_delay,
        "arrival_delay_minutes": arrival_delay,
    }


F1 = ("AB100-2026-03-01", date(2026, 3, 1), "JFK", "LHR")
F2 = ("CD200-2026-03-02", date(2026, 3, 2), "CDG", "FRA")
F3 = ("AB300-2026-03-08", date(2026, 3, 8), "LHR", "AMS")
F4 = ("EF400-2026-03-10", date(2026, 3, 10), "ORD", "JFK")

SURVEYS: list[dict[str, Any]] = [
    # batch-1: an Invistico export (no "Inflight service" column)
    survey(
        "SRV-1",
        "batch-1",
        2,
        satisfaction="satisfied",
        gender="Female",
        customer_type="Loyal Customer",
        age=34,
        type_of_travel="Business travel",
        travel_class="Business",
        departure_delay=0,
        arrival_delay=0,
        submitted=datetime(2026, 3, 1, 20, 0),
        flight=F1,
        customer_id="CUS-A",
        rating_values=ratings(INVISTICO_ASKS, 1),
    ),
    survey(
        "SRV-2",
        "batch-1",
        3,
        satisfaction="dissatisfied",
        gender="Male",
        customer_type="disloyal Customer",
        age=17,
        type_of_travel="Personal Travel",
        travel_class="Eco",
        departure_delay=20,
        arrival_delay=None,
        submitted=datetime(2026, 3, 1, 22, 30),
        flight=F1,
        customer_id="CUS-B",
        rating_values=ratings(INVISTICO_ASKS, 0, seat_comfort=0, food_and_drink=0),
    ),
    survey(
        "SRV-3",
        "batch-1",
        4,
        satisfaction="satisfied",
        gender="Male",
        customer_type="Loyal Customer",
        age=65,
        type_of_travel="Business travel",
        travel_class="Eco Plus",
        departure_delay=45,
        arrival_delay=130,
        submitted=datetime(2026, 3, 3, 9, 0),
        flight=F2,
        customer_id="CUS-A",
        rating_values=ratings(INVISTICO_ASKS, 3),
    ),
    survey(
        "SRV-4",
        "batch-1",
        5,
        satisfaction="dissatisfied",
        gender="Female",
        customer_type="Loyal Customer",
        age=41,
        type_of_travel="Personal Travel",
        travel_class="Eco",
        departure_delay=10,
        arrival_delay=16,
        submitted=datetime(2026, 3, 9, 7, 0),
        flight=F3,
        customer_id="CUS-C",
        rating_values=ratings(INVISTICO_ASKS, 2),
    ),
    # line 6 of batch-1 is quarantined
    survey(
        "SRV-6",
        "batch-1",
        7,
        satisfaction="satisfied",
        gender="Female",
        customer_type="Loyal Customer",
        age=45,
        type_of_travel="Personal Travel",
        travel_class="Eco",
        departure_delay=5,
        arrival_delay=61,
        submitted=datetime(2026, 3, 9, 10, 0),
        flight=F3,
        customer_id="CUS-D",
        rating_values=ratings(INVISTICO_ASKS, 4, seat_comfort=0),
    ),
    # batch-2: the other public layout (no "Online support"), loaded later, with a corrected
    # copy of SRV-4 that must replace the batch-1 one
    survey(
        "SRV-4",
        "batch-2",
        2,
        satisfaction="satisfied",
        gender="Female",
        customer_type="Loyal Customer",
        age=42,
        type_of_travel="Business travel",
        travel_class="Business",
        departure_delay=121,
        arrival_delay=0,
        submitted=datetime(2026, 3, 9, 7, 0),
        flight=F3,
        customer_id="CUS-C",
        rating_values=ratings(PASSENGER_SATISFACTION_ASKS, 5),
    ),
    survey(
        "SRV-7",
        "batch-2",
        3,
        satisfaction="neutral or dissatisfied",
        gender="Female",
        customer_type="disloyal Customer",
        age=22,
        type_of_travel="Business travel",
        travel_class="Eco",
        departure_delay=0,
        arrival_delay=31,
        submitted=datetime(2026, 3, 11, 12, 0),
        flight=F4,
        customer_id="CUS-E",
        rating_values=ratings(PASSENGER_SATISFACTION_ASKS, 1, inflight_service=None),
    ),
]

LOAD_AUDIT_ROWS: list[dict[str, Any]] = [
    {
        "batch_id": "batch-1",
        "source_kind": "csv",
        "source_file": "exports/batch-1.csv",
        "layout": "invistico",
        "status": "loaded",
        "rows_in_file": 6,
        "rows_loaded": 5,
        "rows_quarantined": 1,
        "started_at": B1_LOADED - timedelta(seconds=3),
        "finished_at": B1_LOADED + timedelta(seconds=1),
    },
    {
        "batch_id": "batch-2",
        "source_kind": "csv",
        "source_file": "exports/batch-2.csv",
        "layout": "passenger-satisfaction",
        "status": "loaded",
        "rows_in_file": 2,
        "rows_loaded": 2,
        "rows_quarantined": 0,
        "started_at": B2_LOADED - timedelta(seconds=2),
        "finished_at": B2_LOADED + timedelta(seconds=1),
    },
    {
        "batch_id": "batch-3",
        "source_kind": "csv",
        "source_file": "exports/bad.csv",
        "layout": "invistico",
        "status": "rejected",
        "rows_in_file": 40,
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "message": "exports/bad.csv: 30 of 40 rows are bad",
        "started_at": B2_LOADED,
        "finished_at": B2_LOADED + timedelta(seconds=1),
    },
]

QUARANTINE_ROWS: list[dict[str, Any]] = [
    {
        "batch_id": "batch-1",
        "source_kind": "csv",
        "source_file": "exports/batch-1.csv",
        "source_line": 6,
        "reason": "not_an_integer",
        "detail": 'column "Age" = "abc" is not an integer',
        "raw_text": "satisfied,Male,...",
        "quarantined_at": B1_LOADED,
    },
]


# --- expected values, computed from the rows above --------------------------------------------


def deduplicated() -> dict[str, dict[str, Any]]:
    """The latest loaded copy of each survey."""
    latest: dict[str, dict[str, Any]] = {}
    for row in SURVEYS:
        kept = latest.get(row["survey_id"])
        if kept is None or (row["loaded_at"], row["batch_id"]) > (
            kept["loaded_at"],
            kept["batch_id"],
        ):
            latest[row["survey_id"]] = row
    return latest


def rate(satisfied: int, responses: int) -> float | None:
    return satisfied / responses if responses else None


def is_satisfied(row: dict[str, Any]) -> bool:
    return row["satisfaction"] == "satisfied"


def delay_band(minutes: int | None) -> str:
    if minutes is None:
        return "unknown"
    for upper, band in (
        (0, "on time"),
        (15, "1-15 min"),
        (30, "16-30 min"),
        (60, "31-60 min"),
        (120, "61-120 min"),
    ):
        if minutes <= upper:
            return band
    return "over 120 min"


def assert_close(actual: float | None, expected: float | None) -> None:
    if expected is None:
        assert actual is None
    else:
        assert actual is not None and math.isclose(float(actual), expected, rel_tol=1e-9)


# --- the build, once per engine ----------------------------------------------------------------


@pytest.fixture(scope="module", params=["duckdb", "postgres"])
def built(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Warehouse]:
    work = tmp_path_factory.mktemp(f"dbt_{request.param}")
    if request.param == "duckdb":
        warehouse = Warehouse("duckdb", work, duckdb_path=work / "warehouse.duckdb")
    else:
        pg: PostgresSettings = request.getfixturevalue("module_pg_database")
        warehouse = Warehouse("postgres", work, postgres=pg)
    warehouse.load_raw(
        [(LOAD_AUDIT, LOAD_AUDIT_ROWS), (SURVEY_RESPONSES, SURVEYS), (QUARANTINE, QUARANTINE_ROWS)]
    )
    result = warehouse.dbt("build")
    assert result.returncode == 0, result.stdout[-6000:]
    yield warehouse


def test_build_ran_every_unit_test_and_data_test_green(built: Warehouse) -> None:
    run = json.loads((built.work_dir / "target" / "run_results.json").read_text())
    statuses = {r["unique_id"]: r["status"] for r in run["results"]}
    unit_tests = {uid for uid in statuses if uid.startswith("unit_test.")}
    assert {uid.rsplit(".", 1)[-1] for uid in unit_tests} >= {
        "test_stg_survey_responses_not_applicable_ratings_become_null",
        "test_int_surveys_deduplicated_keeps_latest_load",
        "test_fct_survey_responses_delay_bands",
        "test_mart_service_drivers_quadrant_rule",
    }
    data_tests = {uid for uid in statuses if uid.startswith("test.")}
    assert len(data_tests) > 50
    not_green = {
        uid: s
        for uid, s in statuses.items()
        if s not in ("pass", "success") and not uid.startswith("exposure.")
    }
    assert not_green == {}


def test_fct_keeps_the_latest_loaded_copy_of_each_survey(built: Warehouse) -> None:
    expected = {
        sid: (is_satisfied(row), row["batch_id"], row["source_file"], row["source_line"])
        for sid, row in deduplicated().items()
    }
    rows = built.query(
        "select survey_id, is_satisfied, batch_id, source_file, source_line, channel "
        "from marts.fct_survey_responses"
    )
    actual = {
        r["survey_id"]: (r["is_satisfied"], r["batch_id"], r["source_file"], r["source_line"])
        for r in rows
    }
    assert actual == expected
    assert len(rows) == len(expected)
    # the corrected copy of SRV-4 from batch-2 replaced the batch-1 one
    assert actual["SRV-4"] == (True, "batch-2", "exports/batch-2.csv", 2)
    assert {r["channel"] for r in rows} == {"batch"}


def test_fct_turns_zero_ratings_into_null_and_keeps_nulls(built: Warehouse) -> None:
    columns = ", ".join(f"{s}_rating, {s}_is_not_applicable" for s in RATING_COLUMNS)
    rows = built.query(
        f"select survey_id, departure_delay_minutes, arrival_delay_minutes, {columns} "
        "from marts.fct_survey_responses"
    )
    assert rows
    for row in rows:
        source = deduplicated()[row["survey_id"]]
        for service in RATING_COLUMNS:
            raw = source[service]
            assert row[f"{service}_rating"] == (raw if raw else None), (row["survey_id"], service)
            assert row[f"{service}_is_not_applicable"] == (None if raw is None else raw == 0)
        assert row["departure_delay_minutes"] == source["departure_delay_minutes"]
        assert row["arrival_delay_minutes"] == source["arrival_delay_minutes"]
    assert any(r["arrival_delay_minutes"] is None for r in rows)


def test_marts_hold_no_personal_data(built: Warehouse) -> None:
    columns = built.query(
        "select table_name, column_name from information_schema.columns "
        "where table_schema in ('staging', 'intermediate', 'marts')"
    )
    names = {c["column_name"] for c in columns}
    assert "passenger_name" not in names
    assert "customer_id" not in names
    assert "raw_text" not in names
    keys = built.query("select passenger_key, age_band from marts.dim_passenger")
    latest_age: dict[str, tuple[datetime, int]] = {}
    for row in deduplicated().values():
        seen = latest_age.get(row["customer_id"])
        if seen is None or row["survey_submitted_at"] > seen[0]:
            latest_age[row["customer_id"]] = (row["survey_submitted_at"], row["age"])
    bands = {18: "under 18", 25: "18-24", 35: "25-34", 45: "35-44", 55: "45-54", 65: "55-64"}

    def band(age: int) -> str:
        return next((b for upper, b in bands.items() if age < upper), "65 and over")

    expected = {
        hashlib.md5(cid.encode()).hexdigest(): band(age) for cid, (_, age) in latest_age.items()
    }
    assert {k["passenger_key"]: k["age_band"] for k in keys} == expected
    # CUS-A answered at 34 and then at 65: the latest survey gives the band
    assert expected[hashlib.md5(b"CUS-A").hexdigest()] == "65 and over"


def test_service_ratings_have_one_row_per_asked_service(built: Warehouse) -> None:
    rows = built.query(
        "select survey_id, service, rating, is_not_applicable from marts.fct_service_ratings"
    )
    expected = {
        (sid, service): (row[service] or None, row[service] == 0)
        for sid, row in deduplicated().items()
        for service in RATING_COLUMNS
        if row[service] is not None
    }
    assert {
        (r["survey_id"], r["service"]): (r["rating"], r["is_not_applicable"]) for r in rows
    } == expected
    assert len(rows) == len(expected)


def test_service_drivers_exclude_not_applicable_and_classify_quadrants(built: Warehouse) -> None:
    surveys = list(deduplicated().values())
    expected: dict[str, dict[str, Any]] = {}
    for service in RATING_COLUMNS:
        asked = [r for r in surveys if r[service] is not None]
        scores = [(r[service], is_satisfied(r)) for r in asked if r[service] != 0]
        high = [sat for score, sat in scores if score >= 4]
        low = [sat for score, sat in scores if score <= 2]
        high_rate = rate(sum(high), len(high))
        low_rate = rate(sum(low), len(low))
        expected[service] = {
            "responses": len(asked),
            "rated": len(scores),
            "not_applicable": len(asked) - len(scores),
            "mean_rating": sum(s for s, _ in scores) / len(scores) if scores else None,
            "satisfaction_rate_high": high_rate,
            "satisfaction_rate_low": low_rate,
            "importance": None if high_rate is None or low_rate is None else high_rate - low_rate,
        }
    both = [e for e in expected.values() if e["importance"] is not None and e["mean_rating"]]
    avg_importance = sum(e["importance"] for e in both) / len(both)
    avg_mean = sum(e["mean_rating"] for e in both) / len(both)
    for e in expected.values():
        if e["importance"] is None or e["mean_rating"] is None:
            e["quadrant"] = "not enough ratings"
        elif e["importance"] >= avg_importance:
            e["quadrant"] = (
                "keep up the good work" if e["mean_rating"] >= avg_mean else "concentrate here"
            )
        else:
            e["quadrant"] = "possible overkill" if e["mean_rating"] >= avg_mean else "low priority"

    rows = {r["service"]: r for r in built.query("select * from marts.mart_service_drivers")}
    assert set(rows) == set(RATING_COLUMNS)
    for service, e in expected.items():
        row = rows[service]
        for key in ("responses", "rated", "not_applicable", "quadrant"):
            assert row[key] == e[key], (service, key)
        for key in ("mean_rating", "satisfaction_rate_high", "satisfaction_rate_low", "importance"):
            assert_close(row[key], e[key])
        assert_close(row["average_importance"], avg_importance)
        assert_close(row["average_mean_rating"], avg_mean)
    # seat_comfort: two 0 answers are counted, not averaged
    assert rows["seat_comfort"]["not_applicable"] == 2
    assert len({e["quadrant"] for e in expected.values()}) >= 3


def test_satisfaction_by_segment(built: Warehouse) -> None:
    surveys = list(deduplicated().values())
    labels = {
        "travel_class": {"Eco": "eco", "Eco Plus": "eco plus", "Business": "business"},
        "customer_type": {"Loyal Customer": "loyal", "disloyal Customer": "disloyal"},
        "type_of_travel": {"Personal Travel": "personal", "Business travel": "business"},
        "gender": {"Male": "male", "Female": "female"},
    }
    groups: dict[tuple[str, str], list[bool]] = {("overall", "all"): []}
    for row in surveys:
        groups[("overall", "all")].append(is_satisfied(row))
        for column, mapping in labels.items():
            groups.setdefault((column, mapping[row[column]]), []).append(is_satisfied(row))
    rows = built.query("select * from marts.mart_satisfaction_by_segment")
    actual = {(r["segment_type"], r["segment_value"]): r for r in rows}
    for key, verdicts in groups.items():
        assert actual[key]["responses"] == len(verdicts), key
        assert actual[key]["satisfied"] == sum(verdicts), key
        assert_close(actual[key]["satisfaction_rate"], sum(verdicts) / len(verdicts))
    ages = sorted(r["segment_value"] for r in rows if r["segment_type"] == "age_band")
    assert ages == sorted(["25-34", "under 18", "65 and over", "35-44", "45-54", "18-24"])
    assert actual[("overall", "all")]["responses"] == 6


def test_delay_impact_bands(built: Warehouse) -> None:
    surveys = list(deduplicated().values())
    rows = built.query("select * from marts.mart_delay_impact")
    actual = {(r["delay_type"], r["delay_band"]): r for r in rows}
    for delay_type, column in (
        ("departure", "departure_delay_minutes"),
        ("arrival", "arrival_delay_minutes"),
    ):
        counts: dict[str, list[bool]] = {}
        for row in surveys:
            counts.setdefault(delay_band(row[column]), []).append(is_satisfied(row))
        for band, verdicts in counts.items():
            assert actual[(delay_type, band)]["responses"] == len(verdicts), (delay_type, band)
            assert actual[(delay_type, band)]["satisfied"] == sum(verdicts)
            assert_close(
                actual[(delay_type, band)]["satisfaction_rate"], sum(verdicts) / len(verdicts)
            )
        for (kind, band), row in actual.items():
            if kind == delay_type and band not in counts:
                assert row["responses"] == 0 and row["satisfaction_rate"] is None
    # the NULL arrival delay of SRV-2 is its own band, sorted last; departures have no unknown
    assert actual[("arrival", "unknown")]["responses"] == 1
    assert actual[("arrival", "unknown")]["band_order"] == 99
    assert ("departure", "unknown") not in actual
    order = [
        r["delay_band"]
        for r in sorted(rows, key=lambda r: r["band_order"])
        if r["delay_type"] == "arrival"
    ]
    assert order == [
        "on time",
        "1-15 min",
        "16-30 min",
        "31-60 min",
        "61-120 min",
        "over 120 min",
        "unknown",
    ]


def test_daily_satisfaction_rolls_over_seven_calendar_days(built: Warehouse) -> None:
    by_day: dict[date, list[bool]] = {}
    for row in deduplicated().values():
        by_day.setdefault(row["survey_submitted_at"].date(), []).append(is_satisfied(row))
    first, last = min(by_day), max(by_day)
    rows = built.query("select * from marts.mart_daily_satisfaction order by date_day")
    assert [r["date_day"] for r in rows] == [
        first + timedelta(days=i) for i in range((last - first).days + 1)
    ]
    for row in rows:
        day = row["date_day"]
        verdicts = by_day.get(day, [])
        window = [v for d, vs in by_day.items() if day - timedelta(days=6) <= d <= day for v in vs]
        assert row["responses"] == len(verdicts)
        assert row["satisfied"] == sum(verdicts)
        assert_close(row["satisfaction_rate"], rate(sum(verdicts), len(verdicts)))
        assert row["rolling_7d_responses"] == len(window)
        assert_close(row["rolling_7d_satisfaction_rate"], rate(sum(window), len(window)))
    # 2026-03-08 had no survey: its window (03-02..03-08) holds only SRV-3
    quiet = next(r for r in rows if r["date_day"] == date(2026, 3, 8))
    assert (quiet["responses"], quiet["rolling_7d_responses"]) == (0, 1)


def test_pipeline_health_per_batch(built: Warehouse) -> None:
    rows = {r["batch_id"]: r for r in built.query("select * from marts.mart_pipeline_health")}
    assert set(rows) == {"batch-1", "batch-2", "batch-3"}
    for audit in LOAD_AUDIT_ROWS:
        row = rows[audit["batch_id"]]
        landed = [s for s in SURVEYS if s["batch_id"] == audit["batch_id"]]
        assert row["rows_in_file"] == audit["rows_in_file"]
        assert row["rows_loaded"] == audit["rows_loaded"]
        assert row["rows_landed"] == len(landed)
        assert row["status"] == audit["status"]
        if landed:
            newest = max(s["survey_submitted_at"] for s in landed)
            loaded = max(s["loaded_at"] for s in landed)
            assert row["freshness_seconds"] == int((loaded - newest).total_seconds())
        else:
            assert row["freshness_seconds"] is None
    assert rows["batch-1"]["quarantined_not_an_integer"] == 1
    assert rows["batch-1"]["rows_in_quarantine"] == 1
    assert rows["batch-2"]["quarantined_not_an_integer"] == 0


def test_dimensions_cover_the_facts(built: Warehouse) -> None:
    with (REPO_ROOT / "dbt_project" / "seeds" / "airports.csv").open(newline="") as f:
        seed = {row["airport_code"]: row for row in csv.DictReader(f)}
    airports = built.query("select airport_code, latitude from marts.dim_airport")
    assert {a["airport_code"] for a in airports} == set(seed)
    jfk = next(a for a in airports if a["airport_code"] == "JFK")
    assert_close(jfk["latitude"], float(seed["JFK"]["latitude"]))

    surveys = deduplicated().values()
    days = [s["survey_submitted_at"].date() for s in surveys] + [s["flight_date"] for s in surveys]
    dates = built.query("select date_day, day_of_week from marts.dim_date order by date_day")
    assert [d["date_day"] for d in dates] == [
        min(days) + timedelta(days=i) for i in range((max(days) - min(days)).days + 1)
    ]
    assert all(d["day_of_week"] == (d["date_day"].weekday() + 1) % 7 for d in dates)

    flights = built.query("select flight_id, surveys, origin_airport from marts.dim_flight")
    per_flight: dict[str, int] = {}
    for s in surveys:
        per_flight[s["flight_id"]] = per_flight.get(s["flight_id"], 0) + 1
    assert {f["flight_id"]: f["surveys"] for f in flights} == per_flight


def test_docs_generate(built: Warehouse) -> None:
    result = built.dbt("docs", "generate")
    assert result.returncode == 0, result.stdout[-4000:]
    catalog = json.loads((built.work_dir / "target" / "catalog.json").read_text())
    assert "model.contrail.fct_survey_responses" in catalog["nodes"]
    assert (built.work_dir / "target" / "index.html").stat().st_size > 100_000
    # every relation dbt built or reads, and every column in it, is documented
    manifest = json.loads((built.work_dir / "target" / "manifest.json").read_text())
    documented = {**manifest["nodes"], **manifest["sources"]}
    undocumented = []
    for uid, node in {**catalog["nodes"], **catalog["sources"]}.items():
        entry = documented[uid]
        if not entry.get("description"):
            undocumented.append(uid)
        described = {name for name, col in entry["columns"].items() if col.get("description")}
        undocumented += [f"{uid}.{c}" for c in node["columns"] if c.lower() not in described]
    assert len(catalog["nodes"]) >= 17
    assert undocumented == []


def test_source_freshness_only_warns_on_old_data(built: Warehouse) -> None:
    result = built.dbt("source", "freshness")
    assert result.returncode == 0, result.stdout[-4000:]
    sources = json.loads((built.work_dir / "target" / "sources.json").read_text())
    (entry,) = [r for r in sources["results"] if r["unique_id"].endswith("survey_responses")]
    age = datetime.now(UTC).replace(tzinfo=None) - max(s["loaded_at"] for s in SURVEYS)
    assert entry["status"] == ("warn" if age > timedelta(hours=24) else "pass")
