"""Parse a dashboard page: a Markdown file with front matter, named SQL blocks and components.

A page is data, not Python, so a new page is a new file. The format (``dashboards/README.md``
has the full reference):

- YAML front matter between ``---`` lines: ``title`` (required), ``order``, ``url_path``,
  ``refresh_seconds``;
- fenced ```` ```sql name ```` blocks define named queries; ``${other}`` in a query inlines the
  query ``other`` as a subquery, ``{{ filters }}`` / ``{{ filters("alias") }}`` stands for the
  global filters' predicate, ``$input_<name>`` for the value of a page input;
- component tags on their own lines, ``<BarChart data=by_class x=segment y=rate title="…" />``,
  possibly over several lines; ``<Grid cols=2>`` … ``</Grid>`` lays components side by side;
- everything else is Markdown, shown as written.

Every mistake is reported as ``PageError`` naming the file and line, so a broken page says where
it is broken instead of failing somewhere in the renderer.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml

from ingestion.errors import ContrailError

QUERY_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
REFERENCE = re.compile(r"\$\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
FILTERS = re.compile(r"\{\{\s*filters\s*(?:\(\s*(?:\"(\w+)\"|'(\w+)')\s*\))?\s*\}\}")
TEMPLATE = re.compile(r"\{\{.*?\}\}", re.DOTALL)
INPUT_PARAM = re.compile(r"\$(input_[A-Za-z0-9_]+)")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\S*)\s*(.*?)\s*$")
TAG_START = re.compile(r"^<([A-Z][A-Za-z]*)\b")
CLOSE_TAG = re.compile(r"^</([A-Z][A-Za-z]*)>\s*$")


class PageError(ContrailError):
    """A page file that cannot be rendered, with the file and line at fault."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class ComponentSpec:
    """What a component accepts. ``data`` is required wherever ``needs_data`` is set."""

    required: frozenset[str]
    optional: frozenset[str]
    needs_data: bool = True
    is_input: bool = False
    columns: tuple[str, ...] = ()  # attributes naming one column of the data


def _spec(
    required: str,
    optional: str = "",
    *,
    needs_data: bool = True,
    is_input: bool = False,
    columns: str = "",
) -> ComponentSpec:
    common = "title empty caption when" if needs_data else ""
    return ComponentSpec(
        required=frozenset(required.split()) | ({"data"} if needs_data else set()),
        optional=frozenset(optional.split()) | frozenset(common.split()),
        needs_data=needs_data,
        is_input=is_input,
        columns=tuple(columns.split()),
    )


COMPONENTS: dict[str, ComponentSpec] = {
    "BigValue": _spec("value title", "delta delta_title help", columns="value delta"),
    "BarChart": _spec(
        "x y title",
        "color colors horizontal labels height tooltip sort rows",
        columns="x y color",
    ),
    "LineChart": _spec("x y title", "color height tooltip", columns="x color"),  # y: a list
    "Heatmap": _spec("x y value title", "height tooltip", columns="x y value"),
    "ScatterPlot": _spec(
        "x y title",
        "label color colors xline yline quadrants height tooltip",
        columns="x y label color xline yline",
    ),
    "DataTable": _spec("title", "rows columns height sort"),
    "TextInput": _spec("name label", "default placeholder help", needs_data=False, is_input=True),
    "NumberInput": _spec(
        "name label", "default min max step help", needs_data=False, is_input=True
    ),
    "Select": _spec("name label options", "default help", needs_data=False, is_input=True),
}
CONTAINERS = {"Grid"}
BOOLEAN_ATTRIBUTES = {"horizontal", "labels"}
WHOLE_NUMBER_ATTRIBUTES = {"height", "rows"}


@dataclass(frozen=True)
class Query:
    name: str
    sql: str
    line: int


@dataclass(frozen=True)
class Markdown:
    text: str
    line: int


