"""Draw one component (KPI tile, bar, line, heatmap, scatter, table) from a query's rows.

Chart builders are plain functions from a DataFrame to an Altair chart, so they can be tested
without Streamlit; ``draw`` puts the result on the page. Every chart carries its title, keeps
the query's row order (pages sort in SQL), formats values by column name
(``dashboards.formatting``) and sizes its labels so they are not cut off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboards.formatting import (
    MISSING,
    Kind,
    axis_format,
    format_value,
    humanize,
    is_missing,
    kind_of,
    tooltip_format,
)
from dashboards.pages_spec import Component, PageError, color_map, quadrant_labels

LABEL_LIMIT = 400  # pixels an axis label may take before Vega-Lite truncates it
ROW_HEIGHT = 26  # pixels per bar or heatmap row on a horizontal layout
FRAME_HEIGHT = 110  # pixels a chart's title, axis labels and axis title take


def rows_height(rows: int) -> int:
    """The height of a chart with ``rows`` horizontal bars or cells, frame included.

    Vega-Lite's height (with Streamlit's autosize "fit") covers the title and axes too, so
    the frame is added to the rows' own height.
    """
    return max(200, ROW_HEIGHT * rows + FRAME_HEIGHT)


def _color(column: str, colors: dict[str, str] | None) -> alt.Color:
    """A nominal colour encoding; ``colors`` pins chosen values to chosen colours."""
    if not colors:
        return alt.Color(column, type="nominal", title=humanize(column), sort=None)
    scale = alt.Scale(domain=list(colors), range=list(colors.values()))
    return alt.Color(column, type="nominal", title=humanize(column), scale=scale, sort=None)


def _is_integer(series: pd.Series) -> bool:
    return pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series)


def _field_type(series: pd.Series) -> str:
    if pd.api.types.is_datetime64_any_dtype(series):
        return "temporal"
    if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
        return "quantitative"
    return "nominal"


def _title(column: str) -> str:
    unit = axis_format(column).unit
    title = humanize(column)
    return title if not unit or title.endswith(f"({unit})") else f"{title} ({unit})"


def _axis(df: pd.DataFrame, column: str, **extra: Any) -> alt.Axis:
    fmt = axis_format(column, _is_integer(df[column])).d3
    if _field_type(df[column]) != "quantitative":
        fmt = None
    elif fmt == ".0%" and df[column].abs().max() < 0.1:
        fmt = ".1%"  # small shares: whole percents would repeat along the axis
    return (
        alt.Axis(format=fmt, labelLimit=LABEL_LIMIT, **extra)
        if fmt
        else alt.Axis(labelLimit=LABEL_LIMIT, **extra)
    )


def _tooltip(df: pd.DataFrame, columns: list[str]) -> list[alt.Tooltip]:
    tips = []
    for column in dict.fromkeys(columns):
        kind = _field_type(df[column])
        fmt = tooltip_format(column, _is_integer(df[column])) if kind == "quantitative" else None
        if kind == "temporal":
            fmt = "%Y-%m-%d %H:%M" if kind_of(column) is Kind.TIMESTAMP else "%Y-%m-%d"
        args: dict[str, Any] = {"type": kind, "title": humanize(column)}
        if fmt:
            args["format"] = fmt
        tips.append(alt.Tooltip(column, **args))
    return tips


def _require(df: pd.DataFrame, component: Component, path: Path, *names: str | None) -> None:
    """Columns a component names must be in its query's result."""
    for name in names:
        if name and name not in df.columns:
            raise PageError(
                path,
                component.line,
                f"<{component.kind}> column {name!r} is not in query "
                f"{component.data!r} (columns: {', '.join(map(str, df.columns))})",
            )


