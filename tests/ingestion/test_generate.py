"""The synthetic survey generator: file format, determinism and calibration.

Calibration statistics are computed here with DuckDB SQL over the written CSV, so they check
the file a loader would read, not the generator's own arrays.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from ingestion.errors import ContrailError
from ingestion.generate import (
    BLOCK_ROWS,
    GeneratorConfig,
    ServiceProfile,
    generate_table,
    write_csv,
)
from ingestion.layouts import INVISTICO, INVISTICO_HEADER
from ingestion.schema import (
    CUSTOMER_TYPE_VALUES,
    GENDER_VALUES,
    RATING_COLUMNS,
    SURVEY_COLUMNS,
    TRAVEL_CLASS_VALUES,
    TYPE_OF_TRAVEL_VALUES,
)

SAMPLE_ROWS = 200_000
SAMPLE_SEED = 7
SATISFIED = "avg(case when satisfaction = 'satisfied' then 1.0 else 0.0 end)"
# Rating columns of the Invistico layout, as canonical names.
SERVICES = [
    INVISTICO.columns[h] for h in INVISTICO_HEADER if INVISTICO.columns[h] in RATING_COLUMNS
]


def read_sql(path: Path) -> str:
    """A DuckDB table expression over a generated CSV, with canonical column names."""
    types = dict(SURVEY_COLUMNS)
    columns = ", ".join(
        f"'{INVISTICO.columns[h]}': '{types[INVISTICO.columns[h]]}'" for h in INVISTICO_HEADER
    )
    return (
        f"read_csv('{path}', header = true, auto_detect = false, delim = ',', quote = '', "
        f"columns = {{{columns}}})"
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generate") / "sample.csv"
    write_csv(path, SAMPLE_ROWS, seed=SAMPLE_SEED)
    return path


@pytest.fixture(scope="module")
def db(sample: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"create table s as select * from {read_sql(sample)}")
    return con


def one(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    return con.execute(sql).fetchone()


def satisfied_share_by(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, float]:
    rows = con.execute(
        f"select {column}, avg(case when satisfaction = 'satisfied' then 1.0 else 0.0 end) "
        f"from s group by {column}"
    ).fetchall()
    return dict(rows)


def share_by(con: duckdb.DuckDBPyConnection, column: str) -> dict[str, float]:
    rows = con.execute(
        f"select {column}, count(*) / {SAMPLE_ROWS} from s group by {column}"
    ).fetchall()
    return dict(rows)


# --- file format ----------------------------------------------------------------------------


def test_header_is_the_invistico_header_and_lines_end_with_crlf(sample: Path) -> None:
    data = sample.read_bytes()
    first_line = data.partition(b"\r\n")[0]
    assert first_line.decode() == ",".join(INVISTICO_HEADER)
    assert data.count(b"\r\n") == SAMPLE_ROWS + 1
    assert data.count(b"\n") == SAMPLE_ROWS + 1
    assert data.endswith(b"\r\n")
    assert b'"' not in data


def test_every_line_has_23_fields_and_blank_arrival_delays_are_empty(
    sample: Path, db: duckdb.DuckDBPyConnection
) -> None:
    data = sample.read_bytes()
    assert data.count(b",") == (SAMPLE_ROWS + 1) * (len(INVISTICO_HEADER) - 1)
    # A blank arrival delay is the only way a line can end with a comma.
    blank_lines = data.count(b",\r\n")
    (nulls,) = one(db, "select count(*) from s where arrival_delay_minutes is null")
    assert blank_lines == nulls > 0


def test_csv_holds_the_same_rows_as_generate_table(sample: Path) -> None:
    con = duckdb.connect()
    from_file = con.sql(f"select * from {read_sql(sample)}").to_arrow_table()
    table = generate_table(SAMPLE_ROWS, seed=SAMPLE_SEED).drop_columns(["inflight_service"])
    assert from_file.column_names == table.column_names
    for name in table.column_names:
        assert from_file[name].cast(table.schema.field(name).type).equals(table[name]), name


def test_gzip_output_is_the_plain_file_compressed(tmp_path: Path) -> None:
    rows = BLOCK_ROWS + 100
    plain, packed, again = tmp_path / "a.csv", tmp_path / "a.csv.gz", tmp_path / "b.csv.gz"
    assert write_csv(plain, rows, seed=3) == rows
    assert write_csv(packed, rows, seed=3) == rows
    write_csv(again, rows, seed=3)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed.read_bytes()) == plain.read_bytes()
    assert sha256(packed) == sha256(again)
    [(count,)] = duckdb.sql(f"select count(*) from {read_sql(packed)}").fetchall()
    assert count == rows


def test_no_partial_file_is_left_behind(tmp_path: Path) -> None:
    out = tmp_path / "deep" / "surveys.csv"
    write_csv(out, 10, seed=1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["surveys.csv"]


def test_zero_rows_writes_only_the_header(tmp_path: Path) -> None:
    out = tmp_path / "empty.csv"
    assert write_csv(out, 0) == 0
    assert out.read_bytes() == (",".join(INVISTICO_HEADER) + "\r\n").encode()
    assert generate_table(0).num_rows == 0


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_bytes_and_other_seed_other_bytes(tmp_path: Path) -> None:
    rows = BLOCK_ROWS + 1_000
    paths = [tmp_path / f"{name}.csv" for name in ("a", "b", "c")]
    write_csv(paths[0], rows, seed=11)
    write_csv(paths[1], rows, seed=11)
    write_csv(paths[2], rows, seed=12)
    assert sha256(paths[0]) == sha256(paths[1])
    assert sha256(paths[0]) != sha256(paths[2])
    # Different seeds differ throughout, not just in a corner.
    a, c = (p.read_bytes().split(b"\r\n") for p in (paths[0], paths[2]))
    assert sum(x == y for x, y in zip(a[1:-1], c[1:-1], strict=True)) < rows // 100


def test_output_does_not_depend_on_chunk_rows(tmp_path: Path) -> None:
    rows = 2 * BLOCK_ROWS + 5_000
    digests = set()
    calls: dict[int, list[int]] = {}
    for chunk_rows in (1, BLOCK_ROWS, 100_000, 1_000_000):
        out = tmp_path / f"chunk{chunk_rows}.csv"
        seen: list[int] = []
        assert write_csv(out, rows, seed=5, chunk_rows=chunk_rows, progress=seen.append) == rows
        digests.add(sha256(out))
        calls[chunk_rows] = seen
    assert len(digests) == 1
    assert calls[1] == [BLOCK_ROWS, BLOCK_ROWS, 5_000]
    assert calls[BLOCK_ROWS] == [BLOCK_ROWS, BLOCK_ROWS, 5_000]
    assert calls[100_000] == [2 * BLOCK_ROWS, 5_000]  # rounded up to two blocks
    assert calls[1_000_000] == [rows]


def test_a_shorter_table_is_a_prefix_of_a_longer_one() -> None:
    short = generate_table(1_000, seed=9)
    long = generate_table(BLOCK_ROWS + 10, seed=9)
    assert long.num_rows == BLOCK_ROWS + 10
    assert long.slice(0, 1_000).equals(short)
    assert not generate_table(1_000, seed=10).equals(short)


# --- table contract and value domains -------------------------------------------------------


def test_table_has_the_canonical_columns_and_types() -> None:
    table = generate_table(5_000, seed=2)
    assert table.column_names == [name for name, _ in SURVEY_COLUMNS]
    for name, sql_type in SURVEY_COLUMNS:
        expected = pa.string() if sql_type == "varchar" else pa.int32()
        assert table.schema.field(name).type == expected, name
    assert table["inflight_service"].null_count == 5_000
    nullable = {"inflight_service", "arrival_delay_minutes"}
    for name in table.column_names:
        if name not in nullable:
            assert table[name].null_count == 0, name


def test_categorical_values_come_from_the_schema(db: duckdb.DuckDBPyConnection) -> None:
    expected = {
        "satisfaction": {"satisfied", "dissatisfied"},
        "gender": set(GENDER_VALUES),
        "customer_type": set(CUSTOMER_TYPE_VALUES),
        "type_of_travel": set(TYPE_OF_TRAVEL_VALUES),
        "travel_class": set(TRAVEL_CLASS_VALUES),
    }
    for column, values in expected.items():
        seen = {v for (v,) in db.execute(f"select distinct {column} from s").fetchall()}
        assert seen == values, column


def test_ratings_are_integers_0_to_5_using_every_value(db: duckdb.DuckDBPyConnection) -> None:
    for column in SERVICES:
        values = {v for (v,) in db.execute(f"select distinct {column} from s").fetchall()}
        assert values == {0, 1, 2, 3, 4, 5}, column


# --- calibration ----------------------------------------------------------------------------


def test_satisfied_share_matches_the_public_file(db: duckdb.DuckDBPyConnection) -> None:
    (share,) = one(db, f"select {SATISFIED} from s")
    assert share == pytest.approx(0.547, abs=0.01)


def test_segment_mix_is_realistic(db: duckdb.DuckDBPyConnection) -> None:
    klass = share_by(db, "travel_class")
    assert klass["Business"] == pytest.approx(0.48, abs=0.02)
    assert klass["Eco"] == pytest.approx(0.45, abs=0.02)
    assert klass["Eco Plus"] == pytest.approx(0.07, abs=0.015)
    assert share_by(db, "customer_type")["Loyal Customer"] == pytest.approx(0.82, abs=0.015)
    assert share_by(db, "type_of_travel")["Business travel"] == pytest.approx(0.69, abs=0.015)
    assert share_by(db, "gender")["Female"] == pytest.approx(0.51, abs=0.015)


def test_business_loyal_and_business_travel_are_clearly_more_satisfied(
    db: duckdb.DuckDBPyConnection,
) -> None:
    klass = satisfied_share_by(db, "travel_class")
    loyalty = satisfied_share_by(db, "customer_type")
    travel = satisfied_share_by(db, "type_of_travel")
    assert klass["Business"] - klass["Eco"] >= 0.15
    assert klass["Business"] - klass["Eco Plus"] >= 0.15
    assert loyalty["Loyal Customer"] - loyalty["disloyal Customer"] >= 0.15
    assert travel["Business travel"] - travel["Personal Travel"] >= 0.15
    # Gender plays no part.
    gender = satisfied_share_by(db, "gender")
    assert abs(gender["Female"] - gender["Male"]) < 0.02


def test_age_is_a_bell_around_40_within_7_to_85(db: duckdb.DuckDBPyConnection) -> None:
    low, high, mean, median = one(db, "select min(age), max(age), avg(age), median(age) from s")
    assert 7 <= low <= 10
    assert 80 <= high <= 85
    assert 37 <= mean <= 42
    assert 35 <= median <= 42
    by_decade = dict(db.execute("select age // 10, count(*) from s group by 1").fetchall())
    peak = max(by_decade, key=by_decade.__getitem__)
    assert peak in (3, 4)
    # Rising to the peak, falling after it.
    assert by_decade[0] < by_decade[1] < by_decade[2] < by_decade[peak]
    assert by_decade[peak] > by_decade[5] > by_decade[6] > by_decade[7] > by_decade[8]
    # Disloyal customers are younger, as in the public file.
    by_type = dict(db.execute("select customer_type, avg(age) from s group by 1").fetchall())
    assert by_type["disloyal Customer"] < by_type["Loyal Customer"] - 5


def test_flight_distance_is_right_skewed_and_longer_in_business(
    db: duckdb.DuckDBPyConnection,
) -> None:
    low, high, mean, median, skew = one(
        db,
        "select min(flight_distance), max(flight_distance), avg(flight_distance), "
        "median(flight_distance), skewness(flight_distance) from s",
    )
    assert low >= 50
    assert 6_000 <= high <= 6_950
    assert 1_700 <= mean <= 2_300
    assert mean > median + 50
    assert skew > 0.5
    by_class = dict(
        db.execute("select travel_class, avg(flight_distance) from s group by 1").fetchall()
    )
    assert by_class["Business"] > by_class["Eco"] + 200
    assert by_class["Business"] > by_class["Eco Plus"] + 200


def rating_gaps(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Mean rating (0 excluded) of satisfied minus dissatisfied passengers, per service."""
    gaps = {}
    for column in SERVICES:
        (gap,) = one(
            con,
            f"select avg(case when satisfaction = 'satisfied' and {column} > 0 then {column} end)"
            f" - avg(case when satisfaction = 'dissatisfied' and {column} > 0 then {column} end)"
            " from s",
        )
        gaps[column] = gap
    return gaps


