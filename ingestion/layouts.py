"""The export layouts Contrail reads, and how their headers map to canonical columns."""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ingestion.errors import ContrailError
from ingestion.schema import (
    CUSTOMER_TYPE_VALUES,
    GENDER_VALUES,
    RATING_COLUMNS,
    SATISFACTION_VALUES,
    SURVEY_COLUMNS,
    TRAVEL_CLASS_VALUES,
    TYPE_OF_TRAVEL_VALUES,
)

# Canonical columns whose value may be blank in a row (the public files leave some arrival delays
# empty). Every other column a layout provides is required.
OPTIONAL_VALUE_COLUMNS: tuple[str, ...] = ("arrival_delay_minutes",)

# Canonical columns with a closed set of values, as the public exports spell them.
DOMAINS: dict[str, tuple[str, ...]] = {
    "satisfaction": SATISFACTION_VALUES,
    "gender": GENDER_VALUES,
    "customer_type": CUSTOMER_TYPE_VALUES,
    "type_of_travel": TYPE_OF_TRAVEL_VALUES,
    "travel_class": TRAVEL_CLASS_VALUES,
}

CANONICAL_TYPES: dict[str, str] = dict(SURVEY_COLUMNS)

# Header of the public Kaggle "Invistico" airline survey export (ours too: `contrail generate`).
INVISTICO_HEADER: tuple[str, ...] = (
    "satisfaction",
    "Gender",
    "Customer Type",
    "Age",
    "Type of Travel",
    "Class",
    "Flight Distance",
    "Seat comfort",
    "Departure/Arrival time convenient",
    "Food and drink",
    "Gate location",
    "Inflight wifi service",
    "Inflight entertainment",
    "Online support",
    "Ease of Online booking",
    "On-board service",
    "Leg room service",
    "Baggage handling",
    "Checkin service",
    "Cleanliness",
    "Online boarding",
    "Departure Delay in Minutes",
    "Arrival Delay in Minutes",
)

# Header of Kaggle's "Airline Passenger Satisfaction" train.csv / test.csv.
PASSENGER_SATISFACTION_HEADER: tuple[str, ...] = (
    "",
    "id",
    "Gender",
    "Customer Type",
    "Age",
    "Type of Travel",
    "Class",
    "Flight Distance",
    "Inflight wifi service",
    "Departure/Arrival time convenient",
    "Ease of Online booking",
    "Gate location",
    "Food and drink",
    "Online boarding",
    "Seat comfort",
    "Inflight entertainment",
    "On-board service",
    "Leg room service",
    "Baggage handling",
    "Checkin service",
    "Inflight service",
    "Cleanliness",
    "Departure Delay in Minutes",
    "Arrival Delay in Minutes",
    "satisfaction",
)

# Source header -> canonical column, shared by both public layouts.
PUBLIC_HEADER_TO_CANONICAL: dict[str, str] = {
    "satisfaction": "satisfaction",
    "Gender": "gender",
    "Customer Type": "customer_type",
    "Age": "age",
    "Type of Travel": "type_of_travel",
    "Class": "travel_class",
    "Flight Distance": "flight_distance",
    "Seat comfort": "seat_comfort",
    "Departure/Arrival time convenient": "departure_arrival_time_convenient",
    "Food and drink": "food_and_drink",
    "Gate location": "gate_location",
    "Inflight wifi service": "inflight_wifi_service",
    "Inflight entertainment": "inflight_entertainment",
    "Online support": "online_support",
    "Ease of Online booking": "ease_of_online_booking",
    "On-board service": "on_board_service",
    "Leg room service": "leg_room_service",
    "Baggage handling": "baggage_handling",
    "Checkin service": "checkin_service",
    "Cleanliness": "cleanliness",
    "Online boarding": "online_boarding",
    "Inflight service": "inflight_service",
    "Departure Delay in Minutes": "departure_delay_minutes",
    "Arrival Delay in Minutes": "arrival_delay_minutes",
}


