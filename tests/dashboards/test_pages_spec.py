"""The page parser and query compiler: named blocks, references, parameters, clear errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from dashboards.filters import Filters
from dashboards.pages_spec import Grid, Markdown, PageError, load_pages, parse_page
from dashboards.queries import compile_query

PAGE = Path("dashboards/pages/example.md")


def page_text(body: str, front: str = "title: Example") -> str:
    return f"---\n{front}\n---\n{body}"


def parse(body: str, front: str = "title: Example"):
    return parse_page(PAGE, page_text(body, front))


def error_of(body: str, front: str = "title: Example") -> PageError:
    with pytest.raises(PageError) as caught:
        parse(body, front)
    return caught.value


def test_named_blocks_components_and_markdown_in_file_order() -> None:
    page = parse(
        "Intro text.\n"
        "\n"
        "```sql totals\n"
        "select count(*) as responses from marts.fct_survey_responses\n"
        "```\n"
        '<BigValue data=totals value=responses title="All responses" />\n'
        "```text\n"
        "not a query\n"
        "```\n",
        front="title: Example\norder: 3\nurl_path: my-page\nrefresh_seconds: 5",
    )
    assert (page.title, page.order, page.url_path, page.refresh_seconds) == (
        "Example",
        3,
        "my-page",
        5.0,
    )
    assert list(page.queries) == ["totals"]
    assert page.queries["totals"].sql == (
        "select count(*) as responses from marts.fct_survey_responses"
    )
    assert page.queries["totals"].line == 9  # the fence line, counting the front matter
    kinds = [type(block).__name__ for block in page.blocks]
    assert kinds == ["Markdown", "Component", "Markdown"]
    component = page.blocks[1]
    assert component.kind == "BigValue"
    assert dict(component.attrs) == {
        "data": "totals",
        "value": "responses",
        "title": "All responses",
    }
    assert component.line == 12
    assert "not a query" in page.blocks[2].text


def test_tag_over_several_lines_and_grid() -> None:
    page = parse(
        "```sql q\nselect 1 as a, 2 as b\n```\n"
        "<Grid cols=2>\n"
        "<BigValue data=q value=a\n"
        '   title="A" />\n'
        "Some words\n"
        "<BigValue data=q value=b title=B />\n"
        "</Grid>\n"
    )
    grid = page.blocks[0]
    assert isinstance(grid, Grid) and grid.cols == 2
    assert [type(child).__name__ for child in grid.children] == [
        "Component",
        "Markdown",
        "Component",
    ]
    assert grid.children[0].attrs["title"] == "A"
    assert isinstance(grid.children[1], Markdown)


def test_references_between_queries_are_inlined_recursively() -> None:
    page = parse(
        "```sql base\nselect survey_id from marts.fct_survey_responses where {{ filters }}\n```\n"
        "```sql middle\nselect * from ${base} as b\n```\n"
        "```sql top\nselect count(*) as n from ${middle} as m\n```\n"
        "<BigValue data=top value=n title=N />\n"
    )
    query = compile_query(page, "top", Filters())
    assert "${" not in query.sql
    assert query.sql.startswith("select count(*) as n from (")
    assert query.sql.count("marts.fct_survey_responses") == 1
    assert "where true" in query.sql
    assert query.params == {}


def test_filters_and_inputs_become_bound_parameters_only() -> None:
    page = parse(
        "<TextInput name=lookup label=Lookup />\n"
        "```sql q\n"
        "select s.survey_id from marts.fct_survey_responses as s\n"
        'where {{ filters("s") }} and s.flight_id = $input_lookup\n'
        "```\n"
        "<DataTable data=q title=T />\n"
    )
    filters = Filters(
        date_from=date(2026, 1, 2),
        travel_classes=("business", "eco"),
        airports=("O'Hare",),
    )
    query = compile_query(page, "q", filters, {"lookup": "x' or '1'='1"})
    # values never reach the SQL text
    assert "O'Hare" not in query.sql and "business" not in query.sql and "1'='1" not in query.sql
    assert "s.survey_date >= $filter_date_from" in query.sql
    assert "list_contains($filter_travel_classes, s.travel_class)" in query.sql
    assert query.params == {
        "filter_date_from": date(2026, 1, 2),
        "filter_travel_classes": ["business", "eco"],
        "filter_airports": ["O'Hare"],
        "input_lookup": "x' or '1'='1",
    }


def test_load_pages_orders_by_front_matter_and_keeps_going_past_a_broken_page(
    tmp_path: Path,
) -> None:
    (tmp_path / "b.md").write_text(page_text("", "title: Second\norder: 2"))
    (tmp_path / "a.md").write_text(page_text("", "title: First\norder: 1"))
    (tmp_path / "c.md").write_text(page_text("<Nope />\n", "title: Broken"))
    pages, errors = load_pages(tmp_path)
    assert [page.title for page in pages] == ["First", "Second"]
    assert len(errors) == 1
    assert str(errors[0]).startswith(f"{tmp_path / 'c.md'}:4: unknown component <Nope>")


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("\n\n<BarChrt data=q x=a y=b title=T />\n", 6, "unknown component <BarChrt>"),
        (
            "```sql q\nselect 1 as a\n```\n<BarChart data=q x=a title=T />\n",
            7,
            "<BarChart> needs y",
        ),
        (
            "```sql q\nselect 1 as a\n```\n<BigValue data=q value=a title=T colour=red />\n",
            7,
            "<BigValue> has no attribute colour",
        ),
        ("<BigValue data=missing value=a title=T />\n", 4, "data=missing is not a query"),
        (
            "```sql q\nselect 1 as a\n```\n<DataTable data=q title=T rows=ten />\n",
            7,
            "rows must be a whole number",
        ),
        ("```sql q\nselect 1\n", 4, "sql block 'q' is not closed"),
        ("```sql\nselect 1\n```\n", 4, "a sql block needs a name"),
        (
            "```sql q\nselect 1\n```\n```sql q\nselect 2\n```\n",
            7,
            "query 'q' is already defined at line 4",
        ),
        ("```sql q\nselect 1\nfrom ${nowhere} as n\n```\n", 6, "references ${nowhere}"),
        (
            "```sql a\nselect * from ${b} as x\n```\n```sql b\nselect * from ${a} as y\n```\n",
            4,
            "queries reference each other: a -> b -> a",
        ),
        ("```sql q\nselect {{ secret }}\n```\n", 5, "unknown placeholder '{{ secret }}'"),
        ("```sql q\nselect $input_who\n```\n", 5, "has no input name=who"),
        (
            "```sql q\nselect $input_who as w\n```\n<BigValue data=q value=w title=T />\n"
            "<TextInput name=who label=Who />\n",
            7,
            "declare that input above the component",
        ),
        ("<Grid cols=2>\n<BigValue data=q value=a title=T />\n", 4, "<Grid> is not closed"),
        ("<BarChart data=q x=a y=b title=T>\n", 4, "<BarChart> must close itself"),
        ("<BarChart data=q x=a\n y=b title=T\n", 4, "component tag is not closed"),
        (
            "```sql q\nselect 1 as a\n```\n"
            '<ScatterPlot data=q x=a y=a title=T quadrants="a|b" />\n',
            7,
            "quadrants needs four labels",
        ),
        (
            "```sql q\nselect 1 as a\n```\n<BigValue data=q value=a title=T when=who />\n",
            7,
            "when='who' names no input of this page",
        ),
    ],
)
def test_mistakes_name_the_file_and_line(body: str, line: int, message: str) -> None:
    error = error_of(body)
    assert str(error).startswith(f"{PAGE}:{line}: "), str(error)
    assert message in str(error)
    assert (error.path, error.line) == (PAGE, line)


@pytest.mark.parametrize(
    ("front", "message"),
    [
        ("order: 1", "front matter needs a title"),
        ("title: T\nurl_path: Has Spaces", "url_path 'Has Spaces' must be lowercase"),
        ("title: T\ncolour: red", "unknown front matter key(s): colour"),
        ("title: [unclosed", "front matter is not valid YAML"),
    ],
)
def test_front_matter_mistakes(front: str, message: str) -> None:
    error = error_of("", front)
    assert str(error).startswith(f"{PAGE}:2: ")
    assert message in str(error)


def test_a_page_without_front_matter_is_refused() -> None:
    with pytest.raises(PageError, match=r"example\.md:1: a page starts with front matter"):
        parse_page(PAGE, "# Just markdown\n")


def test_the_shipped_pages_all_parse() -> None:
    pages, errors = load_pages(Path(__file__).resolve().parents[2] / "dashboards" / "pages")
    assert errors == []
    assert [page.url_path for page in pages] == [
        "overview",
        "service-drivers",
        "delays",
        "routes",
        "flight-lookup",
        "live",
        "pipeline-health",
    ]