def bar_chart(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    color: str | None = None,
    horizontal: bool = False,
    labels: bool = True,
    height: int | None = None,
    tooltip: list[str] | None = None,
    colors: dict[str, str] | None = None,
) -> alt.LayerChart | alt.Chart:
    """Bars of ``y`` per ``x`` category, in the query's order, with value labels."""
    category = alt.X(
        x,
        type=_field_type(df[x]) if _field_type(df[x]) == "temporal" else "nominal",
        sort=None,
        title=_title(x),
        axis=alt.Axis(labelLimit=LABEL_LIMIT, labelAngle=-40, labelOverlap=False),
    )
    # Room past the longest bar for its value label, so the label is not cut off.
    top = df[y].max() if len(df) else None
    scale = (
        alt.Scale(domain=[0, float(top) * 1.15])
        if labels and top is not None and not is_missing(top) and top > 0 and df[y].min() >= 0
        else alt.Scale()
    )
    value = alt.Y(y, type="quantitative", title=_title(y), axis=_axis(df, y), scale=scale)
    if horizontal:
        category = alt.Y(
            x, type="nominal", sort=None, title=_title(x), axis=alt.Axis(labelLimit=LABEL_LIMIT)
        )
        value = alt.X(y, type="quantitative", title=_title(y), axis=_axis(df, y), scale=scale)
    encoding: dict[str, Any] = {
        "tooltip": _tooltip(df, [x, y, *(c for c in [color] if c), *(tooltip or [])]),
    }
    if color:
        encoding["color"] = _color(color, colors)
        offset = alt.YOffset if horizontal else alt.XOffset
        encoding["yOffset" if horizontal else "xOffset"] = offset(color, sort=None)
    rows = len(df[x].unique())
    chart_height = height or (
        rows_height(rows * (len(df[color].unique()) if color else 1)) if horizontal else 300
    )
    base = alt.Chart(df, height=chart_height)
    bars = base.mark_bar().encode(category, value, **encoding)
    if not labels:
        return bars.properties(title=title)
    fmt = tooltip_format(y, _is_integer(df[y])) or ","
    text_encoding = {k: v for k, v in encoding.items() if k != "color"}
    text = base.mark_text(
        align="left" if horizontal else "center",
        baseline="middle" if horizontal else "bottom",
        dx=3 if horizontal else 0,
        dy=0 if horizontal else -3,
        fontSize=11,
    ).encode(category, value, text=alt.Text(y, format=fmt), **text_encoding)
    return alt.layer(bars, text, title=title)


def line_chart(
    df: pd.DataFrame,
    *,
    x: str,
    y: list[str],
    title: str,
    color: str | None = None,
    height: int | None = None,
    tooltip: list[str] | None = None,
) -> alt.Chart:
    """One line per ``y`` column (or per value of ``color``) over ``x``."""
    x_type = _field_type(df[x])
    x_axis = alt.X(x, type=x_type, title=_title(x), axis=alt.Axis(labelLimit=LABEL_LIMIT))
    value_fmt = axis_format(y[0], _is_integer(df[y[0]]))
    y_title = _title(y[0]) if len(y) == 1 else _shared_title(y, value_fmt.unit)
    axis = alt.Axis(format=value_fmt.d3) if value_fmt.d3 else alt.Axis()
    point = len(df) <= 60
    base = alt.Chart(df, title=title, height=height or 300)
    if len(y) == 1:
        encoding: dict[str, Any] = {
            "tooltip": _tooltip(df, [x, y[0], *[c for c in [color] if c], *(tooltip or [])])
        }
        if color:
            encoding["color"] = alt.Color(color, type="nominal", title=humanize(color))
        return base.mark_line(point=point).encode(
            x_axis, alt.Y(y[0], type="quantitative", title=y_title, axis=axis), **encoding
        )
    labels = {column: humanize(column) for column in y}
    tip_fmt = tooltip_format(y[0], _is_integer(df[y[0]]))
    return (
        base.transform_fold(y, as_=["series", "value"])
        .transform_calculate(series_label=_label_expression(labels))
        .mark_line(point=point)
        .encode(
            x_axis,
            alt.Y("value:Q", title=y_title, axis=axis),
            alt.Color(
                "series_label:N",
                title=None,
                sort=list(labels.values()),
                scale=alt.Scale(scheme="category10"),
            ),
            tooltip=[
                alt.Tooltip(x, type=x_type, title=humanize(x)),
                alt.Tooltip("series_label:N", title="Series"),
                alt.Tooltip("value:Q", title="Value", format=tip_fmt or ","),
            ],
        )
    )


def _shared_title(columns: list[str], unit: str | None) -> str:
    """The words several series' names end with, as their common axis title:
    ``satisfaction_rate`` and ``rolling_7d_satisfaction_rate`` share "Satisfaction rate"."""
    names = [humanize(column).lower().split() for column in columns]
    shared: list[str] = []
    while all(len(words) > len(shared) for words in names) and (
        len({words[-1 - len(shared)] for words in names}) == 1
    ):
        shared.insert(0, names[0][-1 - len(shared)])
    title = " ".join(shared).capitalize()
    if unit and not title.endswith(f"({unit})"):
        title = f"{title} ({unit})".strip()
    return title


def _label_expression(labels: dict[str, str]) -> str:
    expression = "datum.series"
    for column, label in reversed(labels.items()):
        expression = f"datum.series === {column!r} ? {label!r} : ({expression})"
    return expression