@dataclass(frozen=True)
class Layout:
    """A named export layout: its exact header and what each header column becomes."""

    name: str
    header: tuple[str, ...]
    # header column -> canonical column; columns absent here are ignored (e.g. the index).
    columns: dict[str, str]
    # canonical column -> {value as exported: value as landed}, applied before validation.
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    # header columns the layout knows but does not land (the public index and id columns).
    ignored: tuple[str, ...] = ()

    @property
    def canonical(self) -> frozenset[str]:
        """The canonical columns this layout provides."""
        return frozenset(self.columns.values())

    @property
    def absent(self) -> tuple[str, ...]:
        """Canonical columns the layout lacks; they land as NULL (ratings only)."""
        return tuple(name for name, _ in SURVEY_COLUMNS if name not in self.canonical)

    @property
    def required(self) -> tuple[str, ...]:
        """Canonical columns that may not be blank in a row."""
        return tuple(
            name
            for name, _ in SURVEY_COLUMNS
            if name in self.canonical and name not in OPTIONAL_VALUE_COLUMNS
        )


INVISTICO = Layout(
    "invistico",
    INVISTICO_HEADER,
    {h: PUBLIC_HEADER_TO_CANONICAL[h] for h in INVISTICO_HEADER},
)
PASSENGER_SATISFACTION = Layout(
    "passenger-satisfaction",
    PASSENGER_SATISFACTION_HEADER,
    {h: PUBLIC_HEADER_TO_CANONICAL[h] for h in PASSENGER_SATISFACTION_HEADER[2:]},
    ignored=PASSENGER_SATISFACTION_HEADER[:2],  # the unnamed index and the id
)
PUBLIC_LAYOUTS: dict[str, Layout] = {
    layout.name: layout for layout in (INVISTICO, PASSENGER_SATISFACTION)
}


def _quoted(names: list[str] | tuple[str, ...]) -> str:
    return ", ".join(f'"{name}"' for name in names) if names else "none"


def _header_problems(layout: Layout, header: list[str]) -> tuple[list[str], list[str]]:
    """Expected columns the header lacks, and header columns the layout does not know."""
    expected = set(layout.columns) | set(layout.ignored)
    missing = [
        f'"{name}" ({layout.columns[name]})' if name in layout.columns else f'"{name}"'
        for name in (*layout.columns, *layout.ignored)
        if name not in header
    ]
    unknown = [name for name in header if name not in expected]
    return missing, unknown


def _duplicates(header: list[str]) -> list[str]:
    return [name for name, count in Counter(header).items() if count > 1]


def resolve_layout(layout: Layout, header: list[str], *, source: str = "header") -> Layout:
    """Check a file's header against a layout; return the layout with the file's column order.

    Columns are matched by name, so an export with its columns in another order still maps
    by position. Raises ContrailError naming what is missing and what is not recognised.
    """
    duplicates = _duplicates(header)
    if duplicates:
        raise ContrailError(
            f"{source} line 1: header repeats column(s) {_quoted(duplicates)}; "
            "each column may appear once."
        )
    missing, unknown = _header_problems(layout, header)
    if missing or unknown:
        raise ContrailError(
            f"{source} line 1: header does not match layout {layout.name!r}. "
            f"Missing columns: {', '.join(missing) or 'none'}; "
            f"unrecognised columns: {_quoted(unknown)}. "
            "Pass --layout for a public export or --mapping FILE.yml for any other."
        )
    return replace(layout, header=tuple(header))


def detect_layout(header: list[str], *, source: str = "header") -> Layout:
    """Pick the public layout whose column names are exactly the header's (``--layout auto``).

    The match ignores column order; the returned layout carries the file's own order.
    """
    names = [name.strip() for name in header]
    for layout in PUBLIC_LAYOUTS.values():
        if set(names) == set(layout.header) and len(names) == len(layout.header):
            return replace(layout, header=tuple(names))

    def distance(layout: Layout) -> int:
        missing, unknown = _header_problems(layout, names)
        return len(missing) + len(unknown)

    closest = min(PUBLIC_LAYOUTS.values(), key=distance)
    missing, unknown = _header_problems(closest, names)
    raise ContrailError(
        f"{source} line 1: unknown header; it matches no known layout "
        f"({', '.join(PUBLIC_LAYOUTS)}). Closest is {closest.name!r}: "
        f"missing columns: {', '.join(missing) or 'none'}; "
        f"unrecognised columns: {_quoted(unknown)}. "
        "For another export write a column mapping and pass --mapping FILE.yml."
    )


# --- YAML column mappings -------------------------------------------------------------------

_NULL_TAG = "tag:yaml.org,2002:null"


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _scalar(node: yaml.Node, where: str, what: str) -> str:
    if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
        raise ContrailError(f"{where} line {_line(node)}: {what} must be a single value")
    return str(node.value)


