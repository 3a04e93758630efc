"""Every dashboard page is declared as a dbt exposure that lists exactly the models it reads.

The page files are read here with plain regular expressions (not the app's parser), so a page
added without an exposure, or a query that starts reading a new model, fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "dashboards" / "pages"
EXPOSURES = REPO / "dbt_project" / "models" / "marts" / "_marts__exposures.yml"
BASE_URL = "http://127.0.0.1:8501/"

SQL_BLOCK = re.compile(r"^```sql[ \t]+\w+[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
RELATION = re.compile(r"\b(?:from|join)\s+([a-z_]+)\.([a-z_0-9]+)", re.IGNORECASE)
ARTIFACT_RELATIONS = {"dbt_run_results", "dbt_source_freshness", "contrail_snapshot"}


def page_files() -> list[Path]:
    return sorted(PAGES.glob("*.md"))


def front_matter(path: Path) -> dict:
    text = path.read_text(encoding="utf-8")
    return yaml.safe_load(text.split("---", 2)[1])


def models_read(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {model for sql in SQL_BLOCK.findall(text) for _, model in RELATION.findall(sql)}


def schemas_read(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {schema for sql in SQL_BLOCK.findall(text) for schema, _ in RELATION.findall(sql)}


def exposures() -> dict[str, dict]:
    document = yaml.safe_load(EXPOSURES.read_text(encoding="utf-8"))
    return {exposure["name"]: exposure for exposure in document["exposures"]}


def expected_name(path: Path) -> str:
    url_path = front_matter(path).get("url_path", path.stem)
    return "dashboard_" + url_path.replace("-", "_")


def test_there_are_seven_pages() -> None:
    assert len(page_files()) == 7


def test_every_page_has_an_exposure_and_every_exposure_a_page() -> None:
    assert {expected_name(path) for path in page_files()} == set(exposures())


def test_each_exposure_points_at_its_page_and_lists_the_models_it_reads() -> None:
    declared = exposures()
    for path in page_files():
        exposure = declared[expected_name(path)]
        url_path = front_matter(path).get("url_path", path.stem)
        assert exposure["type"] == "dashboard", path.name
        assert exposure["url"] == BASE_URL + url_path, path.name
        refs = {re.fullmatch(r"ref\('(\w+)'\)", item).group(1) for item in exposure["depends_on"]}
        assert refs == models_read(path), path.name
        assert refs, f"{path.name} reads no model"


def test_pages_read_only_the_marts() -> None:
    """Raw, staging and intermediate relations scan unaggregated rows: too slow at 1M surveys."""
    for path in page_files():
        assert schemas_read(path) <= {"marts"}, path.name
        text = path.read_text(encoding="utf-8")
        for sql in SQL_BLOCK.findall(text):
            assert not re.search(r"\b(raw|staging|intermediate)\.", sql), path.name