def test_entertainment_and_seat_comfort_drive_satisfaction_most(
    db: duckdb.DuckDBPyConnection,
) -> None:
    ranked = sorted(rating_gaps(db).items(), key=lambda item: item[1], reverse=True)
    names = [name for name, _ in ranked]
    assert set(names[:2]) == {"inflight_entertainment", "seat_comfort"}
    assert {"online_support", "ease_of_online_booking"} <= set(names[:4])
    assert set(names[-2:]) == {"gate_location", "departure_arrival_time_convenient"}
    gaps = dict(ranked)
    assert gaps["inflight_entertainment"] > 1.0
    assert abs(gaps["gate_location"]) < 0.1
    assert abs(gaps["departure_arrival_time_convenient"]) < 0.1
    # Every other service still separates the two groups a little.
    assert all(gap > 0.15 for name, gap in ranked[:-2])


def test_not_applicable_ratings_are_rare_and_service_dependent(
    db: duckdb.DuckDBPyConnection,
) -> None:
    shares = {
        column: one(db, f"select avg(case when {column} = 0 then 1.0 else 0 end) from s")[0]
        for column in SERVICES
    }
    for column in ("seat_comfort", "food_and_drink", "departure_arrival_time_convenient"):
        assert 0.02 <= shares[column] <= 0.055, column
    assert 0.01 <= shares["inflight_entertainment"] <= 0.04
    for column in ("cleanliness", "checkin_service", "baggage_handling"):
        assert 0 < shares[column] < 0.002, column
    assert all(share < 0.06 for share in shares.values())


