"""Parse and validate one block of CSV lines into canonical survey rows, vectorised.

A block is whole physical lines. Line-level problems (blank lines, invalid UTF-8, repeated
headers, unbalanced quotes, wrong field counts) are found with numpy on the bytes; the
surviving lines are parsed by ``pyarrow.csv`` and their values checked with
``pyarrow.compute``. Every line ends up either a good row or a :class:`BadRow` naming the
first thing wrong with it.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from ingestion.errors import ContrailError
from ingestion.layouts import CANONICAL_TYPES, DOMAINS, OPTIONAL_VALUE_COLUMNS, Layout
from ingestion.reader import UTF8_BOM, line_ends
from ingestion.schema import RATING_COLUMNS, SURVEY_COLUMNS

# Inclusive bounds per integer column, and the quarantine reason for a value outside them.
BOUNDS: dict[str, tuple[int | None, int | None, str]] = {
    **{name: (0, 5, "rating_out_of_range") for name in RATING_COLUMNS},
    "age": (0, 120, "age_out_of_range"),
    "departure_delay_minutes": (0, None, "negative_delay"),
    "arrival_delay_minutes": (0, None, "negative_delay"),
}
# Integers as the exports write them, integral floats ('44.0') included. Nine digits at most,
# so every accepted value fits the warehouse's 32-bit integer columns.
INTEGER_PATTERN = r"^-?[0-9]{1,9}(\.0*)?$"
ARROW_TYPES = {"varchar": pa.string(), "integer": pa.int32()}
_CONVERSION_ERROR = re.compile(r"In CSV column #(\d+): CSV conversion error")
MAX_SHOWN_VALUE = 60


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str  # one of schema.QUARANTINE_REASONS
    detail: str
    raw_text: str


@dataclass
class ParsedBlock:
    """One block's outcome. ``survey`` has a row for every line of the block (bad lines hold a
    placeholder copy of a good row, so enrichment can number rows by line); ``good`` selects
    the real ones. ``survey`` is None when no line of the block is good."""

    first_line: int
    n_lines: int
    survey: pa.Table | None
    good: np.ndarray | None  # None: every line is good
    bad_count: int = 0
    bad_reasons: dict[str, int] = field(default_factory=dict)
    bad_rows: list[BadRow] = field(default_factory=list)  # up to the requested number

    @property
    def good_lines(self) -> np.ndarray:
        lines = np.arange(self.first_line, self.first_line + self.n_lines, dtype=np.int64)
        return lines if self.good is None else lines[self.good]


def _shown(value: str) -> str:
    value = value if len(value) <= MAX_SHOWN_VALUE else value[: MAX_SHOWN_VALUE - 1] + "…"
    return '"' + value.replace('"', '""') + '"'


def raw_text(line: bytes) -> str:
    """A line as text for the quarantine: invalid bytes (and NUL) escaped as \\xNN."""
    return line.decode("utf-8", "backslashreplace").replace("\x00", "\\x00")


def _as_mask(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


class BlockParser:
    """Parses blocks of one file whose header resolved to ``layout``."""

    def __init__(self, layout: Layout, header_bytes: bytes) -> None:
        self.layout = layout
        self.width = len(layout.header)
        self.header_variants = {header_bytes, UTF8_BOM + header_bytes}
        self.names = [f"c{i}" for i in range(self.width)]
        # position -> canonical column, for the header columns that land
        self.positions = {
            i: layout.columns[name]
            for i, name in enumerate(layout.header)
            if name in layout.columns
        }
        # Integer columns read as text (to validate them one value at a time) from now on:
        # those with value translations, and those a block has shown to need it.
        self.text_columns = {
            i
            for i, canonical in self.positions.items()
            if CANONICAL_TYPES[canonical] == "integer" and canonical in layout.values
        }
        self._checks: list[tuple[str, int, str]] = []  # (reason, position, message)
        self._check_ids: dict[tuple[str, int, str], int] = {}

    # --- line level -------------------------------------------------------------------------

    def parse(self, buf: bytes, first_line: int, *, keep_bad: int | None = None) -> ParsedBlock:
        """Parse a block of whole lines whose first line is ``first_line``.

        ``keep_bad`` caps how many BadRow records (with detail and raw text) are built; counts
        are always complete.
        """
        table = self._read_plain(buf)
        if table is not None:
            fail = self._validate(table)
            n = table.num_rows
            if not (fail >= 0).any():
                return ParsedBlock(first_line, n, self._canonical(table), None)
            # Only values are wrong: locate the lines to quote them.
            _, starts, stops, _ = self._lines(buf)
            pre = np.full(n, -1, dtype=np.int16)
            keep = np.ones(n, dtype=bool)
            notes: dict[int, str] = {}
        else:
            arr, starts, stops, ends_cr = self._lines(buf)
            n = len(starts)
            pre, notes = self._line_checks(buf, arr, starts, stops, ends_cr)
            table, keep = self._read(buf, arr, starts, stops, pre, notes)
            fail = self._validate(table) if table is not None else np.empty(0, dtype=np.int32)
        return self._combine(
            buf, first_line, table, keep, fail, pre, notes, starts, stops, keep_bad
        )

    def _read_plain(self, buf: bytes) -> pa.Table | None:
        """The block's rows when cheap byte tests show it needs no line-by-line scan: ASCII,
        no quote, no blank line, no repeated header, CR only before LF, ending with a line end,
        and every line parses. None otherwise; the full path then says what is wrong where.
        Most blocks of a sound export take this path, which skips locating every line."""
        if not buf.endswith(b"\n") or not buf.isascii() or b'"' in buf:
            return None
        if buf.startswith((b"\n", b"\r\n")) or b"\n\n" in buf or b"\n\r\n" in buf:
            return None
        crs = buf.count(b"\r")
        if crs and crs != buf.count(b"\r\n"):
            return None
        if any(header and header in buf for header in self.header_variants):
            return None
        try:
            table = self._parse_csv(buf, hex_possible=b"x" in buf or b"X" in buf)
        except pa.ArrowInvalid:
            return None
        return table if table.num_rows == buf.count(b"\n") else None

    @staticmethod
    def _lines(buf: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """The block as bytes, each line's start and stop (line end and CR excluded), and
        which lines ended with a CR (None when the block has no CR)."""
        arr = np.frombuffer(buf, dtype=np.uint8)
        ends = line_ends(arr)
        if len(buf) and buf[-1] != 10:
            ends = np.append(ends, len(buf))
        n = len(ends)
        starts = np.empty(n, dtype=np.int64)
        starts[:1] = 0
        starts[1:] = ends[:-1] + 1
        stops = ends.astype(np.int64)
        if b"\r" in buf:
            ends_cr = (stops > starts) & (arr[np.maximum(stops - 1, 0)] == 13)
            stops = stops - ends_cr
        else:
            ends_cr = None
        return arr, starts, stops, ends_cr

    def _line_checks(self, buf, arr, starts, stops, ends_cr) -> tuple[np.ndarray, dict[int, str]]:
        """Per line, a line-level reason code (-1 when the line may go to the CSV parser), and
        notes for the details."""
        n = len(starts)
        pre = np.full(n, -1, dtype=np.int16)
        notes: dict[int, str] = {}
        pre[stops == starts] = _BLANK

        if not buf.isascii():
            self._mark_invalid_utf8(buf, arr, starts, stops, pre, notes)
        if ends_cr is not None and buf.count(b"\r") != int(ends_cr.sum()):
            for i in self._lines_with(arr, 13, starts, stops):
                if pre[i] < 0 and b"\r" in buf[starts[i] : stops[i]]:
                    pre[i] = _FIELDS
                    notes[i] = "a carriage return inside the line"
        self._mark_repeated_headers(buf, arr, starts, stops, pre)
        if b'"' in buf:
            odd = self._odd_quote_lines(arr, starts, stops)
            for i in np.flatnonzero(odd & (pre < 0)):
                pre[i] = _FIELDS
                notes[int(i)] = 'an unbalanced quote (odd number of ")'
        return pre, notes

    def _combine(
        self, buf, first_line, table, keep, fail, pre, notes, starts, stops, keep_bad
    ) -> ParsedBlock:
        """Line-level and value-level results together: good rows, and bad rows described."""
        n = len(starts)
        rows_of_kept = np.flatnonzero(keep)
        value_bad = rows_of_kept[fail >= 0]
        good = keep.copy()
        good[value_bad] = False
        n_good = int(good.sum())
        bad_idx = np.flatnonzero(~good)

        result = ParsedBlock(first_line, n, None, None if n_good == n else good)
        if n_good:
            survey = self._canonical(table)
            if n_good != n:
                row_of_line = np.cumsum(keep) - 1
                placeholder = int(row_of_line[np.flatnonzero(good)[0]])
                take = np.where(good, row_of_line, placeholder)
                survey = survey.take(pa.array(take))
            result.survey = survey
        if len(bad_idx):
            fail_of_line = np.full(n, -1, dtype=np.int32)
            fail_of_line[rows_of_kept] = fail
            row_of_line = np.cumsum(keep) - 1
            codes = np.where(pre[bad_idx] >= 0, -2 - pre[bad_idx], fail_of_line[bad_idx])
            # codes < -1 are line-level reasons, codes >= 0 value checks
            reasons = [REASONS[-2 - c] if c < -1 else self._checks[c][0] for c in codes.tolist()]
            result.bad_count = len(bad_idx)
            for reason in reasons:
                result.bad_reasons[reason] = result.bad_reasons.get(reason, 0) + 1
            limit = len(bad_idx) if keep_bad is None else min(keep_bad, len(bad_idx))
            for k in range(limit):
                i = int(bad_idx[k])
                line = first_line + i
                text = buf[starts[i] : stops[i]]
                if codes[k] < -1:
                    what = notes.get(i) or _LINE_MESSAGES[int(pre[i])]
                    if pre[i] == _FIELDS and i not in notes:
                        fields = len(next(csv.reader([text.decode("utf-8", "replace")]), []))
                        what = f"{fields} fields, expected {self.width}"
                else:
                    what = self._describe(int(codes[k]), table, int(row_of_line[i]))
                result.bad_rows.append(
                    BadRow(line, reasons[k], f"line {line}: {what}", raw_text(text))
                )
        return result

    @staticmethod
    def _lines_with(arr: np.ndarray, byte: int, starts: np.ndarray, stops: np.ndarray) -> list:
        where = np.flatnonzero(arr == byte)
        return np.unique(np.searchsorted(stops, where, side="left")).tolist()

    def _mark_invalid_utf8(self, buf, arr, starts, stops, pre, notes) -> None:
        try:
            buf.decode("utf-8")
            return
        except UnicodeDecodeError:
            pass
        for i in self._lines_with_high_bytes(arr, stops):
            line = buf[starts[i] : stops[i]]
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                if pre[i] < 0:
                    pre[i] = _UTF8
                    notes[i] = (
                        f"invalid UTF-8 byte 0x{line[exc.start]:02x} at position "
                        f"{exc.start + 1}; re-export the file as UTF-8"
                    )

    @staticmethod
    def _lines_with_high_bytes(arr: np.ndarray, stops: np.ndarray) -> list[int]:
        high = np.flatnonzero(arr >= 0x80)
        return np.unique(np.searchsorted(stops, high, side="left")).tolist()

    def _mark_repeated_headers(self, buf, arr, starts, stops, pre) -> None:
        lengths = stops - starts
        for header in self.header_variants:
            if not header:
                continue
            candidates = np.flatnonzero((lengths == len(header)) & (arr[starts] == header[0]))
            for i in candidates.tolist():
                if pre[i] < 0 and buf[starts[i] : stops[i]] == header:
                    pre[i] = _HEADER

    @staticmethod
    def _odd_quote_lines(arr: np.ndarray, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
        parity = np.bitwise_xor.accumulate((arr == 34).view(np.uint8))
        before_start = np.where(starts > 0, parity[np.maximum(starts - 1, 0)], 0)
        at_stop = np.where(stops > 0, parity[np.maximum(stops - 1, 0)], 0)
        return (before_start ^ at_stop).astype(bool) & (stops > starts)

    def _field_counts(self, buf, arr, starts, stops) -> np.ndarray:
        """Fields per line: commas outside quotes, plus one."""
        comma = arr == 44
        if b'"' in buf:
            quote = (arr == 34).view(np.uint8)
            parity = np.bitwise_xor.accumulate(quote)
            # parity at each line start, spread over the line's bytes
            base = np.where(starts > 0, parity[np.maximum(starts - 1, 0)], 0).astype(np.uint8)
            spans = np.diff(np.append(starts, len(arr)))
            comma &= (parity ^ np.repeat(base, spans)) == 0
        total = np.cumsum(comma, dtype=np.int64)
        at_stop = np.where(stops > 0, total[np.maximum(stops - 1, 0)], 0)
        at_start = np.where(starts > 0, total[np.maximum(starts - 1, 0)], 0)
        return at_stop - at_start + 1

    def _read(self, buf, arr, starts, stops, pre, notes) -> tuple[pa.Table | None, np.ndarray]:
        """Parse the lines not yet rejected; reject wrong field counts the parser reports."""
        counted = False
        while True:
            keep = pre < 0
            if not keep.any():
                return None, keep
            if keep.all():
                data = buf
            else:
                spans = np.diff(np.append(starts, len(arr)))
                data = arr[np.repeat(keep, spans)].tobytes()
            try:
                table = self._parse_csv(data, hex_possible=b"x" in data or b"X" in data)
            except pa.ArrowInvalid as exc:
                if counted:
                    raise ContrailError(f"cannot parse lines of this file: {exc}") from exc
                counts = self._field_counts(buf, arr, starts, stops)
                wrong = keep & (counts != self.width)
                pre[wrong] = _FIELDS
                for i in np.flatnonzero(wrong).tolist():
                    notes[i] = f"{int(counts[i])} fields, expected {self.width}"
                if not wrong.any():
                    self._python_field_counts(buf, starts, stops, pre, notes)
                counted = True
                continue
            if table.num_rows != int(keep.sum()):
                raise ContrailError(
                    f"lines {int(starts[0])}: parsed {table.num_rows} rows from "
                    f"{int(keep.sum())} lines"
                )
            return table, keep

    def _python_field_counts(self, buf, starts, stops, pre, notes) -> None:
        """Last resort for quoting the byte scan reads differently from the CSV parser."""
        for i in np.flatnonzero(pre < 0).tolist():
            line = buf[starts[i] : stops[i]]
            if b'"' not in line:
                continue
            fields = len(next(csv.reader([line.decode("utf-8")]), []))
            if fields != self.width:
                pre[i] = _FIELDS
                notes[i] = f"{fields} fields, expected {self.width} (check the quoting)"

    def _parse_csv(self, data: bytes, *, hex_possible: bool) -> pa.Table:
        """Read lines as typed columns; an integer column that fails to convert is re-read as
        text (and stays text for this file), so bad values surface per row."""
        while True:
            types = {}
            for i, canonical in self.positions.items():
                as_int = CANONICAL_TYPES[canonical] == "integer"
                # The CSV integer parser also takes hex ('0x10'): read as text when possible.
                text = not as_int or i in self.text_columns or hex_possible
                types[self.names[i]] = pa.string() if text else pa.int32()
            try:
                return pacsv.read_csv(
                    pa.BufferReader(data),
                    read_options=pacsv.ReadOptions(
                        column_names=self.names, block_size=max(1 << 20, len(data) // 2 + 1)
                    ),
                    parse_options=pacsv.ParseOptions(newlines_in_values=False),
                    convert_options=pacsv.ConvertOptions(
                        column_types=types,
                        include_columns=[self.names[i] for i in self.positions],
                        null_values=[""],
                        strings_can_be_null=True,
                        quoted_strings_can_be_null=True,
                    ),
                )
            except pa.ArrowInvalid as exc:
                match = _CONVERSION_ERROR.search(str(exc))
                if match is None:
                    raise
                position = int(match.group(1))
                if position in self.text_columns or position not in self.positions:
                    raise
                self.text_columns.add(position)

    # --- value level ------------------------------------------------------------------------

    def _check(self, reason: str, position: int, message: str) -> int:
        key = (reason, position, message)
        if key not in self._check_ids:
            self._check_ids[key] = len(self._checks)
            self._checks.append(key)
        return self._check_ids[key]

    def _validate(self, table: pa.Table) -> np.ndarray:
        """Per parsed row, the id of its first failing check (in column order), or -1.

        Also replaces text integer columns by their int32 values and applies the layout's
        value translations, so ``table`` afterwards holds canonical values.
        """
        fail = np.full(table.num_rows, -1, dtype=np.int32)

        def flag(mask: pa.Array | pa.ChunkedArray | np.ndarray, check: int) -> None:
            bad = mask if isinstance(mask, np.ndarray) else _as_mask(mask)
            fail[bad & (fail < 0)] = check

        self._values: dict[int, pa.ChunkedArray] = {}
        for position, canonical in sorted(self.positions.items()):
            column = table.column(self.names[position])
            if canonical in self.layout.values:
                column = _translate(column, self.layout.values[canonical])
            if column.null_count and canonical not in OPTIONAL_VALUE_COLUMNS:
                flag(pc.is_null(column), self._check("empty_required_field", position, "empty"))
            if CANONICAL_TYPES[canonical] == "integer":
                if pa.types.is_string(column.type):
                    valid = pc.match_substring_regex(column, INTEGER_PATTERN)
                    if not pc.all(pc.or_kleene(valid, pc.is_null(column))).as_py():
                        flag(
                            pc.invert(valid),
                            self._check("not_an_integer", position, "is not an integer"),
                        )
                    digits = pc.if_else(valid, column, None)
                    if pc.any(pc.match_substring(digits, ".")).as_py():
                        digits = pc.replace_substring_regex(digits, r"\.0*$", "")
                    column = pc.cast(digits, pa.int32())
                if canonical in BOUNDS:
                    self._flag_bounds(column, position, BOUNDS[canonical], flag)
            elif canonical in DOMAINS:
                domain = DOMAINS[canonical]
                known = pc.is_in(column, value_set=pa.array(domain))
                if not pc.all(pc.or_kleene(known, pc.is_null(column))).as_py():
                    message = "is not one of " + ", ".join(f'"{v}"' for v in domain)
                    unknown = pc.and_(pc.invert(known), pc.is_valid(column))
                    flag(unknown, self._check("unknown_value", position, message))
            self._values[position] = column
        return fail

    def _flag_bounds(self, column, position, bounds, flag) -> None:
        low, high, reason = bounds
        lowest, highest = pc.min_max(column).values()
        lowest, highest = lowest.as_py(), highest.as_py()
        if lowest is None:
            return
        message = "is negative" if high is None else f"is outside {low}-{high}"
        if (low is not None and lowest < low) or (high is not None and highest > high):
            out = pc.less(column, low) if low is not None else None
            if high is not None:
                above = pc.greater(column, high)
                out = above if out is None else pc.or_(out, above)
            flag(out, self._check(reason, position, message))

    def _describe(self, check: int, table: pa.Table, row: int) -> str:
        reason, position, message = self._checks[check]
        name = self.layout.header[position]
        if reason == "empty_required_field":
            return f'column "{name}" is empty'
        value = table.column(self.names[position])[row].as_py()
        return f'column "{name}" = {_shown(str(value))} {message}'

    def _canonical(self, table: pa.Table) -> pa.Table:
        """The validated values as canonical columns, NULL for those the layout lacks."""
        by_name = {canonical: self._values[p] for p, canonical in self.positions.items()}
        arrays = []
        for name, sql_type in SURVEY_COLUMNS:
            arrow_type = ARROW_TYPES[sql_type]
            column = by_name.get(name)
            if column is None:
                column = pa.nulls(table.num_rows, arrow_type)
            elif column.type != arrow_type:
                column = pc.cast(column, arrow_type)
            arrays.append(column)
        return pa.Table.from_arrays(arrays, names=[name for name, _ in SURVEY_COLUMNS])


def _translate(column: pa.ChunkedArray, translation: dict[str, str]) -> pa.ChunkedArray:
    if pa.types.is_integer(column.type):
        column = pc.cast(column, pa.string())
    index = pc.index_in(column, value_set=pa.array(list(translation)))
    translated = pc.take(pa.array(list(translation.values())), index)
    return pc.coalesce(translated, column)


# Line-level reasons, by code.
REASONS = ("blank_line", "invalid_utf8", "repeated_header", "wrong_field_count")
_BLANK, _UTF8, _HEADER, _FIELDS = range(4)
_LINE_MESSAGES = ("blank line", "invalid UTF-8", "repeated header line", "wrong field count")
