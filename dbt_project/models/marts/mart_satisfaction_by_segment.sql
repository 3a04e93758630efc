{#
    Grain: one row per segment type and value (plus one 'overall' row).
    Segment types: overall, travel_class, customer_type, type_of_travel, age_band, gender.
#}

{%- set segment_columns = ['travel_class', 'customer_type', 'type_of_travel', 'age_band', 'gender'] %}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

-- The surveys are read once, into one row per combination of segments, and rolled up from there.
combinations as (
    select
        {%- for column in segment_columns %}
        coalesce({{ column }}, 'unknown') as {{ column }},
        {%- endfor %}
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from surveys
    group by
        {%- for column in segment_columns %}
        coalesce({{ column }}, 'unknown'){{ ',' if not loop.last }}
        {%- endfor %}
),

segments as (
    select
        'overall' as segment_type,
        'all' as segment_value,
        coalesce(sum(responses), 0) as responses,
        coalesce(sum(satisfied), 0) as satisfied
    from combinations
    {%- for column in segment_columns %}

    union all

    select
        '{{ column }}' as segment_type,
        {{ column }} as segment_value,
        sum(responses) as responses,
        sum(satisfied) as satisfied
    from combinations
    group by {{ column }}
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
