"""Landing CSV exports on DuckDB: quarantine, reconciliation, circuit breaker, idempotency."""

from __future__ import annotations

import csv
import gzip
import hashlib
import multiprocessing
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from ingestion.config import Settings
from ingestion.errors import ContrailError
from ingestion.layouts import INVISTICO_HEADER, PASSENGER_SATISFACTION_HEADER, detect_layout
from ingestion.load_csv import LoadResult, _portable, _Preparation, load_csv

HEADER = ",".join(INVISTICO_HEADER)
CLASSES = ("Eco", "Business", "Eco Plus")


def good_row(i: int) -> list[str]:
    """A valid Invistico row whose values vary with i."""
    return [
        "satisfied" if i % 3 else "dissatisfied",
        "Female" if i % 2 else "Male",
        "Loyal Customer",
        str(18 + i % 60),
        "Business travel",
        CLASSES[i % 3],
        str(200 + 7 * i),
        *(str((i + k) % 6) for k in range(14)),
        str(i % 40),
        "" if i % 10 == 4 else str(i % 35),
    ]


def line(values: list[str]) -> str:
    return ",".join(values)


def write(path: Path, lines: list[str | bytes], *, end: bytes = b"\n", final: bool = True) -> Path:
    raw = [x if isinstance(x, bytes) else x.encode() for x in lines]
    path.write_bytes(end.join(raw) + (end if final else b""))
    return path


def good_lines(n: int, start: int = 0) -> list[str]:
    return [line(good_row(i)) for i in range(start, start + n)]


