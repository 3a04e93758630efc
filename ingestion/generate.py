"""Synthetic airline survey rows in the public Invistico layout.

Rows are drawn in fixed blocks of ``BLOCK_ROWS``; block ``i`` of seed ``s`` always uses the
random stream ``SeedSequence(s, spawn_key=(i,))``. A table or file of ``rows`` rows is the first
``rows`` rows of blocks ``0, 1, 2, ...``, so output depends only on ``(rows, seed, config)``:
never on how a file is chunked, and a shorter output is a prefix of a longer one.

The model, per row:

1. segments (gender, loyalty, type of travel, class given the type of travel), age (a beta
   bell on the age range, younger for disloyal customers), flight distance (a gamma, longer in
   Business) and delays (on time, or a lognormal departure delay; arrival tracks departure);
2. a satisfaction propensity ``eta`` on the logit scale from segments, age and delay, plus
   standard logistic noise; ``satisfaction`` is the propensity above a threshold calibrated once
   per configuration so that ``satisfied_share`` of rows are satisfied;
3. every rating is ``mean + loading * standardised propensity + noise``, rounded to 1-5, with a
   service-dependent share of 0 ("not applicable"). The loading sets how strongly a service
   separates satisfied from dissatisfied passengers.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa

from ingestion.errors import ContrailError
from ingestion.layouts import INVISTICO, INVISTICO_HEADER
from ingestion.schema import (
    CUSTOMER_TYPE_VALUES,
    GENDER_VALUES,
    RATING_COLUMNS,
    SATISFACTION_VALUES,
    SURVEY_COLUMNS,
    TRAVEL_CLASS_VALUES,
    TYPE_OF_TRAVEL_VALUES,
)

# Rows drawn from one random stream. Output is built from whole blocks, so it never depends
# on the chunk size a caller asks for. Changing this changes every generated file.
BLOCK_ROWS = 65_536

# The rating columns of the Invistico layout, in its header order (no inflight_service).
INVISTICO_RATING_COLUMNS: tuple[str, ...] = tuple(
    INVISTICO.columns[h] for h in INVISTICO_HEADER if INVISTICO.columns[h] in RATING_COLUMNS
)

# The public file ends lines with CRLF; so do we.
CSV_EOL = b"\r\n"
# zlib level for .gz output: level 1 is several times faster than the default 6 for a file
# about a third larger.
GZIP_LEVEL = 1
# Largest integer the CSV formatter has a lookup entry for (distances and delays).
_MAX_FORMATTED_INT = 9_999
# The two satisfaction values of the Invistico export, in index order (0 = satisfied).
_SATISFACTION = SATISFACTION_VALUES[:2]
# Rows of the fixed sample from which each configuration's threshold is calibrated.
_CALIBRATION_BLOCKS = 8
_CALIBRATION_SEED = 20_240_101


@dataclass(frozen=True)
class ServiceProfile:
    """How passengers rate one service."""

    column: str  # canonical rating column
    mean: float  # rating (1-5 scale) of a passenger of average propensity
    loading: float  # rating points gained per standard deviation of satisfaction propensity
    not_applicable_share: float  # share of 0 ("not applicable") answers


# Means are near the public file's. Loadings rank the drivers as the published analyses of
# the full file do: entertainment and seat comfort first, then online support and booking;
# gate location and time convenience barely matter. 0-shares are small and service-dependent:
# most for seat comfort, food and time convenience, almost none for check-in and cleanliness.
DEFAULT_SERVICES: tuple[ServiceProfile, ...] = (
    ServiceProfile("seat_comfort", 2.95, 0.85, 0.037),
    ServiceProfile("departure_arrival_time_convenient", 3.15, 0.03, 0.045),
    ServiceProfile("food_and_drink", 2.95, 0.40, 0.045),
    ServiceProfile("gate_location", 3.00, 0.02, 0.002),
    ServiceProfile("inflight_wifi_service", 3.25, 0.33, 0.005),
    ServiceProfile("inflight_entertainment", 3.40, 1.00, 0.023),
    ServiceProfile("online_support", 3.50, 0.66, 0.001),
    ServiceProfile("ease_of_online_booking", 3.45, 0.64, 0.001),
    ServiceProfile("on_board_service", 3.45, 0.46, 0.001),
    ServiceProfile("leg_room_service", 3.45, 0.44, 0.0035),
    ServiceProfile("baggage_handling", 3.70, 0.24, 0.0005),
    ServiceProfile("checkin_service", 3.35, 0.24, 0.0003),
    ServiceProfile("cleanliness", 3.70, 0.24, 0.0003),
    ServiceProfile("online_boarding", 3.35, 0.50, 0.001),
)


@dataclass(frozen=True)
class GeneratorConfig:
    """Calibration knobs. Defaults approximate the full public Invistico file.

    Shares are fractions of all rows. Class mixes are ordered as ``TRAVEL_CLASS_VALUES``
    (Eco, Eco Plus, Business). Effects are on the logit scale of satisfaction.
    """

    # Share of 'satisfied' rows (54.73% in the full public file).
    satisfied_share: float = 0.547
    # Share of 'Female' rows.
    female_share: float = 0.507
    # Share of 'Loyal Customer' rows.
    loyal_share: float = 0.817
    # Share of 'Business travel' rows.
    business_travel_share: float = 0.691
    # Class mix of business travellers and of personal travellers (Eco, Eco Plus, Business);
    # overall about 45% Eco, 7% Eco Plus, 48% Business.
    class_mix_business_travel: tuple[float, float, float] = (0.33, 0.07, 0.60)
    class_mix_personal_travel: tuple[float, float, float] = (0.71, 0.08, 0.21)
    # Age bounds (inclusive); ages follow a beta bell with these means and spread.
    age_range: tuple[int, int] = (7, 85)
    age_mean_loyal: float = 41.5
    age_sd_loyal: float = 15.0
    age_mean_disloyal: float = 30.0
    age_sd_disloyal: float = 11.0
    # Flight distance bounds (inclusive), mean per class (Eco, Eco Plus, Business) and gamma
    # shape (smaller is more right-skewed).
    distance_range: tuple[int, int] = (50, 6_950)
    distance_mean_by_class: tuple[float, float, float] = (1_850.0, 1_900.0, 2_200.0)
    distance_shape: float = 4.0
    # Share of flights that leave on time (departure delay 0).
    on_time_share: float = 0.56
    # Lognormal parameters of a positive departure delay (minutes), and the largest delay.
    delay_log_mean: float = 2.7
    delay_log_sd: float = 1.2
    max_delay_minutes: int = 1_600
    # Share of rows whose arrival delay is blank.
    arrival_blank_share: float = 0.003
    # Logit effects on satisfaction: per class (Eco, Eco Plus, Business), loyalty, business
    # travel, age (logit lost at the ends of the age range relative to its middle) and delay
    # (logit lost per unit of log(1 + departure delay minutes)).
    class_effect: tuple[float, float, float] = (0.0, 0.15, 1.0)
    loyal_effect: float = 1.7
    business_travel_effect: float = 0.8
    age_effect: float = 0.4
    delay_effect: float = 0.12
    # Standard deviation of each rating around its propensity-driven mean, before rounding.
    rating_noise_sd: float = 1.2
    # One profile per Invistico rating column, in header order.
    services: tuple[ServiceProfile, ...] = field(default=DEFAULT_SERVICES)

    def __post_init__(self) -> None:
        shares = {
            "satisfied_share": self.satisfied_share,
            "female_share": self.female_share,
            "loyal_share": self.loyal_share,
            "business_travel_share": self.business_travel_share,
            "on_time_share": self.on_time_share,
            "arrival_blank_share": self.arrival_blank_share,
        }
        for s in self.services:
            shares[f"services[{s.column}].not_applicable_share"] = s.not_applicable_share
        for name, value in shares.items():
            if not 0.0 <= value <= 1.0:
                raise ContrailError(f"GeneratorConfig.{name} = {value} must be between 0 and 1")
        if not 0.0 < self.satisfied_share < 1.0:
            raise ContrailError(
                f"GeneratorConfig.satisfied_share = {self.satisfied_share} must be above 0 "
                "and below 1"
            )
        for name in ("class_mix_business_travel", "class_mix_personal_travel"):
            mix = getattr(self, name)
            if len(mix) != 3 or min(mix) < 0 or not math.isclose(sum(mix), 1.0, abs_tol=1e-6):
                raise ContrailError(
                    f"GeneratorConfig.{name} = {mix} must be three shares "
                    f"({', '.join(TRAVEL_CLASS_VALUES)}) summing to 1"
                )
        lo, hi = self.age_range
        if not (0 <= lo < hi <= 99 and lo < self.age_mean_disloyal < hi):
            raise ContrailError(
                f"GeneratorConfig.age_range = {self.age_range} must satisfy 0 <= low < high "
                "<= 99 with both age means inside it"
            )
        if not lo < self.age_mean_loyal < hi or min(self.age_sd_loyal, self.age_sd_disloyal) <= 0:
            raise ContrailError(
                "GeneratorConfig.age_mean_loyal must lie in age_range; age sds must be > 0"
            )
        dlo, dhi = self.distance_range
        if not 0 < dlo < dhi <= _MAX_FORMATTED_INT:
            raise ContrailError(
                f"GeneratorConfig.distance_range = {self.distance_range} must satisfy "
                f"0 < low < high <= {_MAX_FORMATTED_INT}"
            )
        if len(self.distance_mean_by_class) != 3 or not all(
            dlo < m < dhi for m in self.distance_mean_by_class
        ):
            raise ContrailError(
                "GeneratorConfig.distance_mean_by_class must be three means inside distance_range"
            )
        if not 0 < self.max_delay_minutes <= _MAX_FORMATTED_INT:
            raise ContrailError(
                f"GeneratorConfig.max_delay_minutes = {self.max_delay_minutes} must be between "
                f"1 and {_MAX_FORMATTED_INT}"
            )
        if min(self.distance_shape, self.delay_log_sd, self.rating_noise_sd) <= 0:
            raise ContrailError(
                "GeneratorConfig.distance_shape, delay_log_sd and rating_noise_sd must be > 0"
            )
        columns = tuple(s.column for s in self.services)
        if columns != INVISTICO_RATING_COLUMNS:
            raise ContrailError(
                f"GeneratorConfig.services must profile {', '.join(INVISTICO_RATING_COLUMNS)} "
                f"in that order, not {', '.join(columns)}"
            )


@dataclass(frozen=True)
class _Calibration:
    threshold: float  # propensity above which a row is satisfied
    mean: float  # mean of the propensity (eta plus logistic noise)
    sd: float  # its standard deviation


@dataclass
class _Block:
    """One block of rows as numpy arrays; categoricals are indexes into the schema values."""

    satisfaction: np.ndarray  # int8, index into _SATISFACTION
    gender: np.ndarray  # int8, index into GENDER_VALUES
    customer_type: np.ndarray  # int8, index into CUSTOMER_TYPE_VALUES
    age: np.ndarray  # int32
    type_of_travel: np.ndarray  # int8, index into TYPE_OF_TRAVEL_VALUES
    travel_class: np.ndarray  # int8, index into TRAVEL_CLASS_VALUES
    flight_distance: np.ndarray  # int32
    ratings: np.ndarray  # uint8 (rows, 14), INVISTICO_RATING_COLUMNS order
    departure_delay: np.ndarray  # int32
    arrival_delay: np.ndarray  # int32 (meaningless where arrival_blank)
    arrival_blank: np.ndarray  # bool

    def head(self, n: int) -> _Block:
        return _Block(**{k: v[:n] for k, v in vars(self).items()})


def _rng(seed: int, block: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(block,))))


# Indexes of the source values in the schema tuples.
_FEMALE = GENDER_VALUES.index("Female")
_MALE = GENDER_VALUES.index("Male")
_LOYAL = CUSTOMER_TYPE_VALUES.index("Loyal Customer")
_DISLOYAL = CUSTOMER_TYPE_VALUES.index("disloyal Customer")
_BUSINESS_TRAVEL = TYPE_OF_TRAVEL_VALUES.index("Business travel")
_PERSONAL_TRAVEL = TYPE_OF_TRAVEL_VALUES.index("Personal Travel")
# Config class tuples are ordered (Eco, Eco Plus, Business); map to schema indexes.
_CLASS_ORDER = np.array([TRAVEL_CLASS_VALUES.index(c) for c in ("Eco", "Eco Plus", "Business")])


def _age_table(mean: float, sd: float, lo: int, hi: int) -> np.ndarray:
    """Age for each of 65,536 equally likely uint16 draws: a beta bell on lo..hi.

    Each age gets a share of the table proportional to the beta density at its midpoint
    (shares are exact to 1/65,536), so drawing a uniform uint16 and looking it up samples it.
    """
    m = (mean - lo) / (hi - lo)
    v = (sd / (hi - lo)) ** 2
    concentration = max(m * (1 - m) / v - 1, 0.5)
    a, b = m * concentration, (1 - m) * concentration
    x = (np.arange(lo, hi + 1) - lo + 0.5) / (hi - lo + 1)
    density = x ** (a - 1) * (1 - x) ** (b - 1)
    edges = np.rint(np.cumsum(density / density.sum()) * 65_536).astype(np.int64)
    counts = np.diff(edges, prepend=0)
    return np.repeat(np.arange(lo, hi + 1, dtype=np.int32), counts)


@cache
def _age_tables(cfg: GeneratorConfig) -> tuple[np.ndarray, np.ndarray]:
    """Age lookup tables of loyal and of disloyal customers."""
    lo, hi = cfg.age_range
    return (
        _age_table(cfg.age_mean_loyal, cfg.age_sd_loyal, lo, hi),
        _age_table(cfg.age_mean_disloyal, cfg.age_sd_disloyal, lo, hi),
    )


def _draw_drivers(rng: np.random.Generator, n: int, cfg: GeneratorConfig) -> dict[str, np.ndarray]:
    """Segments, age, distance, delays and the satisfaction logit ``eta`` of n rows."""
    u = rng.random((5, n), dtype=np.float32)
    female = u[0] < cfg.female_share
    loyal = u[1] < cfg.loyal_share
    business_travel = u[2] < cfg.business_travel_share

    # Class (position in the config's Eco, Eco Plus, Business order) given the type of travel.
    cum_bt = np.cumsum(cfg.class_mix_business_travel)
    cum_pt = np.cumsum(cfg.class_mix_personal_travel)
    c0 = np.where(business_travel, cum_bt[0], cum_pt[0])
    c1 = np.where(business_travel, cum_bt[1], cum_pt[1])
    klass = (u[3] >= c0).astype(np.int8) + (u[3] >= c1)

    lo, hi = cfg.age_range
    loyal_ages, disloyal_ages = _age_tables(cfg)
    age_draw = rng.integers(0, 65_536, n, dtype=np.uint16)
    age = np.where(loyal, loyal_ages[age_draw], disloyal_ages[age_draw])

    dlo, dhi = cfg.distance_range
    mean_extra = np.asarray(cfg.distance_mean_by_class, dtype=np.float32)[klass] - dlo
    distance = rng.standard_gamma(cfg.distance_shape, n, dtype=np.float32)
    distance *= mean_extra / cfg.distance_shape
    distance += dlo
    # Fold the few draws past the longest route back below it.
    distance = np.where(distance > dhi, 2 * dhi - distance, distance)
    distance = np.clip(np.rint(distance), dlo, dhi).astype(np.int32)

    # Departure: on time, or a lognormal delay; the rare draws past the maximum are replaced
    # by a uniform delay in its upper range (u[4] rescaled is independent of the lognormal).
    z = rng.standard_normal(n, dtype=np.float32)
    late = u[4] >= cfg.on_time_share
    delay = np.ceil(np.exp(cfg.delay_log_mean + cfg.delay_log_sd * z))
    rescaled = (u[4] - cfg.on_time_share) / max(1.0 - cfg.on_time_share, 1e-9)
    top = cfg.max_delay_minutes
    delay = np.where(delay > top, np.ceil(top * (0.25 + 0.75 * rescaled)), delay)
    departure = np.where(late, delay, 0).astype(np.int32)

    # Arrival: departure plus noise that widens with the delay (a little time made up en
    # route on average, a right tail of extra waiting), never negative.
    log_dep = np.log1p(departure, dtype=np.float32)
    spread = 3.0 + 3.0 * log_dep
    noise = rng.standard_normal(n, dtype=np.float32) * spread
    noise += rng.standard_exponential(n, dtype=np.float32) * (spread * 0.5)
    arrival = np.clip(np.rint(departure + noise - 5.0), 0, top).astype(np.int32)
    arrival_blank = rng.random(n, dtype=np.float32) < cfg.arrival_blank_share

    mid_age = (lo + hi) / 2
    half_span = (hi - lo) / 2
    eta = np.asarray(cfg.class_effect, dtype=np.float32)[klass]
    eta += np.where(loyal, np.float32(cfg.loyal_effect), np.float32(0))
    eta += np.where(business_travel, np.float32(cfg.business_travel_effect), np.float32(0))
    eta -= np.float32(cfg.age_effect) * ((age - mid_age) / half_span).astype(np.float32) ** 2
    eta -= np.float32(cfg.delay_effect) * log_dep

    return {
        "female": female,
        "loyal": loyal,
        "business_travel": business_travel,
        "klass": klass,
        "age": age,
        "distance": distance,
        "departure": departure,
        "arrival": arrival,
        "arrival_blank": arrival_blank,
        "eta": eta,
    }


@cache
def _calibrate(cfg: GeneratorConfig) -> _Calibration:
    """Threshold, mean and sd of the propensity, from a fixed sample of the drivers."""
    eta = np.concatenate(
        [
            _draw_drivers(_rng(_CALIBRATION_SEED, b), BLOCK_ROWS, cfg)["eta"].astype(np.float64)
            for b in range(_CALIBRATION_BLOCKS)
        ]
    )
    # P(satisfied | eta) = sigmoid(eta - t): solve mean(sigmoid(eta - t)) = share (Newton;
    # the mean is decreasing and smooth in t, so a few steps from the logit of the share do).
    share = cfg.satisfied_share
    t = float(np.mean(eta)) - math.log(share / (1 - share))
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(t - eta))
        gap = float(p.mean()) - share
        slope = float((p * (1 - p)).mean())
        step = max(min(gap / max(slope, 1e-12), 2.0), -2.0)
        t += step
        if abs(step) < 1e-10:
            break
    sd = math.sqrt(float(eta.var()) + math.pi**2 / 3)
    return _Calibration(threshold=t, mean=float(eta.mean()), sd=sd)


def _draw_block(seed: int, block: int, cfg: GeneratorConfig) -> _Block:
    """All BLOCK_ROWS rows of one block."""
    cal = _calibrate(cfg)
    rng = _rng(seed, block)
    n = BLOCK_ROWS
    d = _draw_drivers(rng, n, cfg)

    # Propensity = eta + standard logistic noise.
    p = rng.random(n, dtype=np.float32)
    np.clip(p, np.float32(1e-7), np.float32(1 - 1e-7), out=p)
    propensity = d["eta"] + np.log(p / (1 - p))
    satisfied = propensity > cal.threshold
    standard = (propensity - np.float32(cal.mean)) / np.float32(cal.sd)

    services = cfg.services
    means = np.array([s.mean for s in services], dtype=np.float32)
    loadings = np.array([s.loading for s in services], dtype=np.float32)
    na_shares = np.array([s.not_applicable_share for s in services], dtype=np.float32)
    # Noise: the sum of two uniform bytes, a triangle with the configured sd (cheaper to draw
    # than normals, and bounded, like a 1-5 answer).
    pair = rng.integers(0, 256, size=(2, n, len(services)), dtype=np.uint8)
    latent = pair[0].astype(np.float32)
    latent += pair[1]
    width = np.float32(cfg.rating_noise_sd * math.sqrt(6.0) / 255.0)
    latent *= width
    latent += means - width * 255
    latent += standard[:, None] * loadings
    np.rint(latent, out=latent)
    np.clip(latent, 1, 5, out=latent)
    ratings = latent.astype(np.uint8)
    # "Not applicable": a binomial count of 0s per service at uniformly drawn rows.
    for column, count in enumerate(rng.binomial(n, na_shares.astype(np.float64))):
        ratings[rng.integers(0, n, count), column] = 0

    return _Block(
        satisfaction=np.where(satisfied, 0, 1).astype(np.int8),
        gender=np.where(d["female"], _FEMALE, _MALE).astype(np.int8),
        customer_type=np.where(d["loyal"], _LOYAL, _DISLOYAL).astype(np.int8),
        age=d["age"],
        type_of_travel=np.where(d["business_travel"], _BUSINESS_TRAVEL, _PERSONAL_TRAVEL).astype(
            np.int8
        ),
        travel_class=_CLASS_ORDER[d["klass"]].astype(np.int8),
        flight_distance=d["distance"],
        ratings=ratings,
        departure_delay=d["departure"],
        arrival_delay=d["arrival"],
        arrival_blank=d["arrival_blank"],
    )


def _blocks(rows: int, seed: int, cfg: GeneratorConfig) -> Iterator[_Block]:
    """The blocks that make up the first ``rows`` rows, the last one cut to size."""
    for block in range(-(-rows // BLOCK_ROWS)):
        b = _draw_block(seed, block, cfg)
        yield b.head(min(BLOCK_ROWS, rows - block * BLOCK_ROWS))


def _check_args(rows: int, seed: int) -> None:
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ContrailError(f"rows = {rows!r} must be a whole number of surveys, 0 or more")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ContrailError(f"seed = {seed!r} must be a whole number, 0 or more")


# --- Arrow ----------------------------------------------------------------------------------


def _strings(values: tuple[str, ...], index: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(index))


def _block_table(b: _Block) -> pa.Table:
    n = len(b.age)
    columns: dict[str, pa.Array] = {
        "satisfaction": _strings(_SATISFACTION, b.satisfaction),
        "gender": _strings(GENDER_VALUES, b.gender),
        "customer_type": _strings(CUSTOMER_TYPE_VALUES, b.customer_type),
        "age": pa.array(b.age),
        "type_of_travel": _strings(TYPE_OF_TRAVEL_VALUES, b.type_of_travel),
        "travel_class": _strings(TRAVEL_CLASS_VALUES, b.travel_class),
        "flight_distance": pa.array(b.flight_distance),
    }
    for i, name in enumerate(INVISTICO_RATING_COLUMNS):
        columns[name] = pa.array(b.ratings[:, i].astype(np.int32))
    columns["inflight_service"] = pa.nulls(n, pa.int32())
    columns["departure_delay_minutes"] = pa.array(b.departure_delay)
    columns["arrival_delay_minutes"] = pa.array(b.arrival_delay, mask=b.arrival_blank)
    return pa.table({name: columns[name] for name, _ in SURVEY_COLUMNS})


def generate_table(
    rows: int, seed: int = 42, config: GeneratorConfig = GeneratorConfig()
) -> pa.Table:
    """``rows`` synthetic surveys as an Arrow table with the columns of ``SURVEY_COLUMNS``.

    Categorical columns hold the exact source strings, integer columns are int32,
    ``inflight_service`` is all NULL (the Invistico layout has no such column) and
    ``arrival_delay_minutes`` is NULL where the export leaves it blank. The same
    ``(rows, seed, config)`` always gives the same table.
    """
    _check_args(rows, seed)
    tables = [_block_table(b) for b in _blocks(rows, seed, config)]
    if not tables:
        return _block_table(_draw_block(seed, 0, config).head(0))
    return pa.concat_tables(tables).combine_chunks()


# --- CSV ------------------------------------------------------------------------------------


class _Texts:
    """Formatted texts of a value set, NUL-padded to one width, with their true lengths."""

    def __init__(self, texts: list[str]) -> None:
        encoded = [t.encode("ascii") for t in texts]
        self.width = max(len(e) for e in encoded)
        self.values = np.array(encoded, dtype=f"S{self.width}")
        self.lengths = np.array([len(e) for e in encoded], dtype=np.int32)


# "satisfaction,Gender,Customer Type," by satisfaction * 4 + gender * 2 + customer type.
_PREFIX = _Texts(
    [f"{s},{g},{c}," for s in _SATISFACTION for g in GENDER_VALUES for c in CUSTOMER_TYPE_VALUES]
)
# "Type of Travel,Class," by type of travel * 3 + class.
_MIDDLE = _Texts([f"{t},{c}," for t in TYPE_OF_TRAVEL_VALUES for c in TRAVEL_CLASS_VALUES])
_INT_COMMA = _Texts([f"{i}," for i in range(_MAX_FORMATTED_INT + 1)])
# The arrival delay ends the line; the extra last entry is the blank field.
_INT_EOL = _Texts([f"{i}\r\n" for i in range(_MAX_FORMATTED_INT + 1)] + ["\r\n"])
_BLANK = _MAX_FORMATTED_INT + 1
_RATINGS_WIDTH = 2 * len(INVISTICO_RATING_COLUMNS)


def _put(out: np.ndarray, offsets: np.ndarray, values: np.ndarray) -> None:
    """Copy each fixed-width value to ``out[offset:offset + width]`` (padding included)."""
    width = values.dtype.itemsize
    windows = np.ndarray((out.size - width + 1,), f"S{width}", buffer=out, strides=(1,))
    windows[offsets] = values


def _csv_bytes(b: _Block) -> np.ndarray:
    """The block's CSV lines as a uint8 array.

    Every value is looked up in a table of formatted texts; row and field offsets come from
    a cumulative sum of their lengths. Each field is copied at full table width, so its NUL
    padding spills over the start of what follows; fields are written in an order where every
    spill lands on bytes a later pass overwrites: departure (spills into arrival), arrival
    (into the next row's prefix), then prefix, age, middle, distance (each into the next
    field) and the fixed-width ratings last.
    """
    n = len(b.age)
    prefix = b.satisfaction * 4 + b.gender * 2 + b.customer_type
    middle = b.type_of_travel * 3 + b.travel_class
    arrival = np.where(b.arrival_blank, _BLANK, b.arrival_delay)
    starts = [
        _PREFIX.lengths[prefix],
        _INT_COMMA.lengths[b.age],
        _MIDDLE.lengths[middle],
        _INT_COMMA.lengths[b.flight_distance],
        np.full(n, _RATINGS_WIDTH, dtype=np.int32),
        _INT_COMMA.lengths[b.departure_delay],
        _INT_EOL.lengths[arrival],
    ]
    # Turn field lengths into absolute field starts, in place: row starts first, then each
    # field starts where the one before it ends.
    row_lengths = sum(starts[1:], starts[0])
    row_ends = np.cumsum(row_lengths, dtype=np.int32)
    total = int(row_ends[-1]) if n else 0
    previous = row_ends - row_lengths
    for i, length in enumerate(starts):
        starts[i] = previous
        previous = previous + length
    out = np.empty(total + 64, dtype=np.uint8)

    text = np.empty((n, _RATINGS_WIDTH), dtype=np.uint8)
    text[:, 0::2] = b.ratings + ord("0")
    text[:, 1::2] = ord(",")

    _put(out, starts[5], _INT_COMMA.values[b.departure_delay])
    _put(out, starts[6], _INT_EOL.values[arrival])
    _put(out, starts[0], _PREFIX.values[prefix])
    _put(out, starts[1], _INT_COMMA.values[b.age])
    _put(out, starts[2], _MIDDLE.values[middle])
    _put(out, starts[3], _INT_COMMA.values[b.flight_distance])
    _put(out, starts[4], text.view(f"S{_RATINGS_WIDTH}").reshape(n))
    return out[:total]


def _header_bytes() -> bytes:
    return ",".join(INVISTICO_HEADER).encode("ascii") + CSV_EOL


def write_csv(
    out: Path,
    rows: int,
    seed: int = 42,
    config: GeneratorConfig = GeneratorConfig(),
    chunk_rows: int = 1_000_000,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write ``rows`` synthetic surveys to ``out`` in the Invistico layout; return rows written.

    The header is ``INVISTICO_HEADER``; values are unquoted, lines end with CRLF and a blank
    arrival delay is an empty field, as in the public file. ``out`` ending in ``.gz`` is
    gzip-compressed. The file is written to ``out.part`` and renamed when complete.

    Memory stays bounded (one block of rows at a time, whatever ``rows``). ``chunk_rows`` is
    rounded up to a multiple of ``BLOCK_ROWS``; ``progress(n)`` is called after each chunk with
    the rows it held. The bytes written depend only on ``(rows, seed, config)``.
    """
    _check_args(rows, seed)
    if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or chunk_rows <= 0:
        raise ContrailError(f"chunk_rows = {chunk_rows!r} must be a positive whole number")
    out = Path(out)
    blocks_per_chunk = -(-chunk_rows // BLOCK_ROWS)
    partial = out.with_name(out.name + ".part")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as raw:
            # No file name or time in the gzip header, so a seed always gives the same bytes.
            sink: BinaryIO = (
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=0
                )
                if out.name.endswith(".gz")
                else raw
            )
            sink.write(_header_bytes())
            in_chunk = 0
            for index, block in enumerate(_blocks(rows, seed, config)):
                sink.write(_csv_bytes(block))
                in_chunk += len(block.age)
                if (index + 1) % blocks_per_chunk == 0 and progress is not None:
                    progress(in_chunk)
                    in_chunk = 0
            if in_chunk and progress is not None:
                progress(in_chunk)
            sink.close()  # a GzipFile writes its trailer; closing the file twice is harmless
        os.replace(partial, out)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise ContrailError(
            f"{out}: cannot write the generated survey file ({exc.strerror or exc}); "
            "check the folder exists, is writable and has free space"
        ) from exc
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise
    return rows
