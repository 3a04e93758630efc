"""Enrichment: realistic ids, names, flights, routes and timestamps for survey rows.

The public exports carry the survey answers only. ``enrich`` adds the columns of
``ingestion.schema.ENRICHMENT_COLUMNS`` so the warehouse has passengers, flights and airports to
join on. Everything is vectorised (numpy and Arrow, no per-row Python), and every value is a pure
function of ``(seed, file_key, absolute row index, the row's own values)``: enriching a file in one
piece or in chunks (``first_row`` = the chunk's offset) gives identical rows.

How each column is made:

- ``survey_id``: ``'SRV-'`` + 16 hex digits of ``splitmix64(base(seed, file_key) + row)``, the row
  hash from which every other random draw of the row derives. splitmix64 is a bijection of 64-bit
  integers, so ids are unique within a file by construction; across files a collision needs two
  64-bit hashes to meet.
- ``customer_id``: ``'CUS-'`` + 16 hex digits. A "Loyal Customer" row draws one of
  ``loyal_pool_size`` customers of its gender; the pool depends on the seed only, so the same
  customer returns within a file, across chunks and across files enriched with the same seed. Other
  rows get a fresh id from the row hash. The lowest bit of the id's number is the gender (1 =
  female), so one id always has one gender.
- ``passenger_name``: first and last name drawn, weighted by frequency, from Faker's en_US name
  lists, by a hash of the customer id alone: the same customer always has the same name, and the
  first name comes from the list of the customer's gender.
- Flights: each distance band (``BAND_RATIO`` wide, about 4%) has ``flights_per_band`` daily
  flights, fixed for a seed. A flight flies one route picked at random (``searchsorted``) among
  the routes of ``ingestion.airports.route_table()`` whose distance is within 10% of *every*
  distance of its band, hence within 10% of the row's ``flight_distance``; when no route is that
  close (rows under about 23 or over about 13,700 miles) it flies the route closest to the band's
  centre. A flight also has one
  carrier, one flight number and one scheduled departure time of day (05:00-23:00 UTC), so all rows
  on a ``flight_id`` (carrier + number + ``-`` + date) share origin, destination and schedule. A row
  takes a flight of its band, and a flight date, from its row hash; surveys thus share flights.
- Times (UTC, naive): ``scheduled_departure_at`` is on ``flight_date``; the scheduled block time is
  30 minutes + distance / 500 mph, rounded to 5 minutes. ``actual_departure_at`` adds the departure
  delay, ``actual_arrival_at`` adds the arrival delay to the scheduled arrival (the departure delay
  when the arrival delay is NULL), but never less than 20 minutes + distance / 600 mph after the
  actual departure (some exports report an arrival delay far below the departure delay).
  ``survey_submitted_at`` follows the actual arrival by 10 minutes to 48 hours (exponential,
  mean ``submission_mean_hours``, capped).
- Window: flight dates are spread uniformly over the first ``window_days - EDGE_DAYS`` days of the
  window, so that submissions (at most 48 h after a flight of at most about 26 h) fall inside
  ``[window_start, window_start + window_days)`` whenever the window has more than ``EDGE_DAYS``
  days. Only a delay over about 47 hours can push a submission past the end of the window, by at
  most that delay minus 47 hours.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.airports import route_table
from ingestion.errors import ContrailError
from ingestion.schema import ENRICHMENT_COLUMNS

# Distance bands: band b holds distances in [BAND_RATIO**b, BAND_RATIO**(b + 1)) miles.
BAND_RATIO = 1.04
MAX_BAND_MILES = 20_000.0
N_BANDS = math.ceil(math.log(MAX_BAND_MILES) / math.log(BAND_RATIO))
ROUTE_TOLERANCE = 0.10

# Last days of the window that get no flights, only submissions (see the module docstring).
EDGE_DAYS = 5
MIN_SUBMISSION_LAG_MINUTES = 10
MAX_SUBMISSION_LAG_MINUTES = 48 * 60

FIRST_FLIGHT_NUMBER = 100
_US_PER_MINUTE = 60_000_000
_US_PER_DAY = 86_400_000_000

# Stream constants: xor'ed into a row hash before re-mixing to get independent draws.
_STREAM_DATE = np.uint64(0x243F6A8885A308D3)
_STREAM_CUSTOMER = np.uint64(0x13198A2E03707344)
_STREAM_LAG = np.uint64(0xA4093822299F31D0)
_STREAM_FIRST = np.uint64(0x082EFA98EC4E6C89)
_STREAM_LAST = np.uint64(0x452821E638D01377)
_STREAM_CARRIER = np.uint64(0xBE5466CF34E90C6C)
_STREAM_HOUR = np.uint64(0xC0AC29B7C97C50DD)


@dataclass(frozen=True)
class EnrichConfig:
    """Knobs of enrichment. The defaults suit files of 10^4 to 10^7 rows."""

    # survey_submitted_at falls in [window_start, window_start + window_days).
    window_start: date = date(2026, 1, 1)
    window_days: int = 180
    # Two-letter carrier codes; CT is Contrail's own.
    carriers: tuple[str, ...] = ("CT", "NV", "QL", "RV", "ZP")
    # Loyal customers of each gender (so about 4 surveys per loyal customer per 100k rows).
    loyal_pool_size: int = 10_000
    # Daily flights per distance band (fewer flights, more surveys per flight).
    flights_per_band: int = 8
    # Mean delay between arrival and survey submission (exponential, 10 min to 48 h).
    submission_mean_hours: float = 8.0


def _check_config(config: EnrichConfig) -> None:
    problems = []
    if config.window_days < 1:
        problems.append(f"window_days = {config.window_days} must be at least 1")
    if not config.carriers or any(
        len(c) != 2 or not c.isascii() or not c.isalnum() for c in config.carriers
    ):
        problems.append(f"carriers = {config.carriers!r} must be non-empty 2-character codes")
    if config.loyal_pool_size < 1:
        problems.append(f"loyal_pool_size = {config.loyal_pool_size} must be at least 1")
    if config.flights_per_band < 1:
        problems.append(f"flights_per_band = {config.flights_per_band} must be at least 1")
    if not config.submission_mean_hours > 0:
        problems.append(f"submission_mean_hours = {config.submission_mean_hours} must be positive")
    if problems:
        raise ContrailError("enrichment config: " + "; ".join(problems))


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of ``x + golden gamma``: a bijection on uint64, vectorised."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _key(*parts: object) -> int:
    """A 64-bit key from any printable parts (stable across processes, unlike ``hash``)."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _unit(h: np.ndarray) -> np.ndarray:
    """Uniform floats in (0, 1] from the top 53 bits of uint64 hashes."""
    return ((h >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * (1.0 / (1 << 53))


def _stream(h: np.ndarray, constant: np.uint64) -> np.ndarray:
    return splitmix64(h ^ constant)


# "00".."ff" as 256 uint16 values, so one gather turns a byte into its two hex digits.
_HEX_PAIRS = np.frombuffer(b"".join(f"{i:02x}".encode() for i in range(256)), dtype=np.uint16)
_MAX_PIECE_ROWS = 1 << 24


def _prefixed_hex(prefix: str, values: np.ndarray) -> pa.ChunkedArray:
    """``prefix`` + 16 lowercase hex digits of each uint64, built as raw Arrow string buffers."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    width = len(head) + 16
    pieces = []
    for start in range(0, max(len(values), 1), _MAX_PIECE_ROWS):
        part = values[start : start + _MAX_PIECE_ROWS]
        n = len(part)
        digits = _HEX_PAIRS[part.astype(">u8").view(np.uint8)].view(np.uint8).reshape(n, 16)
        out = np.empty((n, width), dtype=np.uint8)
        out[:, : len(head)] = head
        out[:, len(head) :] = digits
        offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
        pieces.append(
            pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.ravel()))
        )
    return pa.chunked_array(pieces, pa.string())


# Weighted draws use a quantile table of 2**_QUANTILE_BITS entries: one gather per draw.
_QUANTILE_BITS = 20


def _quantile_table(weights: dict[str, float], offset: int = 0) -> np.ndarray:
    """Index (+ ``offset``) of the item at each quantile of the weights' distribution."""
    cum = np.cumsum(np.fromiter(weights.values(), dtype=np.float64))
    grid = (np.arange(1 << _QUANTILE_BITS) + 0.5) * (cum[-1] / (1 << _QUANTILE_BITS))
    return offset + np.minimum(np.searchsorted(cum, grid), len(cum) - 1).astype(np.int32)


@dataclass(frozen=True)
class _Names:
    firsts: pa.Array  # Faker's female first names, then its male ones
    first_by_gender: np.ndarray  # [is_female, quantile] -> index into firsts
    lasts: pa.Array
    last: np.ndarray  # [quantile] -> index into lasts


@functools.cache
def _names() -> _Names:
    """Faker's en_US name lists with their frequency weights, loaded once."""
    from faker.providers.person.en_US import Provider

    female, male = Provider.first_names_female, Provider.first_names_male
    return _Names(
        firsts=pa.array([*female, *male], pa.string()),
        first_by_gender=np.stack([_quantile_table(male, len(female)), _quantile_table(female)]),
        lasts=pa.array(list(Provider.last_names), pa.string()),
        last=_quantile_table(Provider.last_names),
    )


def _quantile(h: np.ndarray) -> np.ndarray:
    return (h >> np.uint64(64 - _QUANTILE_BITS)).astype(np.intp)


def _passenger_names(customer: np.ndarray) -> pa.Array:
    """'First Last' from the customer number alone; its lowest bit picks the first-name list."""
    names = _names()
    female = (customer & np.uint64(1)).astype(np.intp)
    first = names.first_by_gender[female, _quantile(_stream(customer, _STREAM_FIRST))]
    last = names.last[_quantile(_stream(customer, _STREAM_LAST))]
    return pc.binary_join_element_wise(
        names.firsts.take(pa.array(first)), names.lasts.take(pa.array(last)), " "
    )


@dataclass(frozen=True)
class _Network:
    """The daily flights of one seed: arrays indexed by ``band * flights_per_band + slot``."""

    origin: pa.Array  # airport codes
    destination: pa.Array
    carrier: pa.Array
    flight_number: np.ndarray  # int32
    prefix: pa.Array  # 'CT1234-'
    departure_minute: np.ndarray  # int64, minute of the UTC day
    block_minutes: np.ndarray  # int64, scheduled
    min_block_minutes: np.ndarray  # int64, fastest plausible actual


@functools.cache
def band_edges() -> np.ndarray:
    """Lower distance edge of every band, plus the upper edge of the last one (miles)."""
    return BAND_RATIO ** np.arange(N_BANDS + 1, dtype=np.float64)


@functools.cache
def _band_of_mile() -> np.ndarray:
    """Band of every whole distance from 0 to MAX_BAND_MILES (a table lookup beats a search)."""
    miles = np.arange(int(MAX_BAND_MILES) + 1, dtype=np.float64)
    band = np.searchsorted(band_edges(), miles, side="right") - 1
    return np.clip(band, 0, N_BANDS - 1)


def _pick_routes(miles: np.ndarray, keys: np.ndarray, per_band: int) -> np.ndarray:
    """For each band and slot, a random route within 10% of every distance of the band."""
    edges = band_edges()
    low = (1 - ROUTE_TOLERANCE) * edges[1:]
    high = (1 + ROUTE_TOLERANCE) * edges[:-1]
    first = np.searchsorted(miles, low, side="left")
    count = np.searchsorted(miles, high, side="right") - first
    first, count = np.repeat(first, per_band), np.repeat(count, per_band)
    chosen = first + (keys % np.maximum(count, 1).astype(np.uint64)).astype(np.int64)
    # No route close enough: the route closest to the band's geometric centre.
    centre = np.repeat(np.sqrt(edges[1:] * edges[:-1]), per_band)
    right = np.clip(np.searchsorted(miles, centre), 0, len(miles) - 1)
    left = np.clip(right - 1, 0, len(miles) - 1)
    closest = np.where(np.abs(miles[left] - centre) <= np.abs(miles[right] - centre), left, right)
    return np.where(count > 0, chosen, closest)


@functools.lru_cache(maxsize=16)
def _network(seed: int, per_band: int, carriers: tuple[str, ...]) -> _Network:
    routes = route_table()
    n_flights = N_BANDS * per_band
    keys = splitmix64(np.arange(n_flights, dtype=np.uint64) + np.uint64(_key(seed, "flights")))
    pair = _pick_routes(routes.miles, keys, per_band)
    miles = routes.miles[pair]

    carrier_idx = (_stream(keys, _STREAM_CARRIER) % np.uint64(len(carriers))).astype(np.int64)
    # Flight numbers: an affine permutation of the flight index, so they are all distinct.
    step = _key(seed, "flight-numbers") % n_flights | 1
    while math.gcd(step, n_flights) != 1:
        step += 2
    offset = _key(seed, "flight-offset") % n_flights
    number = FIRST_FLIGHT_NUMBER + (np.arange(n_flights, dtype=np.int64) * step + offset) % (
        n_flights
    )
    carrier = pa.array(carriers, pa.string()).take(pa.array(carrier_idx))
    prefix = pc.binary_join_element_wise(
        carrier, pc.cast(pa.array(number), pa.string()), pa.scalar("-"), ""
    )
    # 05:00 to 23:00 UTC in 5-minute steps.
    departure = 300 + (_stream(keys, _STREAM_HOUR) % np.uint64(217)).astype(np.int64) * 5
    block = (np.rint((30 + miles * 60 / 500) / 5) * 5).astype(np.int64)
    min_block = np.ceil(20 + miles * 60 / 600).astype(np.int64)
    return _Network(
        origin=routes.codes.take(pa.array(routes.origin[pair])),
        destination=routes.codes.take(pa.array(routes.destination[pair])),
        carrier=carrier,
        flight_number=number.astype(np.int32),
        prefix=prefix,
        departure_minute=departure,
        block_minutes=block,
        min_block_minutes=min_block,
    )


def _int_column(table: pa.Table, name: str, fill: int) -> np.ndarray:
    return pc.fill_null(table.column(name), fill).to_numpy().astype(np.int64)


def _is_null(table: pa.Table, name: str) -> np.ndarray:
    return pc.is_null(table.column(name)).to_numpy().astype(bool)


def _equals(table: pa.Table, name: str, value: str) -> np.ndarray:
    column = pc.fill_null(pc.equal(table.column(name), value), False)
    return column.to_numpy().astype(bool)


REQUIRED_COLUMNS = (
    "gender",
    "customer_type",
    "flight_distance",
    "departure_delay_minutes",
    "arrival_delay_minutes",
)


def enrich(
    table: pa.Table,
    *,
    seed: int,
    file_key: str,
    first_row: int = 0,
    config: EnrichConfig = EnrichConfig(),  # frozen, so a shared default is safe
) -> pa.Table:
    """The enrichment columns (``ENRICHMENT_COLUMNS``, in order) for each row of ``table``.

    ``table`` holds canonical survey columns (``SURVEY_COLUMNS``); ``file_key`` identifies the file
    (its sha256) and ``first_row`` is the 0-based index of the table's first data row in the file.
    """
    missing = [name for name in REQUIRED_COLUMNS if name not in table.column_names]
    if missing:
        raise ContrailError(
            f"enrichment of file {file_key}: the input lacks column(s) {', '.join(missing)}; "
            "pass the canonical survey columns of ingestion.schema.SURVEY_COLUMNS"
        )
    if first_row < 0:
        raise ContrailError(f"enrichment of file {file_key}: first_row = {first_row} is negative")
    _check_config(config)

    n = table.num_rows
    rows = np.arange(first_row, first_row + n, dtype=np.uint64)
    h = splitmix64(rows + np.uint64(_key(seed, "rows", file_key)))

    # Customers and names.
    female = _equals(table, "gender", "Female").astype(np.uint64)
    loyal = _equals(table, "customer_type", "Loyal Customer")
    pick = _stream(h, _STREAM_CUSTOMER) % np.uint64(config.loyal_pool_size)
    pooled = splitmix64(pick * np.uint64(2) + female + np.uint64(_key(seed, "customers")))
    fresh = splitmix64(rows + np.uint64(_key(seed, "one-time customers", file_key)))
    customer = (np.where(loyal, pooled, fresh) & ~np.uint64(1)) | female

    # Flights: a band from the distance, a flight of the band and a date from the row hash.
    network = _network(seed, config.flights_per_band, config.carriers)
    miles = np.clip(_int_column(table, "flight_distance", 0), 1, int(MAX_BAND_MILES))
    band = _band_of_mile()[miles]
    date_h = _stream(h, _STREAM_DATE)
    flight_days = max(1, config.window_days - EDGE_DAYS)
    day = ((date_h & np.uint64(0xFFFFFFFF)) % np.uint64(flight_days)).astype(np.int64)
    slot = ((date_h >> np.uint64(32)) % np.uint64(config.flights_per_band)).astype(np.int64)
    flight = band * config.flights_per_band + slot
    flight_arrow = pa.array(flight)

    first_day = np.datetime64(config.window_start, "D")
    dates = first_day + np.arange(flight_days).astype("timedelta64[D]")
    flight_date = dates[day]
    flight_id = pc.binary_join_element_wise(
        network.prefix.take(flight_arrow),
        pc.cast(pa.array(dates), pa.string()).take(pa.array(day)),
        "",
    )

    # Times, in microseconds since the epoch.
    minute = np.int64(_US_PER_MINUTE)
    departure_delay = _int_column(table, "departure_delay_minutes", 0)
    arrival_delay = np.where(
        _is_null(table, "arrival_delay_minutes"),
        departure_delay,
        _int_column(table, "arrival_delay_minutes", 0),
    )
    scheduled_departure = (
        flight_date.astype(np.int64) * _US_PER_DAY + network.departure_minute[flight] * minute
    )
    scheduled_arrival = scheduled_departure + network.block_minutes[flight] * minute
    actual_departure = scheduled_departure + departure_delay * minute
    actual_arrival = np.maximum(
        scheduled_arrival + arrival_delay * minute,
        actual_departure + network.min_block_minutes[flight] * minute,
    )
    lag = np.minimum(
        MIN_SUBMISSION_LAG_MINUTES
        - np.log(_unit(_stream(h, _STREAM_LAG))) * config.submission_mean_hours * 60,
        MAX_SUBMISSION_LAG_MINUTES,
    )
    submitted = actual_arrival + np.rint(lag * 60).astype(np.int64) * 1_000_000

    def timestamps(us: np.ndarray) -> pa.Array:
        return pa.array(us.view("datetime64[us]"), pa.timestamp("us"))

    columns = {
        "survey_id": _prefixed_hex("SRV-", h),
        "customer_id": _prefixed_hex("CUS-", customer),
        "passenger_name": _passenger_names(customer),
        "carrier_code": network.carrier.take(flight_arrow),
        "flight_number": pa.array(network.flight_number[flight], pa.int32()),
        "flight_id": flight_id,
        "flight_date": pa.array(flight_date, pa.date32()),
        "origin_airport": network.origin.take(flight_arrow),
        "destination_airport": network.destination.take(flight_arrow),
        "scheduled_departure_at": timestamps(scheduled_departure),
        "actual_departure_at": timestamps(actual_departure),
        "scheduled_arrival_at": timestamps(scheduled_arrival),
        "actual_arrival_at": timestamps(actual_arrival),
        "survey_submitted_at": timestamps(submitted),
    }
    return pa.table({name: columns[name] for name, _ in ENRICHMENT_COLUMNS})
