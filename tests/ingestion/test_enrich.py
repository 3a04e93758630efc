"""Enrichment: ids, customers, names, flights, routes and times added to survey rows."""

from __future__ import annotations

import csv
import re
from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv
import pytest
from faker.providers.person.en_US import Provider as FakerNames

from ingestion.airports import SEED_PATH
from ingestion.enrich import EnrichConfig, enrich
from ingestion.errors import ContrailError
from ingestion.layouts import INVISTICO
from ingestion.schema import ENRICHMENT_COLUMNS, RATING_COLUMNS, SURVEY_COLUMNS
from tests.conftest import INVISTICO_HEAD

ARROW_TYPES = {
    "varchar": pa.string(),
    "integer": pa.int32(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
}


def survey_table(
    n: int,
    *,
    rng_seed: int = 0,
    loyal_share: float = 0.8,
    max_delay: int = 600,
    distances: np.ndarray | None = None,
) -> pa.Table:
    """Canonical survey rows with random answers, some NULL arrival delays."""
    rng = np.random.default_rng(rng_seed)
    departure = np.where(rng.random(n) < 0.5, 0, rng.integers(0, max_delay + 1, n))
    arrival = np.clip(departure + rng.integers(-30, 31, n), 0, max_delay)
    columns: dict[str, pa.Array] = {
        "satisfaction": pa.array(rng.choice(["satisfied", "dissatisfied"], n)),
        "gender": pa.array(rng.choice(["Female", "Male"], n)),
        "customer_type": pa.array(
            np.where(rng.random(n) < loyal_share, "Loyal Customer", "disloyal Customer")
        ),
        "age": pa.array(rng.integers(7, 86, n), pa.int32()),
        "type_of_travel": pa.array(rng.choice(["Personal Travel", "Business travel"], n)),
        "travel_class": pa.array(rng.choice(["Eco", "Eco Plus", "Business"], n)),
        "flight_distance": pa.array(
            rng.integers(50, 7000, n) if distances is None else distances, pa.int32()
        ),
        **{name: pa.array(rng.integers(0, 6, n), pa.int32()) for name in RATING_COLUMNS},
        "departure_delay_minutes": pa.array(departure, pa.int32()),
        "arrival_delay_minutes": pa.array(arrival, pa.int32(), mask=rng.random(n) < 0.05),
    }
    return pa.table({name: columns[name] for name, _ in SURVEY_COLUMNS})


def joined(table: pa.Table, enriched: pa.Table) -> duckdb.DuckDBPyConnection:
    """Survey and enrichment columns side by side, queryable as ``t``."""
    both = table.append_column("row_index", pa.array(np.arange(table.num_rows)))
    for field in enriched.schema:
        both = both.append_column(field, enriched.column(field.name))
    con = duckdb.connect()
    con.register("t", both)
    return con


def test_columns_and_types_match_the_schema_contract() -> None:
    table = survey_table(1_000)
    out = enrich(table, seed=1, file_key="f")
    assert out.schema == pa.schema(
        [(name, ARROW_TYPES[sql_type]) for name, sql_type in ENRICHMENT_COLUMNS]
    )
    assert out.num_rows == table.num_rows
    assert all(out.column(name).null_count == 0 for name in out.column_names)


def test_empty_input_gives_empty_output_with_the_schema() -> None:
    out = enrich(survey_table(10).slice(0, 0), seed=1, file_key="f")
    assert out.num_rows == 0
    assert out.column_names == [name for name, _ in ENRICHMENT_COLUMNS]


def test_survey_ids_are_unique_and_well_formed_on_500k_rows() -> None:
    table = survey_table(500_000)
    ids = enrich(table, seed=3, file_key="big").column("survey_id").to_numpy(zero_copy_only=False)
    assert len(np.unique(ids)) == 500_000
    pattern = re.compile(r"SRV-[0-9a-f]{16}")
    assert all(pattern.fullmatch(value) for value in ids[::997])


def test_same_inputs_same_output_and_seed_or_file_change_it() -> None:
    table = survey_table(5_000)
    first = enrich(table, seed=11, file_key="a")
    assert first.equals(enrich(table, seed=11, file_key="a"))
    for other in (enrich(table, seed=12, file_key="a"), enrich(table, seed=11, file_key="b")):
        ids = set(first.column("survey_id").to_pylist())
        assert ids.isdisjoint(other.column("survey_id").to_pylist())
        same_dates = np.mean(
            np.asarray(first.column("flight_date")) == np.asarray(other.column("flight_date"))
        )
        assert same_dates < 0.05


def test_output_does_not_depend_on_chunking() -> None:
    table = survey_table(20_000)
    whole = enrich(table, seed=5, file_key="chunks")
    for cut in (1, 777, 10_000, 19_999):
        head = enrich(table.slice(0, cut), seed=5, file_key="chunks", first_row=0)
        tail = enrich(table.slice(cut), seed=5, file_key="chunks", first_row=cut)
        assert pa.concat_tables([head, tail]).equals(whole)
    pieces = [
        enrich(table.slice(start, 3_000), seed=5, file_key="chunks", first_row=start)
        for start in range(0, 20_000, 3_000)
    ]
    assert pa.concat_tables(pieces).equals(whole)
    # A multi-chunk input table gives the same rows as a contiguous one.
    rechunked = pa.Table.from_batches(table.to_batches(max_chunksize=4_096))
    assert enrich(rechunked, seed=5, file_key="chunks").equals(whole)


def test_loyal_customers_return_and_disloyal_ones_are_new() -> None:
    table = survey_table(100_000, loyal_share=0.8)
    con = joined(table, enrich(table, seed=2, file_key="cust"))
    loyal_rows, loyal_ids = con.execute(
        "select count(*), count(distinct customer_id) from t where customer_type = 'Loyal Customer'"
    ).fetchone()
    disloyal_rows, disloyal_ids = con.execute(
        "select count(*), count(distinct customer_id) from t "
        "where customer_type = 'disloyal Customer'"
    ).fetchone()
    # The default pool (10,000 per gender) makes a loyal customer return about 4 times here.
    assert loyal_rows / loyal_ids > 3
    assert disloyal_ids >= 0.999 * disloyal_rows
    overlap = con.execute(
        "select count(distinct customer_id) from t where customer_type = 'Loyal Customer' "
        "and customer_id in (select customer_id from t where customer_type <> 'Loyal Customer')"
    ).fetchone()[0]
    assert overlap == 0
    genders_per_customer = con.execute(
        "select max(n) from (select count(distinct gender) as n from t group by customer_id)"
    ).fetchone()[0]
    assert genders_per_customer == 1
    assert con.execute(
        "select count(*) from t where not regexp_full_match(customer_id, 'CUS-[0-9a-f]{16}')"
    ).fetchone() == (0,)


def test_loyal_customers_return_across_files_of_the_same_seed() -> None:
    table = survey_table(20_000, loyal_share=1.0)
    a = set(enrich(table, seed=4, file_key="a").column("customer_id").to_pylist())
    b = set(enrich(table, seed=4, file_key="b").column("customer_id").to_pylist())
    other_seed = set(enrich(table, seed=5, file_key="a").column("customer_id").to_pylist())
    assert len(a & b) > 0.5 * len(a)
    assert not a & other_seed


def test_loyal_pool_size_is_a_config_knob() -> None:
    table = survey_table(10_000, loyal_share=1.0)
    out = enrich(table, seed=4, file_key="a", config=EnrichConfig(loyal_pool_size=50))
    # At most 50 customers of each gender.
    assert len(set(out.column("customer_id").to_pylist())) <= 100


def test_names_match_gender_and_customer() -> None:
    table = survey_table(30_000)
    con = joined(table, enrich(table, seed=8, file_key="names"))
    rows = con.execute("select gender, customer_id, passenger_name from t").fetchall()
    female_names, male_names = set(FakerNames.first_names_female), set(FakerNames.first_names_male)
    last_names = set(FakerNames.last_names)
    for gender, _, name in rows:
        first, last = name.split(" ")
        assert first in (female_names if gender == "Female" else male_names)
        assert last in last_names
    names_per_customer = con.execute(
        "select max(n) from "
        "(select count(distinct passenger_name) as n from t group by customer_id)"
    ).fetchone()[0]
    assert names_per_customer == 1
    # Names vary: many distinct first and last names.
    assert len({name for _, _, name in rows}) > 10_000


def test_rows_on_one_flight_share_route_and_schedule() -> None:
    table = survey_table(100_000)
    con = joined(table, enrich(table, seed=6, file_key="flights"))
    inconsistent = con.execute(
        """
        select count(*) from (
            select flight_id
            from t
            group by flight_id
            having count(distinct (origin_airport, destination_airport, carrier_code,
                flight_number, flight_date, scheduled_departure_at, scheduled_arrival_at)) > 1
        )
        """
    ).fetchone()[0]
    assert inconsistent == 0
    shared_rows = con.execute(
        "select sum(n) from (select count(*) as n from t group by flight_id having count(*) > 1)"
    ).fetchone()[0]
    assert shared_rows > 0.3 * table.num_rows
    bad_ids = con.execute(
        """
        select count(*) from t
        where flight_id <> carrier_code || cast(flight_number as varchar) || '-'
            || strftime(flight_date, '%Y-%m-%d')
           or not regexp_full_match(carrier_code, '[A-Z0-9]{2}')
           or origin_airport = destination_airport
        """
    ).fetchone()[0]
    assert bad_ids == 0
    assert set(
        con.execute("select distinct carrier_code from t").fetchnumpy()["carrier_code"]
    ) <= set(EnrichConfig().carriers)


def test_carriers_come_from_the_config() -> None:
    out = enrich(survey_table(2_000), seed=1, file_key="c", config=EnrichConfig(carriers=("XY",)))
    assert set(out.column("carrier_code").to_pylist()) == {"XY"}
    assert all(fid.startswith("XY") for fid in out.column("flight_id").to_pylist())


def seed_airports() -> dict[str, tuple[float, float]]:
    with SEED_PATH.open(encoding="utf-8", newline="") as handle:
        return {
            r["airport_code"]: (float(r["latitude"]), float(r["longitude"]))
            for r in csv.DictReader(handle)
        }


def route_miles(origin: list[str], destination: list[str]) -> np.ndarray:
    """Great-circle miles between seed airports, computed here from the seed's coordinates."""
    airports = seed_airports()
    lat1, lon1 = np.radians(np.array([airports[c] for c in origin])).T
    lat2, lon2 = np.radians(np.array([airports[c] for c in destination])).T
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * 3958.76 * np.arcsin(np.sqrt(a))


def test_route_distance_is_within_ten_percent_of_flight_distance() -> None:
    # Distances as the public exports have them, and a few outside any real route.
    distances = np.concatenate(
        [np.random.default_rng(1).integers(31, 7_000, 50_000), [1, 5, 20, 15_000, 30_000]]
    )
    table = survey_table(len(distances), distances=distances)
    out = enrich(table, seed=9, file_key="routes")
    origin = out.column("origin_airport").to_pylist()
    destination = out.column("destination_airport").to_pylist()
    assert set(origin) | set(destination) <= set(seed_airports())

    miles = route_miles(origin, destination)
    realistic = (distances >= 50) & (distances <= 10_000)
    error = np.abs(miles - distances) / distances
    assert np.mean(error[realistic] <= 0.10 + 1e-6) >= 0.99
    # Out-of-range distances get the closest route there is.
    assert miles[distances == 1][0] < 30
    assert miles[distances == 30_000][0] > 12_000


def test_times_follow_delays_and_come_in_order() -> None:
    table = survey_table(50_000)
    con = joined(table, enrich(table, seed=10, file_key="times"))
    checks = {
        "departure not on flight date": "cast(scheduled_departure_at as date) <> flight_date",
        "departure delay not applied": "actual_departure_at <> scheduled_departure_at "
        "+ departure_delay_minutes * interval 1 minute",
        "departure before schedule": "departure_delay_minutes >= 0 "
        "and actual_departure_at < scheduled_departure_at",
        "arrival not after departure": "actual_arrival_at <= actual_departure_at",
        "scheduled arrival not after departure": "scheduled_arrival_at <= scheduled_departure_at",
        "submission not after arrival": "survey_submitted_at <= actual_arrival_at",
        "submission more than 48 h after arrival": "survey_submitted_at "
        "> actual_arrival_at + interval 48 hour",
        "null arrival delay not replaced by departure delay": "arrival_delay_minutes is null "
        "and actual_arrival_at <> scheduled_arrival_at "
        "+ departure_delay_minutes * interval 1 minute",
        # The clamp to a minimum flight time only acts when arrival delay << departure delay.
        "arrival delay not applied": "arrival_delay_minutes >= departure_delay_minutes - 5 "
        "and actual_arrival_at <> scheduled_arrival_at "
        "+ arrival_delay_minutes * interval 1 minute",
        "departure hour outside 05:00-23:00": "hour(scheduled_departure_at) < 5 "
        "or scheduled_departure_at > flight_date + interval 23 hour",
    }
    for what, condition in checks.items():
        bad = con.execute(f"select count(*) from t where {condition}").fetchone()[0]
        assert bad == 0, what


def test_arrival_is_after_departure_even_when_arrival_delay_is_far_below() -> None:
    n = 2_000
    table = survey_table(n, distances=np.full(n, 60))
    table = table.set_column(
        table.schema.get_field_index("departure_delay_minutes"),
        "departure_delay_minutes",
        pa.array(np.full(n, 300), pa.int32()),
    ).set_column(
        table.schema.get_field_index("arrival_delay_minutes"),
        "arrival_delay_minutes",
        pa.array(np.zeros(n), pa.int32()),
    )
    out = enrich(table, seed=1, file_key="clamp")
    departure = np.asarray(out.column("actual_departure_at")).astype(np.int64)
    arrival = np.asarray(out.column("actual_arrival_at")).astype(np.int64)
    # At least 20 minutes + distance / 600 mph in the air.
    assert np.all(arrival - departure >= (20 + 60 * 60 / 600) * 60_000_000)


def test_block_time_grows_with_route_distance() -> None:
    short = enrich(survey_table(500, distances=np.full(500, 300)), seed=1, file_key="b")
    long = enrich(survey_table(500, distances=np.full(500, 6_000)), seed=1, file_key="b")

    def block_minutes(out: pa.Table) -> np.ndarray:
        start = np.asarray(out.column("scheduled_departure_at")).astype(np.int64)
        end = np.asarray(out.column("scheduled_arrival_at")).astype(np.int64)
        return (end - start) / 60_000_000

    # 30 min + distance / 500 mph, within the 10% route tolerance and 5-minute rounding.
    assert np.all(np.abs(block_minutes(short) - (30 + 300 * 0.12)) <= 0.1 * 300 * 0.12 + 2.5)
    assert np.all(np.abs(block_minutes(long) - (30 + 6_000 * 0.12)) <= 0.1 * 6_000 * 0.12 + 2.5)


@pytest.mark.parametrize(
    ("window_start", "window_days"),
    [(date(2026, 1, 1), 180), (date(2025, 3, 1), 30)],
)
def test_submissions_fall_in_the_window(window_start: date, window_days: int) -> None:
    # Delays up to 26 hours, the longest in the public exports (1,592 minutes).
    table = survey_table(50_000, max_delay=1_600)
    config = EnrichConfig(window_start=window_start, window_days=window_days)
    out = enrich(table, seed=12, file_key="window", config=config)
    start = datetime.combine(window_start, datetime.min.time())
    end = start + timedelta(days=window_days)
    submitted = out.column("survey_submitted_at").to_pylist()
    assert min(submitted) >= start
    assert max(submitted) < end
    flight_dates = out.column("flight_date").to_pylist()
    assert min(flight_dates) == window_start
    # Flights fill the window but its last five days, which only receive submissions.
    assert max(flight_dates) == window_start + timedelta(days=window_days - 6)
    # Spread: every day of the flight window has flights.
    assert len(set(flight_dates)) == window_days - 5


def test_bad_input_and_config_raise_contrail_errors() -> None:
    table = survey_table(10)
    with pytest.raises(ContrailError, match="flight_distance"):
        enrich(table.drop_columns(["flight_distance"]), seed=1, file_key="abc123")
    with pytest.raises(ContrailError, match="first_row"):
        enrich(table, seed=1, file_key="abc123", first_row=-1)
    with pytest.raises(ContrailError, match="carriers"):
        enrich(table, seed=1, file_key="abc123", config=EnrichConfig(carriers=("TOO",)))
    with pytest.raises(ContrailError, match="window_days"):
        enrich(table, seed=1, file_key="abc123", config=EnrichConfig(window_days=0))


@pytest.mark.realdata
def test_real_invistico_rows_get_close_routes_and_shared_flights() -> None:
    if not INVISTICO_HEAD.exists():
        pytest.skip(f"real data absent: {INVISTICO_HEAD}")
    raw = pa.csv.read_csv(INVISTICO_HEAD)
    table = raw.rename_columns([INVISTICO.columns[name] for name in raw.column_names])
    out = enrich(table, seed=1, file_key="invistico-head")
    distances = table.column("flight_distance").to_numpy()
    miles = route_miles(
        out.column("origin_airport").to_pylist(), out.column("destination_airport").to_pylist()
    )
    assert np.mean(np.abs(miles - distances) / distances <= 0.10 + 1e-6) >= 0.99
    flights = pa.TableGroupBy(out, "flight_id").aggregate([("survey_id", "count")])
    on_shared = pc.sum(
        pc.filter(flights["survey_id_count"], pc.greater(flights["survey_id_count"], 1))
    )
    assert on_shared.as_py() > 0.2 * table.num_rows
