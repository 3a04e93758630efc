{#
    Grain: one row per segment type and value (plus one 'overall' row).
    Segment types: overall, travel_class, customer_type, type_of_travel, age_band, gender.
#}

{%- set segment_columns = ['travel_class', 'customer_type', 'type_of_travel', 'age_band', 'gender'] %}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

segments as (
    select
        'overall' as segment_type,
        'all' as segment_value,
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from surveys
    {%- for column in segment_columns %}

    union all

    select
        '{{ column }}' as segment_type,
        coalesce({{ column }}, 'unknown') as segment_value,
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from surveys
    group by coalesce({{ column }}, 'unknown')
    {%- endfor %}
),

final as (
    select
        cast(segment_type as varchar(32)) as segment_type,
        cast(segment_value as varchar(64)) as segment_value,
        cast(responses as bigint) as responses,
        cast(satisfied as bigint) as satisfied,
        cast(satisfied as double precision) / nullif(responses, 0) as satisfaction_rate
    from segments
    -- an empty fact table still yields the overall row; drop it
    where responses > 0
)

select * from final