@dataclass(frozen=True)
class Component:
    kind: str
    attrs: Mapping[str, str]
    line: int

    @property
    def title(self) -> str:
        return self.attrs.get("title", "")

    @property
    def data(self) -> str | None:
        return self.attrs.get("data")

    def listed(self, name: str) -> list[str]:
        """A comma-separated attribute as a list (``y=a,b`` -> ``["a", "b"]``)."""
        return [item.strip() for item in self.attrs.get(name, "").split(",") if item.strip()]

    def column_names(self) -> list[str]:
        """Every column of its query this component names (to check they exist)."""
        names = [self.attrs[a] for a in COMPONENTS[self.kind].columns if a in self.attrs]
        if self.kind == "LineChart":
            names += self.listed("y")
        names += [column.removeprefix("-") for column in self.listed("sort")]
        return names + self.listed("tooltip") + self.listed("columns")

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean attribute: bare (``horizontal``) or ``horizontal=true|false``."""
        value = self.attrs.get(name)
        if value is None:
            return default
        return value.lower() in ("", "true", "yes", "1")


@dataclass(frozen=True)
class Grid:
    cols: int
    children: tuple[Markdown | Component, ...]
    line: int


Block = Markdown | Component | Grid


@dataclass(frozen=True)
class Page:
    path: Path
    title: str
    url_path: str
    order: int
    refresh_seconds: float | None
    queries: Mapping[str, Query]
    blocks: tuple[Block, ...]
    inputs: Mapping[str, Component] = field(default_factory=dict)

    @property
    def exposure_name(self) -> str:
        """The dbt exposure that declares this page (see ``_marts__exposures.yml``)."""
        return "dashboard_" + self.url_path.replace("-", "_")

    def components(self) -> list[Component]:
        """Every component in page order, grids flattened."""
        found: list[Component] = []
        for block in self.blocks:
            children = block.children if isinstance(block, Grid) else (block,)
            found.extend(child for child in children if isinstance(child, Component))
        return found


def parse_attributes(text: str, path: Path, line: int) -> dict[str, str]:
    """``a=b c="d e" f`` -> ``{"a": "b", "c": "d e", "f": ""}``."""
    try:
        tokens = shlex.split(text, posix=True)
    except ValueError as error:
        raise PageError(path, line, f"cannot read the attributes ({error})") from None
    attrs: dict[str, str] = {}
    for token in tokens:
        name, _, value = token.partition("=")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise PageError(path, line, f"bad attribute {token!r}; write name=value")
        if name in attrs:
            raise PageError(path, line, f"attribute {name!r} is given twice")
        attrs[name] = value
    return attrs


def _front_matter(path: Path, lines: list[str]) -> tuple[dict[str, object], int]:
    """The front matter and the index of the first body line."""
    if not lines or lines[0].strip() != "---":
        raise PageError(path, 1, "a page starts with front matter: ---, title: …, ---")
    for index in range(1, len(lines)):
        if lines[index].strip() == "---":
            try:
                meta = yaml.safe_load("\n".join(lines[1:index])) or {}
            except yaml.YAMLError as error:
                raise PageError(path, 2, f"front matter is not valid YAML ({error})") from None
            if not isinstance(meta, dict):
                raise PageError(path, 2, "front matter must be a mapping (title: …)")
            return meta, index + 1
    raise PageError(path, 1, "front matter is not closed with ---")


class _Reader:
    """Walks the body lines, producing blocks and queries."""

    def __init__(self, path: Path, lines: list[str], start: int) -> None:
        self.path = path
        self.lines = lines
        self.index = start
        self.queries: dict[str, Query] = {}

    def error(self, line: int, message: str) -> PageError:
        return PageError(self.path, line, message)

    def read_blocks(self, closing: str | None = None, opened_at: int = 0) -> list[Block]:
        blocks: list[Block] = []
        prose: list[str] = []
        prose_line = 0

        def flush() -> None:
            nonlocal prose
            text = "\n".join(prose).strip("\n")
            if text.strip():
                blocks.append(Markdown(text, prose_line))
            prose = []

        while self.index < len(self.lines):
            raw = self.lines[self.index]
            stripped = raw.strip()
            line_no = self.index + 1
            fence = FENCE.match(stripped)
            close = CLOSE_TAG.match(stripped)
            if fence and fence.group(2).lower() == "sql":
                flush()
                self.read_query(fence, line_no)
                continue
            if fence:
                # another fenced block (e.g. ```text): Markdown, copied verbatim
                if not prose:
                    prose_line = line_no
                prose.extend(self.read_fenced_text(fence.group(1), line_no))
                continue
            if close:
                if close.group(1) != closing:
                    raise self.error(line_no, f"</{close.group(1)}> closes nothing")
                flush()
                self.index += 1
                return blocks
            if TAG_START.match(stripped):
                flush()
                blocks.append(self.read_tag(line_no, inside_grid=closing is not None))
                continue
            if not prose:
                prose_line = line_no
            prose.append(raw)
            self.index += 1
        if closing is not None:
            raise self.error(opened_at, f"<{closing}> is not closed with </{closing}>")
        flush()
        return blocks

    def read_fenced_text(self, fence: str, line_no: int) -> list[str]:
        collected = [self.lines[self.index]]
        self.index += 1
        while self.index < len(self.lines):
            collected.append(self.lines[self.index])
            self.index += 1
            if self.lines[self.index - 1].strip().startswith(fence):
                return collected
        raise self.error(line_no, f"code block is not closed with {fence}")

    def read_query(self, fence: re.Match[str], line_no: int) -> None:
        name = fence.group(3)
        if not name:
            raise self.error(line_no, "a sql block needs a name: ```sql my_query")
        if not QUERY_NAME.match(name):
            raise self.error(
                line_no, f"query name {name!r} must be lowercase letters, digits and _"
            )
        if name in self.queries:
            first = self.queries[name].line
            raise self.error(line_no, f"query {name!r} is already defined at line {first}")
        body: list[str] = []
        self.index += 1
        while self.index < len(self.lines):
            text = self.lines[self.index]
            self.index += 1
            if text.strip().startswith(fence.group(1)) and text.strip().strip("`~") == "":
                sql = "\n".join(body).strip()
                if not sql:
                    raise self.error(line_no, f"query {name!r} is empty")
                self.queries[name] = Query(name, sql, line_no)
                return
            body.append(text)
        raise self.error(line_no, f"sql block {name!r} is not closed with {fence.group(1)}")

    def read_tag(self, line_no: int, inside_grid: bool) -> Block:
        text = self.lines[self.index].strip()
        while not text.rstrip().endswith(">"):
            self.index += 1
            if self.index >= len(self.lines):
                raise self.error(line_no, "component tag is not closed with /> or >")
            text += " " + self.lines[self.index].strip()
        self.index += 1
        match = re.fullmatch(r"<([A-Z][A-Za-z]*)(.*?)(/?)>", text, re.DOTALL)
        if match is None:
            raise self.error(line_no, f"cannot read the tag {text!r}")
        kind, body, self_closing = match.group(1), match.group(2), match.group(3)
        attrs = parse_attributes(body, self.path, line_no)
        if kind in CONTAINERS:
            if self_closing:
                raise self.error(line_no, f"<{kind}> holds components: close it with </{kind}>")
            if inside_grid:
                raise self.error(line_no, "a <Grid> cannot sit inside another <Grid>")
            return self.read_grid(attrs, line_no)
        spec = COMPONENTS.get(kind)
        if spec is None:
            known = ", ".join(sorted([*COMPONENTS, *CONTAINERS]))
            raise self.error(line_no, f"unknown component <{kind}>; known components: {known}")
        if not self_closing:
            raise self.error(line_no, f"<{kind}> must close itself: <{kind} … />")
        missing = sorted(spec.required - attrs.keys())
        if missing:
            raise self.error(line_no, f"<{kind}> needs {', '.join(missing)}")
        unknown = sorted(attrs.keys() - spec.required - spec.optional)
        if unknown:
            allowed = ", ".join(sorted(spec.required | spec.optional))
            raise self.error(
                line_no, f"<{kind}> has no attribute {', '.join(unknown)}; it takes {allowed}"
            )
        for name, value in attrs.items():
            if value == "" and name not in BOOLEAN_ATTRIBUTES:
                raise self.error(line_no, f"<{kind}> attribute {name!r} needs a value")
            if name in WHOLE_NUMBER_ATTRIBUTES and not value.isdigit():
                raise self.error(line_no, f"<{kind}> {name} must be a whole number, not {value!r}")
        component = Component(kind, attrs, line_no)
        if "quadrants" in attrs and quadrant_labels(component) is None:
            raise self.error(
                line_no,
                "<ScatterPlot> quadrants needs four labels separated by |: "
                "top-left|top-right|bottom-left|bottom-right",
            )
        return component

    def read_grid(self, attrs: dict[str, str], line_no: int) -> Grid:
        unknown = sorted(attrs.keys() - {"cols"})
        if unknown:
            raise self.error(line_no, f"<Grid> has no attribute {', '.join(unknown)}; use cols=N")
        try:
            cols = int(attrs.get("cols", "2"))
        except ValueError:
            raise self.error(line_no, "<Grid> cols must be a whole number") from None
        if not 1 <= cols <= 6:
            raise self.error(line_no, "<Grid> cols must be between 1 and 6")
        children = self.read_blocks(closing="Grid", opened_at=line_no)
        return Grid(cols, tuple(c for c in children if not isinstance(c, Grid)), line_no)


def _query_line(query: Query, offset: int) -> int:
    """The file line of a character offset inside a query's SQL (the fence is query.line)."""
    return query.line + 1 + query.sql[:offset].count("\n")


