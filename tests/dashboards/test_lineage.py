"""Reading the relations a query names, and walking a manifest: small inline cases."""

from __future__ import annotations

from typing import Any

from dashboards.lineage import (
    NOT_RUN,
    TableReference,
    build_lineage,
    guarding_tests,
    relation_index,
    resolve_relations,
    sql_tokens,
    table_references,
    walk_upstream,
)


def _tables(sql: str) -> list[str]:
    return [r.candidates[0] for r in table_references(sql) if r.after_from]


def test_table_references_skip_strings_comments_ctes_and_function_calls() -> None:
    sql = """
        with recent as (select * from marts.fct_survey_responses as f where f.channel = 'x')
        -- from marts.dim_date
        /* join marts.dim_flight */
        select count(*), main.list_contains([1], 1)
        from recent
        join "marts"."dim_airport" as a on a.iata = recent.origin_airport
        where recent.carrier_code <> 'raw.quarantine' and recent.batch_id <> $$staging.x$$
    """
    assert _tables(sql) == ["marts.fct_survey_responses", "marts.dim_airport"]
    names = {r.candidates[0] for r in table_references(sql)}
    assert "marts.dim_date" not in names  # in a comment
    assert "raw.quarantine" not in names  # in a string
    assert "main.list_contains" not in names  # a function call


def test_table_references_in_from_lists_subqueries_and_three_part_names() -> None:
    sql = (
        "select 1 from (select * from staging.stg_raw__survey_events) as s, "
        'warehouse.raw.load_audit, "contrail_meta".snapshot where s.x in '
        "(select y from raw.quarantine)"
    )
    references = [r for r in table_references(sql) if r.after_from]
    assert [r.parts for r in references] == [
        ("staging", "stg_raw__survey_events"),
        ("warehouse", "raw", "load_audit"),
        ("contrail_meta", "snapshot"),
        ("raw", "quarantine"),
    ]
    assert references[1].candidates == ("raw.load_audit", "warehouse.raw")
    assert not next(r for r in table_references(sql) if r.parts == ("s", "x")).after_from


def test_tokens_keep_escaped_quotes_inside_strings() -> None:
    tokens = [t for t in sql_tokens("select 'O''Hare', e'it\\'s', \"a\"\"b\" from t") if t.text]
    strings = [t.text for t in tokens if t.kind == "string"]
    assert strings == ["'O''Hare'", "e'it\\'s'"]
    assert [t.name for t in tokens if t.kind == "quoted"] == ['a"b']


def _manifest() -> dict[str, Any]:
    """raw.events (source) -> stg -> int <- seed; mart reads int; tests on several nodes."""

    def model(name: str, schema: str, parents: list[str]) -> dict[str, Any]:
        return {
            "resource_type": "model",
            "name": name,
            "schema": schema,
            "alias": name,
            "config": {"materialized": "view"},
            "original_file_path": f"models/{name}.sql",
            "description": f"{name} first paragraph.\n\nSecond paragraph.",
            "depends_on": {"nodes": parents},
        }

    def test(name: str, parents: list[str], generic: bool = True) -> dict[str, Any]:
        node: dict[str, Any] = {
            "resource_type": "test",
            "name": name,
            "depends_on": {"nodes": parents},
        }
        if generic:
            node["test_metadata"] = {"name": "not_null"}
            node["column_name"] = "id"
        return node

    return {
        "nodes": {
            "model.p.stg": model("stg", "staging", ["source.p.raw.events"]),
            "model.p.int": model("int", "intermediate", ["model.p.stg", "seed.p.codes"]),
            "model.p.mart": model("mart", "marts", ["model.p.int"]),
            "model.p.other": model("other", "marts", []),
            "seed.p.codes": {
                "resource_type": "seed",
                "name": "codes",
                "schema": "raw",
                "alias": "codes",
                "depends_on": {"nodes": []},
            },
            "test.p.not_null_mart_id": test("not_null_mart_id", ["model.p.mart"]),
            "test.p.assert_int_matches_mart": test(
                "assert_int_matches_mart", ["model.p.int", "model.p.mart"], generic=False
            ),
            "test.p.not_null_other_id": test("not_null_other_id", ["model.p.other"]),
        },
        "sources": {
            "source.p.raw.events": {
                "resource_type": "source",
                "name": "events",
                "schema": "raw",
                "identifier": "events",
            }
        },
        "unit_tests": {
            "unit_test.p.stg.test_stg": {
                "name": "test_stg",
                "depends_on": {"nodes": ["model.p.stg"]},
            }
        },
    }


def test_relation_index_and_resolution() -> None:
    index = relation_index(_manifest())
    assert index["marts.mart"] == "model.p.mart"
    assert index["raw.events"] == "source.p.raw.events"
    assert index["raw.codes"] == "seed.p.codes"
    references = (
        TableReference(("marts", "mart"), True),
        TableReference(("MARTS", "MART"), True),
        TableReference(("f", "id"), False),
        TableReference(("contrail_meta", "snapshot"), True),
    )
    assert resolve_relations(index, references) == (("model.p.mart",), ("contrail_meta.snapshot",))


def test_walk_upstream_reaches_sources_and_seeds_at_their_least_depth() -> None:
    nodes = walk_upstream(_manifest(), ["model.p.mart"])
    assert {n.unique_id: n.depth for n in nodes} == {
        "model.p.mart": 0,
        "model.p.int": 1,
        "model.p.stg": 2,
        "seed.p.codes": 2,
        "source.p.raw.events": 3,
    }
    mart = nodes[0]
    assert (mart.relation, mart.materialized, mart.description) == (
        "marts.mart",
        "view",
        "mart first paragraph.",
    )
    assert nodes[-1].resource_type == "source" and nodes[-1].materialized is None


def test_guarding_tests_take_status_from_run_results_and_marks_the_rest_not_run() -> None:
    run_results = {
        "results": [
            {"unique_id": "test.p.not_null_mart_id", "status": "pass", "built_at": "T1"},
            {"unique_id": "unit_test.p.stg.test_stg", "status": "fail", "failures": 1},
        ]
    }
    tests = {
        t.unique_id: t
        for t in guarding_tests(_manifest(), run_results, ["model.p.mart", "model.p.stg"])
    }
    assert set(tests) == {
        "test.p.not_null_mart_id",
        "test.p.assert_int_matches_mart",
        "unit_test.p.stg.test_stg",
    }
    assert (tests["test.p.not_null_mart_id"].status, tests["test.p.not_null_mart_id"].built_at) == (
        "pass",
        "T1",
    )
    assert tests["test.p.assert_int_matches_mart"].status == NOT_RUN
    assert tests["test.p.assert_int_matches_mart"].guards == ("model.p.mart",)
    assert tests["test.p.assert_int_matches_mart"].kind == "singular"
    assert (tests["unit_test.p.stg.test_stg"].kind, tests["unit_test.p.stg.test_stg"].failures) == (
        "unit",
        1,
    )


def test_build_lineage_from_sql() -> None:
    lineage = build_lineage(
        _manifest(), None, "select * from marts.mart m join contrail_meta.snapshot s on true"
    )
    assert lineage.read == ("model.p.mart",)
    assert lineage.unknown == ("contrail_meta.snapshot",)
    assert set(lineage.source_ids) == {"source.p.raw.events", "seed.p.codes"}
    assert [t.name for t in lineage.tests_on("model.p.int")] == ["assert_int_matches_mart"]
    assert lineage.tests[0].guards[0] == "model.p.mart"  # tests of the model read come first
    assert all(t.status == NOT_RUN for t in lineage.tests)
    assert "not_null_other_id" not in {t.name for t in lineage.tests}