def query(settings: Settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def count(settings: Settings, table: str) -> int:
    return query(settings, f"select count(*) from raw.{table}")[0][0]


def assert_reconciles(result: LoadResult, lines_after_header: int) -> None:
    assert result.rows_in_file == lines_after_header
    assert result.rows_loaded + result.rows_quarantined == result.rows_in_file


def test_loads_good_rows_with_metadata_and_audit(tmp_path: Path, settings: Settings) -> None:
    rows = good_lines(30)
    path = write(tmp_path / "surveys.csv", [HEADER, *rows])
    result = load_csv(path, settings)

    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.status == "loaded"
    assert result.batch_id == "csv-" + sha[:16]
    assert result.file_sha256 == sha
    assert result.layout == "invistico"
    assert (result.rows_in_file, result.rows_loaded, result.rows_quarantined) == (30, 30, 0)
    landed = query(
        settings,
        "select source_line, age, travel_class, arrival_delay_minutes, inflight_service, "
        "batch_id, file_sha256, survey_id is not null "
        "from raw.survey_responses order by source_line",
    )
    expected = []
    for n, text in enumerate(rows, start=2):
        values = text.split(",")
        arrival = int(values[22]) if values[22] else None
        expected.append((n, int(values[3]), values[5], arrival, None, result.batch_id, sha, True))
    assert landed == expected
    audit = query(
        settings,
        "select status, rows_in_file, rows_loaded, rows_quarantined, file_bytes, layout "
        "from raw.load_audit",
    )
    assert audit == [("loaded", 30, 30, 0, path.stat().st_size, "invistico")]


def _bad_cases() -> list[tuple[str, bytes, str, str]]:
    def with_value(column: str, value: str) -> bytes:
        values = good_row(99)
        values[INVISTICO_HEADER.index(column)] = value
        return line(values).encode()

    return [
        ("field_count", line(good_row(99)[:-1]).encode(), "wrong_field_count", "22 fields"),
        ("not_integer", with_value("Age", "abc"), "not_an_integer", 'column "Age" = "abc" is'),
        ("hex", with_value("Age", "0x1f"), "not_an_integer", '"Age" = "0x1f" is not an'),
        ("half_minute", with_value("Arrival Delay in Minutes", "44.5"), "not_an_integer", "44.5"),
        ("rating", with_value("Seat comfort", "7"), "rating_out_of_range", "outside 0-5"),
        ("rating_negative", with_value("Cleanliness", "-1"), "rating_out_of_range", "0-5"),
        ("age", with_value("Age", "130"), "age_out_of_range", 'column "Age" = "130"'),
        ("delay", with_value("Departure Delay in Minutes", "-5"), "negative_delay", "negative"),
        ("class", with_value("Class", "Economy"), "unknown_value", '"Class" = "Economy"'),
        ("satisfaction", with_value("satisfaction", "happy"), "unknown_value", "happy"),
        ("gender", with_value("Gender", "F"), "unknown_value", '"Gender" = "F"'),
        ("customer", with_value("Customer Type", "New"), "unknown_value", "Customer Type"),
        ("travel", with_value("Type of Travel", "Leisure"), "unknown_value", "Type of Travel"),
        ("empty", with_value("Age", ""), "empty_required_field", 'column "Age" is empty'),
        ("header", HEADER.encode(), "repeated_header", "repeated header"),
        ("utf8", with_value("Class", "Eco") + b"\xff", "invalid_utf8", "0xff"),
        ("blank", b"", "blank_line", "blank line"),
        ("quote", with_value("Class", '"Eco'), "wrong_field_count", "unbalanced quote"),
        ("quoted_comma", with_value("Class", '"Eco, Plus"'), "unknown_value", "Eco, Plus"),
    ]


@pytest.mark.parametrize(
    ("bad", "reason", "detail"),
    [case[1:] for case in _bad_cases()],
    ids=[case[0] for case in _bad_cases()],
)
def test_bad_line_is_quarantined(
    tmp_path: Path, settings: Settings, bad: bytes, reason: str, detail: str
) -> None:
    rows = good_lines(40)
    path = write(tmp_path / "mixed.csv", [HEADER, *rows[:3], bad, *rows[3:]])
    result = load_csv(path, settings)

    assert_reconciles(result, 41)
    assert (result.rows_loaded, result.rows_quarantined) == (40, 1)
    assert result.quarantined_by_reason == {reason: 1}
    [(source_line, got_reason, got_detail, raw_text, source_file)] = query(
        settings, "select source_line, reason, detail, raw_text, source_file from raw.quarantine"
    )
    assert source_line == 5  # header, three good rows, then the bad line
    assert got_reason == reason
    assert got_detail.startswith("line 5: ") and detail in got_detail
    assert raw_text == bad.decode("utf-8", "backslashreplace")
    assert source_file == str(path.resolve())
    landed = [r[0] for r in query(settings, "select source_line from raw.survey_responses")]
    assert sorted(landed) == [*range(2, 5), *range(6, 43)]


def test_first_failing_column_wins(tmp_path: Path, settings: Settings) -> None:
    values = good_row(1)
    values[3] = "abc"  # Age
    values[7] = "9"  # Seat comfort
    path = write(tmp_path / "two.csv", [HEADER, line(values), *good_lines(30)])
    load_csv(path, settings)
    assert query(settings, "select reason from raw.quarantine") == [("not_an_integer",)]


def test_trailing_blank_line_is_quarantined_but_final_newline_is_not(
    tmp_path: Path, settings: Settings
) -> None:
    rows = good_lines(30)
    ends_once = write(tmp_path / "once.csv", [HEADER, *rows])
    result = load_csv(ends_once, settings)
    assert (result.rows_in_file, result.rows_quarantined) == (30, 0)

    ends_twice = write(tmp_path / "twice.csv", [HEADER, *rows, ""])
    result = load_csv(ends_twice, settings)
    assert_reconciles(result, 31)
    assert result.quarantined_by_reason == {"blank_line": 1}
    assert query(settings, "select source_line, raw_text from raw.quarantine") == [(32, "")]


def test_last_line_without_newline_loads(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path / "open.csv", [HEADER, *good_lines(25)], final=False)
    result = load_csv(path, settings)
    assert (result.rows_in_file, result.rows_loaded) == (25, 25)


def test_bom_crlf_and_quoted_fields(tmp_path: Path, settings: Settings) -> None:
    rows = []
    for i in range(30):
        values = good_row(i)
        values[5] = f'"{values[5]}"'  # "Eco Plus" in quotes
        rows.append(line(values))
    path = tmp_path / "excel.csv"
    write(path, [HEADER, *rows], end=b"\r\n")
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = load_csv(path, settings)
    assert (result.rows_in_file, result.rows_loaded, result.rows_quarantined) == (30, 30, 0)
    classes = query(settings, "select travel_class from raw.survey_responses order by source_line")
    assert [c for (c,) in classes] == [CLASSES[i % 3] for i in range(30)]


def test_crlf_with_blank_line(tmp_path: Path, settings: Settings) -> None:
    rows = good_lines(30)
    path = write(tmp_path / "crlf.csv", [HEADER, *rows[:10], "", *rows[10:]], end=b"\r\n")
    result = load_csv(path, settings)
    assert result.quarantined_by_reason == {"blank_line": 1}
    assert query(settings, "select source_line from raw.quarantine") == [(12,)]


@pytest.mark.parametrize("name", ["surveys.csv.gz", "surveys.bin"])
def test_gzip_by_extension_or_magic(tmp_path: Path, settings: Settings, name: str) -> None:
    rows = good_lines(30)
    path = tmp_path / name
    path.write_bytes(gzip.compress(("\n".join([HEADER, *rows, ""])).encode()))
    result = load_csv(path, settings)
    assert (result.rows_in_file, result.rows_loaded) == (30, 30)
    assert result.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_passenger_satisfaction_layout(tmp_path: Path, settings: Settings) -> None:
    by_name = dict(zip(INVISTICO_HEADER, good_row(0), strict=True))
    rows = []
    for i in range(30):
        values = dict(zip(INVISTICO_HEADER, good_row(i), strict=True))
        values.update({"": str(i), "id": str(1000 + i), "Inflight service": str(i % 5)})
        values["satisfaction"] = "neutral or dissatisfied" if i % 2 else "satisfied"
        delay = values["Arrival Delay in Minutes"]
        values["Arrival Delay in Minutes"] = f"{delay}.0" if delay else ""
        rows.append(line([values[h] for h in PASSENGER_SATISFACTION_HEADER]))
    assert by_name  # the Invistico values cover every shared column
    path = write(tmp_path / "train.csv", [",".join(PASSENGER_SATISFACTION_HEADER), *rows])
    result = load_csv(path, settings)
    assert result.layout == "passenger-satisfaction"
    assert (result.rows_loaded, result.rows_quarantined) == (30, 0)
    landed = query(
        settings,
        "select satisfaction, inflight_service, online_support, arrival_delay_minutes "
        "from raw.survey_responses order by source_line",
    )
    expected = []
    for i in range(30):
        arrival = good_row(i)[22]
        expected.append(
            (
                "neutral or dissatisfied" if i % 2 else "satisfied",
                i % 5,
                None,
                int(arrival) if arrival else None,
            )
        )
    assert landed == expected


def test_named_layout_must_match(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path / "s.csv", [HEADER, *good_lines(3)])
    with pytest.raises(ContrailError, match="does not match layout 'passenger-satisfaction'"):
        load_csv(path, settings, layout="passenger-satisfaction")


def test_yaml_mapping_with_value_translation(tmp_path: Path, settings: Settings) -> None:
    source = {name: f"Q{k}" for k, name in enumerate(INVISTICO_HEADER)}
    source["satisfaction"] = "Overall"
    canonical = dict(zip(INVISTICO_HEADER, good_row(0), strict=True))  # keys only
    mapping_lines = ["name: my-airline-2025", "columns:"]
    from ingestion.layouts import PUBLIC_HEADER_TO_CANONICAL

    for name in canonical:
        mapping_lines.append(f'  "{source[name]}": {PUBLIC_HEADER_TO_CANONICAL[name]}')
    mapping_lines += ["  Row: ~", "values:", "  satisfaction: {yes: satisfied, no: dissatisfied}"]
    mapping = tmp_path / "airline.yml"
    mapping.write_text("\n".join(mapping_lines) + "\n")

    header = ",".join(["Row", *(source[h] for h in INVISTICO_HEADER)])
    rows = []
    for i in range(30):
        values = good_row(i)
        values[0] = "yes" if values[0] == "satisfied" else "no"
        rows.append(line([str(i), *values]))
    path = write(tmp_path / "other.csv", [header, *rows])
    result = load_csv(path, settings, mapping=mapping)
    assert result.layout == "mapping:airline.yml"
    assert (result.rows_loaded, result.rows_quarantined) == (30, 0)
    landed = query(settings, "select satisfaction, age from raw.survey_responses order by 1, 2")
    expected = sorted((good_row(i)[0], int(good_row(i)[3])) for i in range(30))
    assert landed == expected


def test_unknown_header_fails_naming_columns(tmp_path: Path, settings: Settings) -> None:
    header = HEADER.replace("Gate location", "Gate")
    path = write(tmp_path / "odd.csv", [header, *good_lines(3)])
    with pytest.raises(ContrailError) as caught:
        load_csv(path, settings)
    message = str(caught.value)
    assert f"{path} line 1" in message
    assert '"Gate location" (gate_location)' in message
    assert 'unrecognised columns: "Gate"' in message


def test_circuit_breaker_rejects_whole_file(tmp_path: Path, settings: Settings) -> None:
    rows = good_lines(18)
    bad_age, bad_class = good_row(1), good_row(2)
    bad_age[3], bad_class[5] = "x1", "First"
    path = write(tmp_path / "bad.csv", [HEADER, *rows[:5], line(bad_age), *rows[5:], ""])
    path.write_bytes(path.read_bytes() + line(bad_class).encode() + b"\n")
    # 21 data lines, 3 bad (14%): more than the 5% allowed
    with pytest.raises(ContrailError) as caught:
        load_csv(path, settings)
    message = str(caught.value)
    assert "3 of 21 rows are bad" in message
    assert "blank_line 1, not_an_integer 1, unknown_value 1" in message
    assert 'line 7: column "Age" = "x1" is not an integer' in message
    assert count(settings, "survey_responses") == 0
    assert count(settings, "quarantine") == 0
    audit = query(
        settings, "select status, rows_loaded, rows_quarantined, message from raw.load_audit"
    )
    assert [(a[0], a[1], a[2]) for a in audit] == [("rejected", 0, 3)]
    assert "not_an_integer" in audit[0][3]

    # The same file loads once the limit allows it.
    result = load_csv(path, replace(settings, max_bad_share=0.2))
    assert (result.status, result.rows_loaded, result.rows_quarantined) == ("loaded", 18, 3)
    assert count(settings, "survey_responses") == 18


def test_same_content_is_skipped_and_force_replaces(tmp_path: Path, settings: Settings) -> None:
    rows = good_lines(30)
    first = write(tmp_path / "a.csv", [HEADER, *rows[:10], "", *rows[10:]])
    copy = tmp_path / "elsewhere" / "b.csv"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())

    assert load_csv(first, settings).status == "loaded"
    again = load_csv(copy, settings)
    assert again.status == "skipped_duplicate"
    assert again.batch_id == load_csv(first, settings).batch_id
    assert count(settings, "survey_responses") == 30
    assert count(settings, "load_audit") == 1

    forced = load_csv(copy, settings, force=True)
    assert (forced.status, forced.rows_loaded, forced.rows_quarantined) == ("replaced", 30, 1)
    assert count(settings, "survey_responses") == 30
    assert count(settings, "quarantine") == 1
    assert query(settings, "select status, source_file from raw.load_audit") == [
        ("replaced", str(copy.resolve()))
    ]