def _check_queries(path: Path, queries: Mapping[str, Query], inputs: Mapping[str, int]) -> None:
    """References exist and form no cycle; templates are known; inputs are declared."""
    for query in queries.values():
        for match in TEMPLATE.finditer(query.sql):
            if not FILTERS.fullmatch(match.group(0)):
                raise PageError(
                    path,
                    _query_line(query, match.start()),
                    f"query {query.name!r}: unknown placeholder {match.group(0)!r}; "
                    'use {{ filters }} or {{ filters("alias") }}',
                )
        for match in REFERENCE.finditer(query.sql):
            if match.group(1) not in queries:
                raise PageError(
                    path,
                    _query_line(query, match.start()),
                    f"query {query.name!r} references ${{{match.group(1)}}}, "
                    "which is not a query on this page",
                )
        for match in INPUT_PARAM.finditer(query.sql):
            name = match.group(1).removeprefix("input_")
            if name not in inputs:
                raise PageError(
                    path,
                    _query_line(query, match.start()),
                    f"query {query.name!r} uses ${match.group(1)}, but the page has no input "
                    f"name={name} (add <TextInput name={name} … />)",
                )

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in trail:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise PageError(path, queries[name].line, f"queries reference each other: {cycle}")
        for match in REFERENCE.finditer(queries[name].sql):
            visit(match.group(1), (*trail, name))

    for name in queries:
        visit(name, ())


