"""Chart builders and KPI values: titles, formats, order, readable labels, quadrant labels."""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboards.components import (
    LABEL_LIMIT,
    bar_chart,
    big_value,
    heatmap,
    label_positions,
    line_chart,
    scatter_plot,
    sorted_rows,
)
from dashboards.pages_spec import Component


def layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("layer", [spec])


def texts_in(spec: dict[str, Any]) -> set[str]:
    """Every string value in the chart's inline datasets (e.g. quadrant labels)."""
    found: set[str] = set()
    for rows in spec.get("datasets", {}).values():
        for row in rows:
            found.update(v for v in row.values() if isinstance(v, str))
    return found


RATES = pd.DataFrame(
    {
        "travel_class": ["eco plus", "business", "eco"],
        "satisfaction_rate": [0.47, 0.68, 0.41],
        "responses": [300, 2500, 2100],
    }
)


def test_bar_chart_keeps_query_order_formats_percent_and_labels_bars() -> None:
    spec = bar_chart(
        RATES,
        x="travel_class",
        y="satisfaction_rate",
        title="Satisfaction by travel class",
        horizontal=True,
        tooltip=["responses"],
    ).to_dict()
    assert spec["title"] == "Satisfaction by travel class"
    bars, text = layers(spec)
    assert bars["mark"]["type"] == "bar" and text["mark"]["type"] == "text"
    category, value = bars["encoding"]["y"], bars["encoding"]["x"]
    assert category["field"] == "travel_class" and category["sort"] is None  # query order
    assert category["axis"]["labelLimit"] == LABEL_LIMIT  # long labels are not cut
    assert value["axis"]["format"] == ".0%"
    assert text["encoding"]["text"]["format"] == ".1%"
    # room past the longest bar for its label
    assert value["scale"]["domain"][1] > RATES.satisfaction_rate.max()
    tips = {tip["field"]: tip.get("format") for tip in bars["encoding"]["tooltip"]}
    assert tips == {"travel_class": None, "satisfaction_rate": ".1%", "responses": ",d"}
    # the chart is tall enough for its rows plus title and axes
    assert spec["height"] >= 3 * 20 + 80


def test_line_chart_with_two_series_folds_them_under_readable_names() -> None:
    daily = pd.DataFrame(
        {
            "date_day": pd.to_datetime(["2026-01-01", "2026-01-02"]),
            "satisfaction_rate": [0.5, 0.6],
            "rolling_7d_satisfaction_rate": [0.5, 0.55],
        }
    )
    spec = line_chart(
        daily,
        x="date_day",
        y=["satisfaction_rate", "rolling_7d_satisfaction_rate"],
        title="Daily",
    ).to_dict()
    assert spec["title"] == "Daily"
    assert spec["encoding"]["x"]["type"] == "temporal"
    assert spec["encoding"]["y"]["axis"]["format"] == ".0%"
    assert spec["transform"][0]["fold"] == ["satisfaction_rate", "rolling_7d_satisfaction_rate"]
    assert "Rolling 7d satisfaction rate" in spec["transform"][1]["calculate"]
    # The axes are named: the calendar day, and what the two series measure in common.
    assert spec["encoding"]["x"]["title"] == "Day"
    assert spec["encoding"]["y"]["title"] == "Satisfaction rate"


def test_heatmap_labels_every_cell_with_the_value_format() -> None:
    grid = pd.DataFrame(
        {
            "segment": ["business", "eco"],
            "service_label": ["Seat comfort", "Seat comfort"],
            "mean_rating": [3.456, 2.5],
        }
    )
    spec = heatmap(
        grid, x="segment", y="service_label", value="mean_rating", title="Ratings"
    ).to_dict()
    cells, text = layers(spec)
    assert spec["title"] == "Ratings"
    assert cells["mark"]["type"] == "rect" and text["mark"]["type"] == "text"
    assert text["encoding"]["text"] == {
        "field": "mean_rating",
        "format": ".2f",
        "type": "quantitative",
    }


