"""The airports enrichment flies between, and every ordered route between them.

**Which airports.** ``airportsdata`` (a maintained PyPI package shipping its own data) lists about
7,900 airports with an IATA code, from international hubs to grass strips, and has no size or
traffic field. We keep an airport when its name contains "International" (case-insensitive), which
in practice means an airport with scheduled commercial service, plus a curated list of busy hubs
whose names lack the word (London Heathrow, Amsterdam Schiphol, New York LaGuardia, ...). Every kept
airport must have coordinates and a time zone. That gives about 940 airports on every continent.

**Routes.** Every ordered pair of distinct kept airports at least ``MIN_ROUTE_MILES`` apart is a
route, with its great-circle (haversine) distance in statute miles; routes are sorted by distance so
enrichment can ``searchsorted`` a distance window. Both tables are built on first use and cached for
the life of the process; importing this module does no I/O.

``write_seed`` writes the airport table to ``dbt_project/seeds/airports.csv``, from which dbt
builds ``dim_airport``. Enrichment only emits airports of this table, so every code it writes is
in the seed.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ingestion.config import REPO_ROOT

SEED_PATH = REPO_ROOT / "dbt_project" / "seeds" / "airports.csv"

# Mean Earth radius in statute miles (IUGG mean radius, 6,371.0088 km).
EARTH_RADIUS_MILES = 3958.7613

# Shorter hops are not scheduled passenger routes (and some codes share one airfield).
MIN_ROUTE_MILES = 25.0

# Busy passenger airports whose airportsdata name lacks "International".
HUB_CODES: tuple[str, ...] = (
    "AMS",  # Amsterdam Schiphol
    "BKK",  # Bangkok Suvarnabhumi
    "DCA",  # Washington Reagan National
    "DTW",  # Detroit Metro Wayne County
    "IAH",  # Houston George Bush Intercontinental
    "IST",  # Istanbul
    "LGA",  # New York LaGuardia
    "LGW",  # London Gatwick
    "LHR",  # London Heathrow
    "ORY",  # Paris Orly
    "CPH",  # Copenhagen Kastrup
    "ARN",  # Stockholm Arlanda
    "OSL",  # Oslo Gardermoen
    "HEL",  # Helsinki Vantaa
    "ZRH",  # Zurich
    "BRU",  # Brussels
    "DUB",  # Dublin
    "HOU",  # Houston Hobby
    "DAL",  # Dallas Love Field
    "BUR",  # Burbank Hollywood
)

AIRPORT_COLUMNS: tuple[str, ...] = (
    "airport_code",
    "airport_name",
    "city",
    "country_code",
    "latitude",
    "longitude",
    "timezone",
)


def _is_kept(code: str, info: dict[str, object]) -> bool:
    name = str(info.get("name") or "")
    has_place = info.get("lat") is not None and info.get("lon") is not None and bool(info.get("tz"))
    return has_place and len(code) == 3 and ("international" in name.lower() or code in HUB_CODES)


@functools.cache
def airport_table() -> pa.Table:
    """The kept airports, one row each, sorted by ``airport_code`` (see the module docstring)."""
    import airportsdata

    data = airportsdata.load("IATA")
    rows = sorted((code, info) for code, info in data.items() if _is_kept(code, info))
    return pa.table(
        {
            "airport_code": pa.array([code for code, _ in rows], pa.string()),
            "airport_name": pa.array([str(info["name"]) for _, info in rows], pa.string()),
            # A few entries lack a city; their region (state, province) stands in for it.
            "city": pa.array(
                [str(info.get("city") or info.get("subd") or "") for _, info in rows], pa.string()
            ),
            "country_code": pa.array([str(info["country"]) for _, info in rows], pa.string()),
            "latitude": pa.array([float(info["lat"]) for _, info in rows], pa.float64()),
            "longitude": pa.array([float(info["lon"]) for _, info in rows], pa.float64()),
            "timezone": pa.array([str(info["tz"]) for _, info in rows], pa.string()),
        }
    )


def haversine_miles(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Great-circle distance in statute miles between points given in degrees (broadcasts)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class RouteTable:
    """Every ordered route between kept airports, sorted by ascending distance.

    ``origin`` and ``destination`` index ``codes`` (the rows of ``airport_table()``).
    """

    codes: pa.StringArray
    origin: np.ndarray  # int32
    destination: np.ndarray  # int32
    miles: np.ndarray  # float64, ascending

    def __len__(self) -> int:
        return len(self.miles)


@functools.cache
def route_table() -> RouteTable:
    """All ordered airport pairs at least ``MIN_ROUTE_MILES`` apart, sorted by distance."""
    airports = airport_table()
    lat = airports.column("latitude").to_numpy()
    lon = airports.column("longitude").to_numpy()
    miles = haversine_miles(lat[:, None], lon[:, None], lat[None, :], lon[None, :]).ravel()
    n = len(lat)
    keep = np.flatnonzero(miles >= MIN_ROUTE_MILES)
    order = keep[np.argsort(miles[keep], kind="stable")]
    return RouteTable(
        codes=airports.column("airport_code").combine_chunks(),
        origin=(order // n).astype(np.int32),
        destination=(order % n).astype(np.int32),
        miles=miles[order],
    )


def write_seed(path: Path = SEED_PATH) -> int:
    """Write the airport table as a dbt seed CSV (header, sorted by code); return the row count."""
    rows = airport_table().to_pylist()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=AIRPORT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