def _pairs(node: yaml.Node, where: str, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise ContrailError(f"{where} line {_line(node)}: {what} must be a mapping (key: value)")
    seen: dict[str, int] = {}
    for key, _ in node.value:
        text = _scalar(key, where, f"a key of {what}")
        if text in seen:
            raise ContrailError(
                f"{where} line {_line(key)}: {what} lists {text!r} twice "
                f"(first on line {seen[text]})"
            )
        seen[text] = _line(key)
    return list(node.value)


def _unknown_canonical(where: str, node: yaml.Node, name: str) -> ContrailError:
    valid = [column for column, _ in SURVEY_COLUMNS]
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ContrailError(
        f"{where} line {_line(node)}: {name!r} is not a canonical column{hint}. "
        f"Canonical columns: {', '.join(valid)}"
    )


def load_mapping(path: Path) -> Layout:
    """Read a YAML column mapping for an export in any other layout.

    ``columns`` maps each source header column to a canonical column (``~`` to ignore it);
    ``values`` optionally translates values per canonical column. Rating columns the export
    lacks land as NULL; every other canonical column must be mapped.
    """
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ContrailError(f"{where}: no such mapping file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ContrailError(f"{where}: cannot read the mapping file ({exc})") from exc
    try:
        root = yaml.compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark else ""
        raise ContrailError(f"{where}{line}: not valid YAML ({exc.problem})") from exc
    if root is None:
        raise ContrailError(f"{where}: the mapping file is empty; it needs 'columns:'")

    sections: dict[str, yaml.Node] = {}
    for key, value in _pairs(root, where, "the mapping file"):
        name = key.value
        if name not in ("name", "columns", "values"):
            raise ContrailError(
                f"{where} line {_line(key)}: unknown key {name!r} (expected name, columns, values)"
            )
        sections[name] = value
    if "name" in sections:
        _scalar(sections["name"], where, "name")
    if "columns" not in sections:
        raise ContrailError(f"{where}: the mapping has no 'columns:' section")

    columns: dict[str, str] = {}
    ignored: list[str] = []
    target_line: dict[str, int] = {}
    for key, value in _pairs(sections["columns"], where, "columns"):
        source = key.value.strip()
        if isinstance(value, yaml.ScalarNode) and value.tag == _NULL_TAG:
            ignored.append(source)
            continue
        canonical = _scalar(value, where, f"the target of {source!r}")
        if canonical not in CANONICAL_TYPES:
            raise _unknown_canonical(where, value, canonical)
        if canonical in target_line:
            raise ContrailError(
                f"{where} line {_line(value)}: {source!r} maps to {canonical!r}, which line "
                f"{target_line[canonical]} already maps to; each canonical column takes one "
                "source column"
            )
        target_line[canonical] = _line(value)
        columns[source] = canonical

    lacking = [
        name for name, _ in SURVEY_COLUMNS if name not in target_line and name not in RATING_COLUMNS
    ]
    if lacking:
        raise ContrailError(
            f"{where} line {_line(sections['columns'])}: columns maps nothing to required "
            f"canonical column(s) {', '.join(lacking)}"
        )

    values: dict[str, dict[str, str]] = {}
    if "values" in sections:
        for key, table in _pairs(sections["values"], where, "values"):
            canonical = key.value
            if canonical not in CANONICAL_TYPES:
                raise _unknown_canonical(where, key, canonical)
            if canonical not in target_line:
                raise ContrailError(
                    f"{where} line {_line(key)}: values for {canonical!r}, which columns "
                    "does not map"
                )
            translation: dict[str, str] = {}
            for raw, landed in _pairs(table, where, f"values of {canonical!r}"):
                target = _scalar(landed, where, f"the translation of {raw.value!r}")
                domain = DOMAINS.get(canonical)
                if domain is not None and target not in domain:
                    raise ContrailError(
                        f"{where} line {_line(landed)}: {target!r} is not a valid "
                        f"{canonical} (expected one of {', '.join(domain)})"
                    )
                if CANONICAL_TYPES[canonical] == "integer" and not target.lstrip("-").isdigit():
                    raise ContrailError(
                        f"{where} line {_line(landed)}: {canonical} is an integer column; "
                        f"{target!r} is not an integer"
                    )
                translation[raw.value] = target
            values[canonical] = translation

    header = (*columns, *ignored)
    return Layout(f"mapping:{path.name}", header, columns, values, tuple(ignored))