def test_blocks_split_anywhere_keep_lines_and_enrichment(
    tmp_path: Path, settings: Settings
) -> None:
    rows = good_lines(3000)
    bad = [7, 700, 1401, 2999]  # indexes replaced by bad lines
    for i in bad:
        rows[i] = rows[i].replace("Loyal Customer", "Loyal")
    path = write(tmp_path / "long.csv", [HEADER, *rows])
    small = replace(settings, chunk_rows=60, data_dir=tmp_path / "small")
    result = load_csv(path, small)
    assert (result.rows_loaded, result.rows_quarantined) == (2996, 4)
    assert query(small, "select source_line from raw.quarantine order by 1") == [
        (i + 2,) for i in bad
    ]
    whole = load_csv(path, settings)
    assert whole.rows_loaded == 2996
    ids = "select source_line, survey_id, flight_id from raw.survey_responses order by 1"
    assert query(small, ids) == query(settings, ids)


def test_progress_reports_every_byte(tmp_path: Path, settings: Settings) -> None:
    path = write(tmp_path / "p.csv", [HEADER, *good_lines(500)])
    seen: list[int] = []
    load_csv(path, replace(settings, chunk_rows=50), progress=seen.append)
    assert seen and sum(seen) == path.stat().st_size


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "the file is empty"),
        (HEADER.encode() + b"\n", "header but no data rows"),
        (HEADER.encode(), "header but no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a CSV"),
        (b"\xff\xfe\x00s\x00a\x00t\n", "not a CSV"),
    ],
    ids=["empty", "header_only", "header_no_newline", "png", "utf16"],
)
def test_unloadable_files(
    tmp_path: Path, settings: Settings, content: bytes, expected: str
) -> None:
    path = tmp_path / "input.csv"
    path.write_bytes(content)
    with pytest.raises(ContrailError, match=expected) as caught:
        load_csv(path, settings)
    assert str(path) in str(caught.value)