def heatmap(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    value: str,
    title: str,
    height: int | None = None,
    tooltip: list[str] | None = None,
) -> alt.LayerChart:
    """A grid of ``value`` by ``x`` and ``y`` in the query's order, each cell labelled."""
    fmt = tooltip_format(value, _is_integer(df[value])) or ","
    rows = len(df[y].unique())
    base = alt.Chart(df, height=height or rows_height(rows)).encode(
        alt.X(
            x,
            type="nominal",
            sort=None,
            title=_title(x),
            axis=alt.Axis(labelLimit=200, labelAngle=0, orient="top"),
        ),
        alt.Y(y, type="nominal", sort=None, title=_title(y), axis=alt.Axis(labelLimit=LABEL_LIMIT)),
    )
    scheme = "redyellowgreen" if kind_of(value) in (Kind.SCORE, Kind.PERCENT) else "blues"
    cells = base.mark_rect().encode(
        alt.Color(
            value,
            type="quantitative",
            title=_title(value),
            scale=alt.Scale(scheme=scheme),
            legend=alt.Legend(format=axis_format(value).d3),
        ),
        tooltip=_tooltip(df, [x, y, value, *(tooltip or [])]),
    )
    # white labels on the dark ends of the colour scale, black in the light middle
    low, high = df[value].min(), df[value].max()
    edge = (high - low) * 0.2 if not (is_missing(low) or is_missing(high)) else 0
    dark = f"datum[{value!r}] < {float(low) + edge} || datum[{value!r}] > {float(high) - edge}"
    text = base.mark_text(fontSize=11).encode(
        text=alt.Text(value, format=fmt),
        color=alt.condition(dark, alt.value("white"), alt.value("black"))
        if edge
        else alt.value("black"),
    )
    return alt.layer(cells, text, title=title)


def _domain(values: pd.Series, extra: float | None) -> list[float]:
    numbers = [float(v) for v in values.dropna()]
    if extra is not None:
        numbers.append(extra)
    low, high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    pad = (high - low) * 0.08 or 0.1
    return [low - pad, high + pad]


LABEL_LINE = 14  # pixels between two point labels' baselines
CHAR_WIDTH = 6.5  # pixels a character of an 11 px label takes, roughly
PLOT_WIDTH = 700  # pixels assumed for the plot area when checking labels side by side


def label_positions(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    label: str,
    x_domain: list[float],
    y_domain: list[float],
    plot_height: int,
) -> pd.Series:
    """Where each point's label goes on the y axis (data units), so labels do not overlap.

    A label sits beside its point: to the right in the left half of the plot, to the left in
    the right half. Going down each half from the top, a label that would overlap the one
    placed before it (closer than a line, and side by side) moves down just enough. Plot width
    is assumed, so the check is conservative: labels far apart may also be spaced.
    """
    y_span = (y_domain[1] - y_domain[0]) or 1.0
    x_span = (x_domain[1] - x_domain[0]) or 1.0
    per_pixel = y_span / max(plot_height, 1)
    middle = (x_domain[0] + x_domain[1]) / 2
    positions = df[y].astype(float).copy()
    for left_half in (True, False):
        half = df[(df[x] < middle) == left_half].dropna(subset=[x, y])
        placed: list[tuple[float, float, float]] = []  # (y pixel from top, x start, x end)
        for index in half.sort_values(y, ascending=False).index:
            text_width = CHAR_WIDTH * len(str(df.at[index, label]))
            start = (float(df.at[index, x]) - x_domain[0]) / x_span * PLOT_WIDTH
            start, end = (start, start + text_width) if left_half else (start - text_width, start)
            top = (y_domain[1] - float(df.at[index, y])) / per_pixel
            for other_top, other_start, other_end in placed:
                if start < other_end and other_start < end and top < other_top + LABEL_LINE:
                    top = other_top + LABEL_LINE
            placed.append((top, start, end))
            positions[index] = y_domain[1] - top * per_pixel
    return positions