def test_about_0_3_percent_of_arrival_delays_are_blank(db: duckdb.DuckDBPyConnection) -> None:
    (share,) = one(
        db, "select avg(case when arrival_delay_minutes is null then 1.0 else 0 end) from s"
    )
    assert share == pytest.approx(0.003, abs=0.0008)


def test_departure_delay_is_mostly_zero_with_a_heavy_tail(db: duckdb.DuckDBPyConnection) -> None:
    zero, low, high, p50, p99 = one(
        db,
        "select avg(case when departure_delay_minutes = 0 then 1.0 else 0 end), "
        "min(departure_delay_minutes), max(departure_delay_minutes), "
        "quantile_cont(departure_delay_minutes, 0.5) filter (where departure_delay_minutes > 0), "
        "quantile_cont(departure_delay_minutes, 0.99) from s",
    )
    assert zero == pytest.approx(0.55, abs=0.02)
    assert low == 0
    assert 800 <= high <= 1_600
    assert p50 < 30  # most delays are short...
    assert p99 > 100  # ...a few are very long
    assert p99 > 8 * p50


def test_arrival_delay_tracks_departure_and_is_heavy_tailed(
    db: duckdb.DuckDBPyConnection,
) -> None:
    correlation, low, high, zero, p99 = one(
        db,
        "select corr(arrival_delay_minutes, departure_delay_minutes), "
        "min(arrival_delay_minutes), max(arrival_delay_minutes), "
        "avg(case when arrival_delay_minutes = 0 then 1.0 else 0 end), "
        "quantile_cont(arrival_delay_minutes, 0.99) from s where arrival_delay_minutes is not null",
    )
    assert correlation > 0.9
    assert low == 0
    assert 800 <= high <= 1_600
    assert 0.45 <= zero <= 0.65
    assert p99 > 100
    # It is not a copy: noise in both directions.
    later, earlier = one(
        db,
        "select avg(case when arrival_delay_minutes > departure_delay_minutes then 1.0 else 0 end),"
        " avg(case when arrival_delay_minutes < departure_delay_minutes then 1.0 else 0 end)"
        " from s where departure_delay_minutes > 0",
    )
    assert later > 0.2
    assert earlier > 0.2


