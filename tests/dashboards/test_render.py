"""What the renderer runs for a page: input defaults and the queries a page issues."""

from __future__ import annotations

from pathlib import Path

from dashboards.filters import Filters
from dashboards.pages_spec import parse_page
from dashboards.render import input_default, page_queries

PAGE = Path("dashboards/pages/example.md")

BODY = """---
title: Example
---
<TextInput name=lookup label="Id" />
<NumberInput name=minimum label="Minimum" default=30 min=1 />
<Select name=segment label="Segment" options="travel_class:Class,age_band:Age band" />

```sql everything
select count(*) as responses from marts.fct_survey_responses where {{ filters }}
```

```sql found
select survey_id from marts.fct_survey_responses where survey_id = $input_lookup
```

```sql ranked
select count(*) as n from marts.fct_survey_responses having count(*) >= $input_minimum
```

<BigValue data=everything value=responses title="Responses" />
<DataTable data=found title="Found" when=lookup />
<BigValue data=ranked value=n title="Ranked" />
"""


def test_inputs_start_at_their_declared_defaults() -> None:
    page = parse_page(PAGE, BODY)
    defaults = {name: input_default(component) for name, component in page.inputs.items()}
    assert defaults == {"lookup": "", "minimum": 30, "segment": "travel_class"}
    assert isinstance(defaults["minimum"], int)


def test_a_component_waiting_for_its_input_runs_no_query() -> None:
    page = parse_page(PAGE, BODY)

    before = page_queries(page, Filters())
    assert [query.name for query in before] == ["everything", "ranked"]
    assert before[1].params == {"input_minimum": 30}

    after = page_queries(page, Filters(travel_classes=("eco",)), {"lookup": "SRV-1"})
    assert [query.name for query in after] == ["everything", "found", "ranked"]
    assert after[0].params == {"filter_travel_classes": ["eco"]}
    assert after[1].params == {"input_lookup": "SRV-1"}
