"""The architecture document states the raw-table contract; it must match the code."""

from __future__ import annotations

import re

from ingestion.config import REPO_ROOT
from ingestion.schema import RAW_TABLES


def test_architecture_lists_every_raw_column_with_its_type() -> None:
    text = (REPO_ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    for table in RAW_TABLES:
        heading = f"### `raw.{table.name}`"
        assert heading in text, f"docs/architecture.md has no section {heading}"
        section = text.split(heading, 1)[1].split("###", 1)[0]
        documented = re.findall(r"^\| `(\w+)` \| ([\w ]+) \|$", section, flags=re.MULTILINE)
        assert documented == list(table.columns), f"{heading} differs from ingestion/schema.py"
