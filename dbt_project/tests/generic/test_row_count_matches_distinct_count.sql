{#
    Reconciles two layers: the tested model has exactly as many rows as compare_model has
    distinct non-null values of compare_column (e.g. one fact row per distinct raw survey_id).
    Fails with one row giving both counts when they differ.
#}
{% test row_count_matches_distinct_count(model, compare_model, compare_column) %}

with

model_rows as (
    select count(*) as row_count
    from {{ model }}
),

compare_values as (
    select count(distinct {{ compare_column }}) as distinct_count
    from {{ compare_model }}
    where {{ compare_column }} is not null
)

select
    model_rows.row_count,
    compare_values.distinct_count
from model_rows
cross join compare_values
where model_rows.row_count <> compare_values.distinct_count

{% endtest %}