def scatter_plot(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    title: str,
    label: str | None = None,
    color: str | None = None,
    xline: float | None = None,
    yline: float | None = None,
    quadrants: list[str] | None = None,
    height: int | None = None,
    tooltip: list[str] | None = None,
    colors: dict[str, str] | None = None,
) -> alt.LayerChart:
    """Points of ``y`` against ``x``, optionally split into labelled quadrants.

    ``xline``/``yline`` draw the split; ``quadrants`` names them top-left, top-right,
    bottom-left, bottom-right, written inside the corners of the plot so they stay visible.
    """
    x_domain, y_domain = _domain(df[x], xline), _domain(df[y], yline)
    x_enc = alt.X(
        x,
        type="quantitative",
        title=_title(x),
        axis=_axis(df, x),
        scale=alt.Scale(domain=x_domain, nice=False),
    )
    y_enc = alt.Y(
        y,
        type="quantitative",
        title=_title(y),
        axis=_axis(df, y),
        scale=alt.Scale(domain=y_domain, nice=False),
    )
    base = alt.Chart(df, height=height or 420)
    encoding: dict[str, Any] = {
        "tooltip": _tooltip(df, [c for c in [label, x, y, color, *(tooltip or [])] if c])
    }
    if color:
        encoding["color"] = _color(color, colors)
    layers: list[Any] = [base.mark_circle(size=110, opacity=0.85).encode(x_enc, y_enc, **encoding)]
    if label:
        middle = (x_domain[0] + x_domain[1]) / 2
        labelled = df.assign(
            label_y=label_positions(
                df,
                x=x,
                y=y,
                label=label,
                x_domain=x_domain,
                y_domain=y_domain,
                plot_height=(height or 420) - FRAME_HEIGHT,
            )
        )
        label_y = alt.Y(
            "label_y",
            type="quantitative",
            title=_title(y),
            axis=_axis(df, y),
            scale=alt.Scale(domain=y_domain, nice=False),
        )
        for side, align, dx in (("<", "left", 8), (">=", "right", -8)):
            layers.append(
                alt.Chart(labelled)
                .transform_filter(f"datum[{x!r}] {side} {middle}")
                .mark_text(align=align, baseline="middle", dx=dx, fontSize=11)
                .encode(x_enc, label_y, text=alt.Text(label, type="nominal"))
            )
    rules = []
    if xline is not None:
        rules.append(
            alt.Chart(pd.DataFrame({x: [xline]}))
            .mark_rule(strokeDash=[4, 4], color="gray")
            .encode(alt.X(x, type="quantitative"))
        )
    if yline is not None:
        rules.append(
            alt.Chart(pd.DataFrame({y: [yline]}))
            .mark_rule(strokeDash=[4, 4], color="gray")
            .encode(alt.Y(y, type="quantitative"))
        )
    layers.extend(rules)
    if quadrants:
        corners = pd.DataFrame(
            {
                "quadrant_x": [x_domain[0], x_domain[1], x_domain[0], x_domain[1]],
                "quadrant_y": [y_domain[1], y_domain[1], y_domain[0], y_domain[0]],
                "quadrant_label": quadrants,
                "quadrant_align": ["left", "right", "left", "right"],
                "quadrant_baseline": ["top", "top", "bottom", "bottom"],
            }
        )
        for align in ("left", "right"):
            for baseline in ("top", "bottom"):
                part = corners[
                    (corners.quadrant_align == align) & (corners.quadrant_baseline == baseline)
                ]
                layers.append(
                    alt.Chart(part)
                    .mark_text(
                        align=align,
                        baseline=baseline,
                        dx=6 if align == "left" else -6,
                        dy=6 if baseline == "top" else -6,
                        fontSize=13,
                        fontWeight="bold",
                        color="#555",
                    )
                    .encode(alt.X("quadrant_x:Q"), alt.Y("quadrant_y:Q"), text="quadrant_label:N")
                )
    return alt.layer(*layers, title=title)


def _seconds_format(series: pd.Series) -> str:
    """Seconds in a table: exact when short, a humanised duration ("5 months") when long."""
    longest = series.abs().max() if series.notna().any() else 0
    return "duration" if longest > 3_600 else "%.1f s"


# Streamlit's table formats do not scale a 0-1 share, so tables show these columns times 100
# with one decimal: 58.3%, +1.2 pp (as KPI tiles and tooltips do).
_HUNDREDTHS = {Kind.PERCENT: "%.1f%%", Kind.POINTS: "%+.1f pp"}


def table_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a table shows: shares and point changes scaled to percent, and a missing text
    value as a dash rather than "None"."""
    changed: dict[str, pd.Series] = {}
    for column in df.columns:
        series = df[column]
        if pd.api.types.is_bool_dtype(series):
            continue
        if kind_of(str(column)) in _HUNDREDTHS and pd.api.types.is_numeric_dtype(series):
            changed[str(column)] = series * 100
        elif series.dtype == object and series.isna().any():
            changed[str(column)] = series.where(series.notna(), MISSING)
    return df.assign(**changed) if changed else df


def _table_label(column: str) -> str:
    """A column's header; the unit is left out where every value is written with it."""
    label = humanize(column)
    if kind_of(column) in (Kind.SECONDS, Kind.MINUTES, Kind.POINTS):
        for unit in (" (s)", " (min)", " (pp)"):
            label = label.removesuffix(unit)
    return label


