"""Which dbt models a query reads, what they are built from, and the tests that guard them.

The trail behind every dashboard number answers "where does this come from?" from the dbt
artifacts published with the snapshot (``manifest.json``, ``run_results.json``), never from the
project files in the checkout, which may have moved on since the snapshot was built.

- The relations a query reads are the dotted names in its text (outside strings, quoted
  literals and comments) that match a model, seed, snapshot or source of the manifest by
  schema and relation name (``marts.fct_survey_responses``). Reading the text needs no
  database connection, which costs more than the rest of a trail. ``depends_on.nodes`` is
  then walked up to the sources and seeds.
- The tests are the manifest's data tests and unit tests that depend on any node in that
  lineage, each with its status from the (merged) ``run_results.json``; a test without a result
  is "not run".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# Manifest nodes that are relations a query can read.
_RELATION_TYPES = ("model", "seed", "snapshot")
NOT_RUN = "not run"


@dataclass(frozen=True)
class LineageNode:
    """One model, seed or source in a query's lineage."""

    unique_id: str  # e.g. model.contrail.fct_survey_responses, source.contrail.raw.survey_responses
    resource_type: str  # model, seed, snapshot or source
    name: str
    relation: str  # schema.identifier, as a query names it
    materialized: str | None  # table, view, incremental, ...; None for sources
    path: str | None  # the file that defines it, relative to the project
    description: str  # its first paragraph
    parents: tuple[str, ...]  # unique ids it is built from (depends_on.nodes)
    depth: int  # 0 for a relation the query reads, 1 for its parents, ...


@dataclass(frozen=True)
class DbtTest:
    """A data test or unit test on a node of the lineage, with the status of its last run."""

    unique_id: str
    name: str
    kind: str  # generic, singular or unit
    guards: tuple[str, ...]  # unique ids of the lineage nodes it depends on
    column: str | None
    status: str  # pass, fail, warn, error, skipped, ... or "not run"
    built_at: str | None  # when the build that ran it finished (run_results' built_at)
    failures: int | None
    message: str | None


@dataclass(frozen=True)
class Lineage:
    """The models a query reads, their upstream back to sources and seeds, and their tests."""

    read: tuple[str, ...]  # unique ids of the relations the query reads
    unknown: tuple[str, ...]  # schema.table names read that the manifest does not define
    nodes: tuple[LineageNode, ...]  # read nodes first, then upstream, nearest first
    tests: tuple[DbtTest, ...]

    def node(self, unique_id: str) -> LineageNode | None:
        return next((n for n in self.nodes if n.unique_id == unique_id), None)

    def tests_on(self, unique_id: str) -> tuple[DbtTest, ...]:
        """The tests that depend on one node of the lineage."""
        return tuple(t for t in self.tests if unique_id in t.guards)

    @property
    def source_ids(self) -> tuple[str, ...]:
        return tuple(n.unique_id for n in self.nodes if n.resource_type in ("source", "seed"))