def test_scatter_plot_writes_the_four_quadrant_labels_and_split_lines() -> None:
    drivers = pd.DataFrame(
        {
            "service_label": ["Seat comfort", "Wifi", "Food"],
            "mean_rating": [2.9, 3.6, 3.2],
            "importance": [0.45, 0.1, 0.3],
            "action": ["Fix first", "Possible overkill", "Keep up"],
        }
    )
    labels = ["Fix first", "Keep up the good work", "Low priority", "Possible overkill"]
    spec = scatter_plot(
        drivers,
        x="mean_rating",
        y="importance",
        title="Importance vs performance",
        label="service_label",
        color="action",
        xline=3.23,
        yline=0.28,
        quadrants=labels,
        colors={"Fix first": "#d62728", "Keep up": "#2ca02c"},
    ).to_dict()
    assert spec["title"] == "Importance vs performance"
    assert set(labels) <= texts_in(spec)
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks.count("rule") == 2
    assert marks.count("text") == 2 + 4  # point labels (left/right halves) + 4 corners
    rules = [layer for layer in spec["layer"] if layer["mark"]["type"] == "rule"]
    rule_values = sorted(
        v for r in rules for row in spec["datasets"][r["data"]["name"]] for v in row.values()
    )
    assert rule_values == [0.28, 3.23]
    points = spec["layer"][0]
    assert points["encoding"]["color"]["scale"] == {
        "domain": ["Fix first", "Keep up"],
        "range": ["#d62728", "#2ca02c"],
    }
    # the split lines lie inside the axes, so every quadrant is visible
    x_domain = points["encoding"]["x"]["scale"]["domain"]
    assert x_domain[0] < 2.9 and x_domain[1] > 3.6


def test_sorted_rows_is_stable_and_descending_with_a_minus() -> None:
    df = pd.DataFrame({"k": ["a", "b", "c", "d"], "v": [1, 3, 1, 2]})
    assert list(sorted_rows(df, ["-v"]).k) == ["b", "d", "a", "c"]
    assert list(sorted_rows(df, ["v", "-k"]).k) == ["c", "a", "d", "b"]


def test_big_value_formats_value_and_delta_from_the_first_row() -> None:
    component = Component(
        "BigValue",
        {
            "data": "q",
            "value": "satisfaction_rate",
            "delta": "satisfaction_change_pp",
            "delta_title": "vs prior 30 days",
            "title": "Rate",
        },
        1,
    )
    row = pd.DataFrame({"satisfaction_rate": [0.5449], "satisfaction_change_pp": [-0.0191]})
    assert big_value(row, component) == {"value": "54.5%", "delta": "-1.9 pp vs prior 30 days"}
    empty = row.iloc[0:0]
    assert big_value(empty, component) == {"value": "–", "delta": None}
    no_change = pd.DataFrame({"satisfaction_rate": [0.5], "satisfaction_change_pp": [None]})
    assert big_value(no_change, component)["delta"] is None


def test_point_labels_that_would_overlap_are_spaced_a_line_apart() -> None:
    # Two services at almost the same spot in the right half, one far away in the left half.
    drivers = pd.DataFrame(
        {
            "service_label": ["Online boarding", "On-board service", "Wifi"],
            "mean_rating": [3.80, 3.81, 2.50],
            "importance": [0.300, 0.299, 0.300],
        }
    )
    y_domain, plot_height = [0.0, 0.5], 300
    placed = label_positions(
        drivers,
        x="mean_rating",
        y="importance",
        label="service_label",
        x_domain=[2.0, 4.0],
        y_domain=y_domain,
        plot_height=plot_height,
    )
    pixels = (y_domain[1] - placed) / (y_domain[1] - y_domain[0]) * plot_height
    # The higher point keeps its place; the next one moves down below it.
    assert placed[0] == 0.300
    assert pixels[1] - pixels[0] >= 14 - 1e-9
    # A label with nothing beside it stays at its point, even at the same height.
    assert placed[2] == 0.300