def _table_config(df: pd.DataFrame) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for column in df.columns:
        series = df[column]
        label = _table_label(str(column))
        kind = kind_of(str(column))
        if pd.api.types.is_datetime64_any_dtype(series):
            fmt = "YYYY-MM-DD HH:mm:ss" if kind is Kind.TIMESTAMP else "YYYY-MM-DD"
            config[column] = st.column_config.DatetimeColumn(label, format=fmt)
        elif pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
            config[column] = st.column_config.Column(label)
        else:
            formats = {
                **_HUNDREDTHS,
                Kind.MINUTES: "%.1f min",
                Kind.SCORE: "%.2f",
            }
            if kind is Kind.SECONDS:
                fmt = _seconds_format(series)
            else:
                fmt = formats.get(kind, "localized")
            config[column] = st.column_config.NumberColumn(label, format=fmt)
    return config


def draw(component: Component, df: pd.DataFrame, path: Path) -> None:
    """Put ``component`` (from the page file ``path``) on the page with its query's rows."""
    _require(df, component, path, *component.column_names())
    df = sorted_rows(df, component.listed("sort"))
    attrs = component.attrs
    if "rows" in attrs:
        df = df.head(int(attrs["rows"]))
    kind = component.kind
    height = int(attrs["height"]) if "height" in attrs else None
    tooltip = component.listed("tooltip")
    if kind == "BigValue":
        st.metric(component.title, **big_value(df, component), help=attrs.get("help"), border=True)
        return
    if kind == "DataTable":
        columns = component.listed("columns")
        shown = table_rows(df[columns] if columns else df)
        st.markdown(f"**{component.title}**")
        st.dataframe(
            shown,
            hide_index=True,
            column_config=_table_config(shown),
            height=height if height and len(shown) > 10 else "auto",
        )
        return
    chart: alt.TopLevelMixin
    if kind == "BarChart":
        chart = bar_chart(
            df,
            x=attrs["x"],
            y=attrs["y"],
            title=component.title,
            color=attrs.get("color"),
            horizontal=component.flag("horizontal"),
            labels=component.flag("labels", default=True),
            height=height,
            tooltip=tooltip,
            colors=color_map(component),
        )
    elif kind == "LineChart":
        chart = line_chart(
            df,
            x=attrs["x"],
            y=component.listed("y"),
            title=component.title,
            color=attrs.get("color"),
            height=height,
            tooltip=tooltip,
        )
    elif kind == "Heatmap":
        chart = heatmap(
            df,
            x=attrs["x"],
            y=attrs["y"],
            value=attrs["value"],
            title=component.title,
            height=height,
            tooltip=tooltip,
        )
    elif kind == "ScatterPlot":
        chart = scatter_plot(
            df,
            x=attrs["x"],
            y=attrs["y"],
            title=component.title,
            label=attrs.get("label"),
            color=attrs.get("color"),
            xline=_first_value(df, attrs.get("xline")),
            yline=_first_value(df, attrs.get("yline")),
            quadrants=quadrant_labels(component),
            height=height,
            tooltip=tooltip,
            colors=color_map(component),
        )
    else:  # pragma: no cover - the parser only lets known kinds through
        raise ValueError(f"cannot draw <{kind}>")
    st.altair_chart(chart, width="stretch")


def sorted_rows(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows sorted by ``sort=a,-b`` (``-``: descending); stable, so ties keep the query order."""
    if not keys:
        return df
    columns = [key.removeprefix("-") for key in keys]
    ascending = [not key.startswith("-") for key in keys]
    return df.sort_values(columns, ascending=ascending, kind="stable", na_position="last")


def _first_value(df: pd.DataFrame, column: str | None) -> float | None:
    """The split value a scatter plot's xline/yline column holds (its first non-null)."""
    if not column or not df[column].notna().any():
        return None
    return float(df[column].dropna().iloc[0])


def big_value(df: pd.DataFrame, component: Component) -> dict[str, str | None]:
    """A KPI tile's formatted value and delta, from the first row (``–`` when there is none)."""
    attrs = component.attrs
    row = df.iloc[0] if len(df) else None
    value = format_value(attrs["value"], None if row is None else row[attrs["value"]])
    delta = None
    if attrs.get("delta") and row is not None and not is_missing(row[attrs["delta"]]):
        delta = format_value(attrs["delta"], row[attrs["delta"]])
        if attrs.get("delta_title"):
            delta = f"{delta} {attrs['delta_title']}"
    return {"value": value, "delta": delta}