_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
    | (?P<string>[eE]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?)
    | (?P<dollar>\$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<quoted>"(?:[^"]|"")*"?)
    | (?P<param>\$(?:[A-Za-z_]\w*|\d+))
    | (?P<word>[A-Za-z_]\w*)
    | (?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)
    | (?P<space>\s+)
    | (?P<symbol>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_NAME_KINDS = ("word", "quoted")


@dataclass(frozen=True)
class Token:
    """One lexical token of a SQL text; strings, dollar-quoted strings and comments are one each."""

    kind: str  # comment, string, dollar, quoted, param, word, number, space, symbol
    text: str
    start: int
    end: int

    @property
    def name(self) -> str:
        """An identifier's name: lower case when bare, as written when quoted."""
        if self.kind == "quoted":
            return self.text[1:-1].replace('""', '"')
        return self.text.lower()


def sql_tokens(sql: str) -> list[Token]:
    """The tokens of ``sql``, so that nothing inside a string or comment is read as code."""
    return [
        Token(match.lastgroup or "symbol", match.group(), match.start(), match.end())
        for match in _TOKEN.finditer(sql)
    ]


@dataclass(frozen=True)
class TableReference:
    """A dotted name in a query (``marts.fct_survey_responses``), not a function call."""

    parts: tuple[str, ...]
    after_from: bool  # it stands where a table goes (after FROM, JOIN or a comma in a FROM list)

    @property
    def candidates(self) -> tuple[str, ...]:
        """The ``schema.table`` it can mean: ``db.schema.table`` or ``schema.table.column``."""
        if len(self.parts) == 2:
            return (".".join(self.parts),)
        if len(self.parts) == 3:
            return (".".join(self.parts[1:]), ".".join(self.parts[:2]))
        return ()


# Words that end a FROM clause's list of tables.
_AFTER_FROM = frozenset(
    (
        *("where", "group", "having", "order", "limit", "offset", "qualify", "window"),
        *("union", "except", "intersect", "select", "returning", "values"),
        *("set", "pivot", "unpivot"),
    )
)


def table_references(sql: str) -> tuple[TableReference, ...]:
    """Every dotted name outside strings and comments, with whether it names a table.

    A name after FROM or JOIN, or after a top-level comma in a FROM list (join conditions
    included), names a table. Unqualified
    names are CTEs or columns (the snapshot keeps no tables in its default schema), so they
    are left out; so are dotted function calls (``main.f(...)``).
    """
    tokens = [t for t in sql_tokens(sql) if t.kind not in ("space", "comment")]
    references: list[TableReference] = []
    in_from = False  # inside a FROM list at the current parenthesis depth
    outer: list[bool] = []  # the same flag for each enclosing parenthesis
    expect_table = False
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.kind not in _NAME_KINDS:
            if token.text == "(":
                outer.append(in_from)
                in_from = expect_table = False
            elif token.text == ")":
                in_from = outer.pop() if outer else False
                expect_table = False
            else:
                expect_table = in_from and token.text == ","
            i += 1
            continue
        if token.kind == "word" and token.name in ("from", "join"):
            in_from = expect_table = True
            i += 1
            continue
        if token.kind == "word" and token.name in _AFTER_FROM:
            in_from = False
        j = i + 1
        while j + 1 < len(tokens) and tokens[j].text == "." and tokens[j + 1].kind in _NAME_KINDS:
            j += 2
        parts = tuple(tokens[k].name for k in range(i, j, 2))
        is_call = j < len(tokens) and tokens[j].text == "("
        if len(parts) > 1 and not is_call:
            references.append(TableReference(parts, expect_table))
        expect_table = False
        i = j
    return tuple(references)


def resolve_relations(
    index: Mapping[str, str], references: Iterable[TableReference]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The unique ids of the relations read, and the tables read that the manifest lacks."""
    read: list[str] = []
    unknown: list[str] = []
    for reference in references:
        match = next((index[c.lower()] for c in reference.candidates if c.lower() in index), None)
        if match is not None:
            read.append(match)
        elif reference.after_from and reference.candidates:
            unknown.append(reference.candidates[0])
    return tuple(dict.fromkeys(read)), tuple(dict.fromkeys(unknown))


def _relation_name(node: Mapping[str, Any]) -> str:
    identifier = node.get("identifier") or node.get("alias") or node["name"]
    return f"{node['schema']}.{identifier}".lower()


def relation_index(manifest: Mapping[str, Any]) -> dict[str, str]:
    """``schema.identifier`` → unique id, for every relation the manifest defines."""
    index: dict[str, str] = {}
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") in _RELATION_TYPES:
            index[_relation_name(node)] = unique_id
    for unique_id, source in manifest.get("sources", {}).items():
        index[_relation_name(source)] = unique_id
    return index


def _definition(manifest: Mapping[str, Any], unique_id: str) -> Mapping[str, Any]:
    if unique_id in manifest.get("sources", {}):
        return manifest["sources"][unique_id]
    return manifest.get("nodes", {}).get(unique_id, {})


def _first_paragraph(text: str | None) -> str:
    return (text or "").strip().split("\n\n")[0].replace("\n", " ")


def _lineage_node(manifest: Mapping[str, Any], unique_id: str, depth: int) -> LineageNode:
    node = _definition(manifest, unique_id)
    resource_type = node.get("resource_type", unique_id.split(".")[0])
    return LineageNode(
        unique_id=unique_id,
        resource_type=resource_type,
        name=node.get("name", unique_id.rsplit(".", 1)[-1]),
        relation=_relation_name(node) if node.get("schema") else unique_id,
        materialized=None
        if resource_type == "source"
        else node.get("config", {}).get("materialized"),
        path=node.get("original_file_path"),
        description=_first_paragraph(node.get("description")),
        parents=tuple(node.get("depends_on", {}).get("nodes", ())),
        depth=depth,
    )


def walk_upstream(manifest: Mapping[str, Any], read: Iterable[str]) -> tuple[LineageNode, ...]:
    """``read`` and everything it is built from, breadth first (each node at its least depth)."""
    depth_of: dict[str, int] = {}
    frontier = list(dict.fromkeys(read))
    depth = 0
    while frontier:
        next_frontier: list[str] = []
        for unique_id in frontier:
            if unique_id in depth_of:
                continue
            depth_of[unique_id] = depth
            parents = _definition(manifest, unique_id).get("depends_on", {}).get("nodes", [])
            next_frontier.extend(p for p in parents if p not in depth_of)
        frontier = next_frontier
        depth += 1
    return tuple(_lineage_node(manifest, uid, d) for uid, d in depth_of.items())


def _results_by_id(run_results: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    if run_results is None:
        return {}
    return {r["unique_id"]: r for r in run_results.get("results", []) if "unique_id" in r}


def guarding_tests(
    manifest: Mapping[str, Any],
    run_results: Mapping[str, Any] | None,
    node_ids: Iterable[str],
) -> tuple[DbtTest, ...]:
    """The data tests and unit tests that depend on any of ``node_ids``, with their status."""
    wanted = set(node_ids)
    results = _results_by_id(run_results)
    candidates: list[tuple[str, Mapping[str, Any], str]] = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") == "test":
            kind = "generic" if node.get("test_metadata") else "singular"
            candidates.append((unique_id, node, kind))
    for unique_id, node in manifest.get("unit_tests", {}).items():
        candidates.append((unique_id, node, "unit"))
    tests: list[DbtTest] = []
    for unique_id, node, kind in candidates:
        guards = tuple(n for n in node.get("depends_on", {}).get("nodes", []) if n in wanted)
        if not guards:
            continue
        result = results.get(unique_id)
        tests.append(
            DbtTest(
                unique_id=unique_id,
                name=node.get("name", unique_id),
                kind=kind,
                guards=guards,
                column=node.get("column_name"),
                status=str(result.get("status")) if result else NOT_RUN,
                built_at=result.get("built_at") if result else None,
                failures=result.get("failures") if result else None,
                message=result.get("message") if result else None,
            )
        )
    return tuple(sorted(tests, key=lambda t: (t.kind, t.name)))


def build_lineage(
    manifest: Mapping[str, Any], run_results: Mapping[str, Any] | None, sql: str
) -> Lineage:
    """The relations ``sql`` reads, their lineage back to sources and seeds, and their tests."""
    read, unknown = resolve_relations(relation_index(manifest), table_references(sql))
    nodes = walk_upstream(manifest, read)
    depth = {n.unique_id: n.depth for n in nodes}
    tests = sorted(
        guarding_tests(manifest, run_results, depth),
        key=lambda t: min(depth[g] for g in t.guards),  # tests of the models read come first
    )
    return Lineage(read=read, unknown=unknown, nodes=nodes, tests=tuple(tests))
