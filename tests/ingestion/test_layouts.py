"""Header detection and YAML column mappings."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingestion.errors import ContrailError
from ingestion.layouts import (
    INVISTICO_HEADER,
    PASSENGER_SATISFACTION_HEADER,
    detect_layout,
    load_mapping,
    resolve_layout,
)
from ingestion.schema import SURVEY_COLUMNS

CANONICAL = [name for name, _ in SURVEY_COLUMNS]


def test_detects_invistico() -> None:
    layout = detect_layout(list(INVISTICO_HEADER))
    assert layout.name == "invistico"
    assert layout.absent == ("inflight_service",)
    assert layout.columns["Class"] == "travel_class"


def test_detects_passenger_satisfaction() -> None:
    layout = detect_layout(list(PASSENGER_SATISFACTION_HEADER))
    assert layout.name == "passenger-satisfaction"
    assert layout.absent == ("online_support",)
    assert "id" not in layout.columns


def test_detection_ignores_order_and_keeps_the_file_order() -> None:
    header = list(reversed(INVISTICO_HEADER))
    layout = detect_layout(header)
    assert layout.name == "invistico"
    assert layout.header == tuple(header)


def test_unknown_header_names_missing_and_unrecognised_columns() -> None:
    header = [("Seat comfrt" if h == "Seat comfort" else h) for h in INVISTICO_HEADER]
    header.append("Loyalty tier")
    with pytest.raises(ContrailError) as caught:
        detect_layout(header, source="export.csv")
    message = str(caught.value)
    assert "export.csv line 1" in message
    assert '"Seat comfort" (seat_comfort)' in message
    assert '"Seat comfrt"' in message
    assert '"Loyalty tier"' in message
    assert "--mapping" in message


def test_named_layout_rejects_a_header_of_the_other_layout() -> None:
    with pytest.raises(ContrailError, match=r'Missing columns: .*"Online support"'):
        resolve_layout(detect_layout(list(INVISTICO_HEADER)), list(PASSENGER_SATISFACTION_HEADER))


def test_duplicate_header_column_is_an_error() -> None:
    header = [*INVISTICO_HEADER, "Age"]
    layout = detect_layout(list(INVISTICO_HEADER))
    with pytest.raises(ContrailError, match=r'repeats column.*"Age"'):
        resolve_layout(layout, header)


def _mapping_text(extra_columns: str = "", values: str = "") -> str:
    lines = ["name: my-airline-2025", "columns:"]
    for name in CANONICAL:
        if name in ("online_support", "inflight_service"):
            continue
        source = "Overall" if name == "satisfaction" else name.replace("_", " ").title()
        lines.append(f"  {source}: {name}")
    return "\n".join(lines) + "\n" + extra_columns + values


def test_load_mapping(tmp_path: Path) -> None:
    path = tmp_path / "airline.yml"
    path.write_text(
        _mapping_text(
            extra_columns="  Row Id: ~\n",
            values="values:\n  satisfaction: {yes: satisfied, no: dissatisfied}\n",
        )
    )
    layout = load_mapping(path)
    assert layout.name == "mapping:airline.yml"
    assert layout.columns["Overall"] == "satisfaction"
    assert layout.ignored == ("Row Id",)
    # YAML would read yes/no as booleans; the mapping keeps the text as written.
    assert layout.values == {"satisfaction": {"yes": "satisfied", "no": "dissatisfied"}}
    assert set(layout.absent) == {"online_support", "inflight_service"}


def test_mapping_unknown_canonical_column_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yml"
    text = _mapping_text().replace("Age: age", "Age: agee")
    path.write_text(text)
    line = text.splitlines().index("  Age: agee") + 1
    with pytest.raises(ContrailError, match=rf"bad.yml line {line}: 'agee' .*did you mean 'age'"):
        load_mapping(path)


def test_mapping_duplicate_target_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.yml"
    text = _mapping_text(extra_columns="  Years: age\n")
    path.write_text(text)
    lines = text.splitlines()
    first, second = lines.index("  Age: age") + 1, lines.index("  Years: age") + 1
    with pytest.raises(ContrailError, match=rf"dup.yml line {second}: .*line {first} already"):
        load_mapping(path)


def test_mapping_duplicate_source_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.yml"
    path.write_text(_mapping_text(extra_columns="  Age: flight_distance\n"))
    with pytest.raises(ContrailError, match="lists 'Age' twice"):
        load_mapping(path)


def test_mapping_missing_required_column(tmp_path: Path) -> None:
    path = tmp_path / "short.yml"
    path.write_text(_mapping_text().replace("  Gender: gender\n", ""))
    with pytest.raises(ContrailError, match=r"required canonical column.*gender"):
        load_mapping(path)


def test_mapping_value_outside_the_domain(tmp_path: Path) -> None:
    path = tmp_path / "values.yml"
    path.write_text(_mapping_text(values="values:\n  travel_class: {E: Economy}\n"))
    with pytest.raises(ContrailError, match="'Economy' is not a valid travel_class"):
        load_mapping(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("columns: [a, b]\n", "columns must be a mapping"),
        ("name: x\n", "no 'columns:' section"),
        ("colums: {}\n", "unknown key 'colums'"),
        ("columns:\n  a: b\n c\n", "not valid YAML"),
        ("", "empty"),
    ],
)
def test_mapping_file_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "m.yml"
    path.write_text(text)
    with pytest.raises(ContrailError, match=expected):
        load_mapping(path)


def test_missing_mapping_file(tmp_path: Path) -> None:
    with pytest.raises(ContrailError, match="no such mapping file"):
        load_mapping(tmp_path / "absent.yml")