def _check_components(path: Path, page_blocks: list[Block], queries: Mapping[str, Query]) -> None:
    declared: dict[str, int] = {}
    for block in page_blocks:
        children = block.children if isinstance(block, Grid) else (block,)
        for child in children:
            if not isinstance(child, Component):
                continue
            spec = COMPONENTS[child.kind]
            if spec.is_input:
                declared[child.attrs["name"]] = child.line
                continue
            if child.data not in queries:
                raise PageError(
                    path,
                    child.line,
                    f"<{child.kind}> data={child.data} is not a query on this page "
                    f"(queries: {', '.join(sorted(queries)) or 'none'})",
                )
            for match in INPUT_PARAM.finditer(_expanded(queries, child.data)):
                name = match.group(1).removeprefix("input_")
                if declared.get(name, child.line + 1) > child.line:
                    raise PageError(
                        path,
                        child.line,
                        f"<{child.kind}> reads query {child.data!r}, which uses "
                        f"${match.group(1)}; declare that input above the component",
                    )


def _expanded(queries: Mapping[str, Query], name: str) -> str:
    """The query's SQL with its references inlined (for static checks; cycles checked before)."""
    return REFERENCE.sub(lambda m: _expanded(queries, m.group(1)), queries[name].sql)


def _check_inputs(path: Path, components: list[Component]) -> dict[str, Component]:
    inputs: dict[str, Component] = {}
    for component in components:
        if not COMPONENTS[component.kind].is_input:
            continue
        name = component.attrs["name"]
        if not QUERY_NAME.match(name):
            raise PageError(path, component.line, f"input name {name!r} must be like my_input")
        if name in inputs:
            raise PageError(
                path,
                component.line,
                f"input {name!r} is already declared at line {inputs[name].line}",
            )
        if component.kind == "Select":
            values = [value for value, _ in select_options(component)]
            if not values:
                raise PageError(path, component.line, '<Select> needs options="a,b"')
            if component.attrs.get("default", values[0]) not in values:
                raise PageError(
                    path, component.line, f"<Select> default must be one of {', '.join(values)}"
                )
        for number in ("default", "min", "max", "step"):
            if component.kind == "NumberInput" and number in component.attrs:
                try:
                    float(component.attrs[number])
                except ValueError:
                    raise PageError(
                        path, component.line, f"<NumberInput> {number} must be a number"
                    ) from None
        inputs[name] = component
    return inputs


