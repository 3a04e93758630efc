"""The airport table, the routes between its airports, and the committed dbt seed."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.airports import (
    AIRPORT_COLUMNS,
    MIN_ROUTE_MILES,
    SEED_PATH,
    airport_table,
    route_table,
    write_seed,
)


def great_circle_miles(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance on a sphere of mean Earth radius, written out for the test."""
    radius_miles = 6371.0088 / 1.609344
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((p2 - p1) / 2) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    )
    return 2 * radius_miles * math.asin(math.sqrt(a))


def read_seed(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_airport_table_has_the_seed_columns_and_a_plausible_set_of_airports() -> None:
    table = airport_table()
    assert table.schema == pa.schema(
        [
            ("airport_code", pa.string()),
            ("airport_name", pa.string()),
            ("city", pa.string()),
            ("country_code", pa.string()),
            ("latitude", pa.float64()),
            ("longitude", pa.float64()),
            ("timezone", pa.string()),
        ]
    )
    codes = table.column("airport_code").to_pylist()
    assert 500 <= len(codes) <= 1500
    assert codes == sorted(set(codes))
    assert all(len(code) == 3 and code.isupper() for code in codes)
    # Busy hubs, with and without "International" in their names, are in.
    assert {"ATL", "JFK", "LAX", "DXB", "SIN", "LHR", "AMS", "LGA", "IST"} <= set(codes)
    # A private club strip and a regional field are not.
    assert "OCA" not in codes  # Ocean Reef Club Airport
    assert "CYT" not in codes  # Yakataga Airport
    row = table.filter(pc.equal(table.column("airport_code"), "LHR")).to_pylist()[0]
    assert row["country_code"] == "GB"
    assert row["timezone"] == "Europe/London"
    assert abs(row["latitude"] - 51.47) < 0.05
    assert abs(row["longitude"] - (-0.46)) < 0.05


def test_routes_are_every_ordered_pair_sorted_by_great_circle_distance() -> None:
    rows = read_seed(SEED_PATH)
    lat = np.array([float(r["latitude"]) for r in rows])
    lon = np.array([float(r["longitude"]) for r in rows])
    # Every ordered pair at least MIN_ROUTE_MILES apart, counted independently.
    p1, p2 = np.radians(lat)[:, None], np.radians(lat)[None, :]
    dl = np.radians(lon)[None, :] - np.radians(lon)[:, None]
    a = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    miles = 2 * (6371.0088 / 1.609344) * np.arcsin(np.sqrt(np.clip(a, 0, 1)))
    np.fill_diagonal(miles, 0.0)
    expected_pairs = int((miles >= MIN_ROUTE_MILES).sum())

    routes = route_table()
    assert len(routes) == expected_pairs
    assert np.all(np.diff(routes.miles) >= 0)
    assert routes.miles[0] >= MIN_ROUTE_MILES
    codes = routes.codes.to_pylist()
    assert codes == [r["airport_code"] for r in rows]
    for i in np.linspace(0, len(routes) - 1, 25).astype(int):
        o, d = routes.origin[i], routes.destination[i]
        assert o != d
        assert math.isclose(routes.miles[i], miles[o, d], rel_tol=1e-6)


def test_known_route_distances() -> None:
    rows = {r["airport_code"]: r for r in read_seed(SEED_PATH)}
    routes = route_table()
    codes = routes.codes.to_pylist()
    index = {code: i for i, code in enumerate(codes)}
    lookup = {
        (int(o), int(d)): m
        for o, d, m in zip(routes.origin, routes.destination, routes.miles, strict=True)
        if codes[o] in ("JFK", "LHR", "LAX") and codes[d] in ("JFK", "LHR", "LAX")
    }
    # Published distances (JFK-LHR 3,451 mi, LAX-JFK 2,475 mi), within a spherical Earth's 0.5%.
    assert abs(lookup[index["JFK"], index["LHR"]] - 3451) < 17
    assert abs(lookup[index["LHR"], index["JFK"]] - 3451) < 17
    assert abs(lookup[index["LAX"], index["JFK"]] - 2475) < 12
    jfk, lhr = rows["JFK"], rows["LHR"]
    independent = great_circle_miles(
        float(jfk["latitude"]),
        float(jfk["longitude"]),
        float(lhr["latitude"]),
        float(lhr["longitude"]),
    )
    assert math.isclose(lookup[index["JFK"], index["LHR"]], independent, rel_tol=1e-6)


def test_committed_seed_matches_write_seed(tmp_path: Path) -> None:
    target = tmp_path / "seeds" / "airports.csv"
    count = write_seed(target)
    assert target.read_bytes() == SEED_PATH.read_bytes()
    rows = read_seed(target)
    assert count == len(rows) == airport_table().num_rows
    with target.open(encoding="utf-8") as handle:
        assert handle.readline().rstrip("\n") == ",".join(AIRPORT_COLUMNS)
    codes = [r["airport_code"] for r in rows]
    assert codes == sorted(codes)
    assert all(r["timezone"] and r["country_code"] and r["city"] for r in rows)
    assert all(-90 <= float(r["latitude"]) <= 90 for r in rows)
    assert all(-180 <= float(r["longitude"]) <= 180 for r in rows)