def test_missing_file(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(ContrailError, match="no such file"):
        load_csv(tmp_path / "absent.csv", settings)


@pytest.mark.realdata
def test_real_invistico_prefix(invistico_head: Path, settings: Settings) -> None:
    with invistico_head.open(newline="", encoding="utf-8") as handle:
        records = list(csv.DictReader(handle))
    blank_arrivals = sum(1 for r in records if r["Arrival Delay in Minutes"] == "")
    satisfied = sum(1 for r in records if r["satisfaction"] == "satisfied")

    result = load_csv(invistico_head, settings)
    assert (result.rows_in_file, result.rows_loaded, result.rows_quarantined) == (
        len(records),
        len(records),
        0,
    )
    assert len(records) == 37_955
    [(nulls, happy)] = query(
        settings,
        "select count(*) - count(arrival_delay_minutes), "
        "sum(case when satisfaction = 'satisfied' then 1 else 0 end) from raw.survey_responses",
    )
    assert (nulls, happy) == (blank_arrivals, satisfied) == (137, 16_984)


def test_crlf_file_with_a_bad_value_quotes_the_line_without_cr(
    tmp_path: Path, settings: Settings
) -> None:
    rows = good_lines(30)
    values = good_row(99)
    values[INVISTICO_HEADER.index("Age")] = "abc"
    bad = line(values)
    path = write(tmp_path / "crlf.csv", [HEADER, *rows[:10], bad, *rows[10:]], end=b"\r\n")
    result = load_csv(path, settings)
    assert (result.rows_loaded, result.rows_quarantined) == (30, 1)
    assert query(settings, "select source_line, reason, raw_text from raw.quarantine") == [
        (12, "not_an_integer", bad)
    ]
    landed = query(settings, "select source_line, age from raw.survey_responses order by 1")
    expected_lines = [*range(2, 12), *range(13, 33)]
    assert landed == [
        (n, int(text.split(",")[3])) for n, text in zip(expected_lines, rows, strict=True)
    ]


def test_loads_leave_no_worker_process_behind(tmp_path: Path, settings: Settings) -> None:
    good = write(tmp_path / "good.csv", [HEADER, *good_lines(40)])
    load_csv(good, settings)
    load_csv(good, settings)  # skipped as a duplicate while the worker is mid-file
    bad = write(tmp_path / "bad.csv", [HEADER, *good_lines(10), *(["x"] * 5)])
    with pytest.raises(ContrailError, match="rejected"):
        load_csv(bad, settings)
    damaged = tmp_path / "damaged.csv.gz"
    damaged.write_bytes(gzip.compress(("\n".join([HEADER, *good_lines(200)])).encode())[:-30])
    with pytest.raises(ContrailError, match="damaged or truncated"):
        load_csv(damaged, settings)
    assert multiprocessing.active_children() == []


def test_worker_errors_reach_the_loader(tmp_path: Path) -> None:
    layout = detect_layout(list(INVISTICO_HEADER))
    with _Preparation(tmp_path / "vanished.csv", layout, 1000, 1) as preparation:
        preparation.start("0" * 64, 1.0)
        with pytest.raises(FileNotFoundError, match=r"vanished\.csv"):
            list(preparation.blocks(None))
    assert multiprocessing.active_children() == []


def test_unpicklable_worker_error_keeps_its_text() -> None:
    class Local(Exception):  # a local class cannot be pickled
        pass

    sent = _portable(Local("disk on fire"))
    assert isinstance(sent, ContrailError)
    assert "disk on fire" in str(sent) and "Local" in str(sent)
    kept = ContrailError("x.csv line 3: bad")
    assert _portable(kept) is kept