def quadrant_labels(component: Component) -> list[str] | None:
    """The four quadrant labels (top-left, top-right, bottom-left, bottom-right), if valid."""
    if "quadrants" not in component.attrs:
        return None
    labels = [label.strip() for label in component.attrs["quadrants"].split("|")]
    return labels if len(labels) == 4 and all(labels) else None


def color_map(component: Component) -> dict[str, str]:
    """``colors="Fix first:#d62728,Keep up:#2ca02c"`` -> {value: colour}; {} when not given."""
    mapping: dict[str, str] = {}
    for item in component.listed("colors"):
        value, _, colour = item.rpartition(":")
        if value and colour:
            mapping[value.strip()] = colour.strip()
    return mapping


def select_options(component: Component) -> list[tuple[str, str]]:
    """``options="business:Business travel,personal"`` -> [(value, label), …]."""
    options: list[tuple[str, str]] = []
    for item in component.attrs.get("options", "").split(","):
        value, _, label = item.strip().partition(":")
        if value:
            options.append((value, label.strip() or value))
    return options


def parse_page(path: Path, text: str | None = None) -> Page:
    """Read one page file. Raises PageError naming the file and line of the first mistake."""
    if text is None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise PageError(path, 1, f"cannot read the page ({error})") from None
    lines = text.splitlines()
    meta, start = _front_matter(path, lines)
    unknown = sorted(set(meta) - {"title", "order", "url_path", "refresh_seconds"})
    if unknown:
        raise PageError(path, 2, f"unknown front matter key(s): {', '.join(unknown)}")
    title = meta.get("title")
    if not isinstance(title, str) or not title.strip():
        raise PageError(path, 2, "front matter needs a title: …")
    url_path = str(meta.get("url_path", path.stem))
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", url_path):
        raise PageError(path, 2, f"url_path {url_path!r} must be lowercase letters, digits and -")
    try:
        order = int(meta.get("order", 100))  # type: ignore[call-overload]
        refresh = meta.get("refresh_seconds")
        refresh_seconds = float(refresh) if refresh is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PageError(path, 2, "order and refresh_seconds must be numbers") from None
    if refresh_seconds is not None and refresh_seconds <= 0:
        raise PageError(path, 2, "refresh_seconds must be positive")

    reader = _Reader(path, lines, start)
    blocks = reader.read_blocks()
    page = Page(
        path=path,
        title=title.strip(),
        url_path=url_path,
        order=order,
        refresh_seconds=refresh_seconds,
        queries=reader.queries,
        blocks=tuple(blocks),
    )
    inputs = _check_inputs(path, page.components())
    _check_queries(path, reader.queries, {name: c.line for name, c in inputs.items()})
    for component in page.components():
        when = component.attrs.get("when")
        if when is not None and when not in inputs:
            raise PageError(
                path,
                component.line,
                f"<{component.kind}> when={when!r} names no input of this page "
                f"(inputs: {', '.join(sorted(inputs)) or 'none'})",
            )
    _check_components(path, blocks, reader.queries)
    return replace(page, inputs=inputs)


def load_pages(folder: Path) -> tuple[list[Page], list[PageError]]:
    """Every ``*.md`` page in ``folder`` in menu order, and the errors of those that failed.

    A broken page does not take the others down: the app lists its error instead.
    """
    pages: list[Page] = []
    errors: list[PageError] = []
    for path in sorted(folder.glob("*.md")):
        try:
            pages.append(parse_page(path))
        except PageError as error:
            errors.append(error)
    seen: dict[str, Path] = {}
    for page in list(pages):
        if page.url_path in seen:
            errors.append(
                PageError(
                    page.path,
                    2,
                    f"url_path {page.url_path!r} is also used by {seen[page.url_path].name}",
                )
            )
            pages.remove(page)
        else:
            seen[page.url_path] = page.path
    pages.sort(key=lambda page: (page.order, page.title))
    return pages, errors