# --- configuration --------------------------------------------------------------------------


def test_satisfied_share_follows_the_config() -> None:
    con = duckdb.connect()
    config = GeneratorConfig(satisfied_share=0.3)
    con.register("t", generate_table(2 * BLOCK_ROWS, seed=4, config=config))
    (share,) = one(con, f"select {SATISFIED} from t")
    assert share == pytest.approx(0.3, abs=0.01)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (lambda: GeneratorConfig(loyal_share=1.5), "loyal_share"),
        (lambda: GeneratorConfig(satisfied_share=1.0), "satisfied_share"),
        (lambda: GeneratorConfig(class_mix_business_travel=(0.5, 0.5, 0.5)), "class_mix"),
        (lambda: GeneratorConfig(max_delay_minutes=20_000), "max_delay_minutes"),
        (
            lambda: GeneratorConfig(services=(ServiceProfile("seat_comfort", 3.0, 1.0, 0.0),)),
            "services",
        ),
    ],
)
def test_invalid_config_is_refused_with_the_field_named(config, named: str) -> None:
    with pytest.raises(ContrailError, match=named):
        config()


def test_invalid_arguments_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ContrailError, match="rows"):
        generate_table(-1)
    with pytest.raises(ContrailError, match="seed"):
        write_csv(tmp_path / "x.csv", 10, seed=-3)
    with pytest.raises(ContrailError, match="chunk_rows"):
        write_csv(tmp_path / "x.csv", 10, chunk_rows=0)
    assert not (tmp_path / "x.csv").exists()


def test_unwritable_destination_names_the_file(tmp_path: Path) -> None:
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    out = blocker / "surveys.csv"
    with pytest.raises(ContrailError, match=r"not_a_folder/surveys\.csv"):
        write_csv(out, 10)
