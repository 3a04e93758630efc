{#
    The number of rows where condition holds. DuckDB's count_if is about twice as fast as
    count(case ...) on a wide scan; the other warehouses take the portable form.
#}
{% macro count_where(condition) -%}
    {{ return(adapter.dispatch('count_where')(condition)) }}
{%- endmacro %}

{% macro duckdb__count_where(condition) -%}
    count_if({{ condition }})
{%- endmacro %}

{% macro default__count_where(condition) -%}
    count(case when {{ condition }} then 1 end)
{%- endmacro %}
