{#
    Data tests in a stream micro-batch check the rows that batch could have changed, not the
    whole history, so a cycle's cost follows the batch. dbt passes every generic test's model
    through get_where_subquery; this override adds a window when all of these hold:

    - the build runs with var stream_cycle = true (contrail stream run sets it);
    - the tested model names its window column in meta cycle_window_column (the incremental
      models and the ratings view: their landing time), so the window is the model's own
      lookback window, anchored at the newest value in the model (or in the table its meta
      cycle_window_newest_from names: see cycle_window_anchor);
    - the test is row by row (not_null, accepted_values, accepted_range, expression_is_true,
      relationships: the model's side) or a uniqueness test (unique,
      unique_combination_of_columns).

    Row-by-row tests read the rows in the window. unique reads every row whose key occurs in
    the window, wherever in the history the other copy lies, so a new row duplicating an old
    one still fails. unique_combination_of_columns (fct_service_ratings, fifteen rows a survey)
    checks the window's rows among themselves: probing every rating for the window's keys
    would cost unpivoting the whole history; the ratings of a survey all come from its one
    deduplicated row, whose uniqueness the unique test on survey_id checks as above, and full
    builds check the whole view. Every
    other test sees whole tables; the whole-table reconciliations are tagged full_build_only
    and the cycle runs assert_recent_surveys_reach_fct instead.
#}
{% macro get_where_subquery(relation) -%}
    {%- set predicates = [] -%}
    {%- set where = config.get('where') -%}
    {%- if where -%}
        {%- do predicates.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set window = cycle_window_predicate(relation) -%}
    {%- if window -%}
        {%- do predicates.append(window) -%}
    {%- endif -%}
    {%- if predicates -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ predicates | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{# The window predicate for the test being compiled on relation, or none. #}
{% macro cycle_window_predicate(relation) -%}
    {%- if not var('stream_cycle', false) or not execute -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set column = cycle_window_column(relation) -%}
    {%- set metadata = model.get('test_metadata') or {} -%}
    {%- if not column or not metadata -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set kwargs = metadata.get('kwargs', {}) -%}
    {%- set cutoff = cycle_window_cutoff(relation, column) -%}
    {%- set row_by_row = (
        'not_null', 'accepted_values', 'accepted_range', 'expression_is_true', 'relationships',
        'unique_combination_of_columns'
    ) -%}
    {%- if metadata.name in row_by_row -%}
        {%- do return(column ~ ' >= ' ~ cutoff) -%}
    {%- endif -%}
    {%- set key = none -%}
    {%- if metadata.name == 'unique' -%}
        {%- set key = kwargs.get('column_name') -%}
    {%- endif -%}
    {%- if key -%}
        {%- set recent_keys -%}
            {{ key }} in (select {{ key }} from {{ relation }} where {{ column }} >= {{ cutoff }})
        {%- endset -%}
        {%- do return(recent_keys) -%}
    {%- endif -%}
    {%- do return(none) -%}
{%- endmacro %}


{# meta.cycle_window_column of the model stored in relation, or none. #}
{% macro cycle_window_column(relation) -%}
    {%- do return(cycle_window_meta(relation).get('cycle_window_column')) -%}
{%- endmacro %}


{#
    The start of relation's window on column: lookback_cutoff anchored at the newest value in
    the model named by relation's meta cycle_window_newest_from, else in relation itself. A
    view over a large table (the ratings unpivot the surveys fifteen times) names that table,
    whose newest landing time is the view's, so the lookup reads one column of a table instead
    of computing the view.
#}
{% macro cycle_window_cutoff(relation, column) -%}
    {%- do return(lookback_cutoff(column, cycle_window_anchor(relation))) -%}
{%- endmacro %}


{# The relation cycle_window_cutoff reads the newest value from (see above). #}
{% macro cycle_window_anchor(relation) -%}
    {%- set anchor = cycle_window_meta(relation).get('cycle_window_newest_from') -%}
    {%- if not anchor -%}
        {%- do return(relation) -%}
    {%- endif -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model' and node.name == anchor -%}
            {%- do return(node_relation(node)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ exceptions.raise_compiler_error(
        "meta cycle_window_newest_from of " ~ relation ~ " names " ~ anchor
        ~ ", which is not a model of the project"
    ) }}
{%- endmacro %}


{# The meta of the model stored in relation ({} when none is). #}
{% macro cycle_window_meta(relation) -%}
    {%- for node in graph.nodes.values() -%}
        {%- if node.resource_type == 'model'
            and (node.alias or node.name) | lower == relation.identifier | lower
            and node.schema | lower == relation.schema | lower -%}
            {%- do return(node.config.get('meta') or node.get('meta') or {}) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- do return({}) -%}
{%- endmacro %}


{#
    dbt's relationships test, with one change in a stream cycle: when the tested rows are
    windowed (see get_where_subquery) and the parent model names a cycle_window_column too,
    the parent is read from the tested rows' cutoff on, so the test reads the window on both
    sides instead of every key of the parent. This relies on a rule the windowed models keep:
    a row's window column is never older than that of a row referencing it (a rating carries
    its survey's landing time; a dimension row the newest landing time of its surveys). A
    parent row left out could only make the test fail, never pass.
#}
{% macro default__test_relationships(model, column_name, to, field) %}
{%- set parent_window = cycle_parent_window(to) %}

with child as (
    select {{ column_name }} as from_field
    from {{ model }}
    where {{ column_name }} is not null
),

parent as (
    select {{ field }} as to_field
    from {{ to }}
    {%- if parent_window %}
    where {{ parent_window }}
    {%- endif %}
)

select
    from_field

from child
left join parent
    on child.from_field = parent.to_field

where parent.to_field is null

{% endmacro %}


{# The predicate that windows a relationships test's parent, or none (see above). #}
{% macro cycle_parent_window(parent) -%}
    {%- if not var('stream_cycle', false) or not execute -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set parent_column = cycle_window_column(parent) -%}
    {%- set attached = graph.nodes.get(model.get('attached_node') or '') -%}
    {%- if not parent_column or not attached -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set child = node_relation(attached) -%}
    {%- set child_column = cycle_window_column(child) -%}
    {%- if not child_column -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- do return(parent_column ~ ' >= ' ~ cycle_window_cutoff(child, child_column)) -%}
{%- endmacro %}


{# The relation a graph node (a model) is stored in. #}
{% macro node_relation(node) -%}
    {%- do return(api.Relation.create(
        database=node.database,
        schema=node.schema,
        identifier=node.alias or node.name
    )) -%}
{%- endmacro %}
