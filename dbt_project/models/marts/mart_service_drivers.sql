{#
    Grain: one row per service some survey was asked about. Importance-performance analysis:
    performance is the mean rating (not-applicable answers excluded), importance is the
    satisfaction rate among ratings 4-5 minus the rate among ratings 1-2. See the docs block
    mart_service_drivers for the quadrant rule.
#}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

services as (
    {{ rating_services_relation() }}
),

-- One pass over the surveys, every service's counts side by side, split by satisfaction: the
-- wide fact is read once, where grouping fct_service_ratings would read fifteen rows a survey.
totals as (
    select
        is_satisfied,
        {%- for service in rating_services() %}
        {%- set rating = service.name ~ '_rating' %}
        {%- set not_applicable = service.name ~ '_is_not_applicable' %}
        count({{ not_applicable }}) as {{ service.name }}__responses,
        count({{ rating }}) as {{ service.name }}__rated,
        {{ count_where(not_applicable) }} as {{ service.name }}__not_applicable,
        sum({{ rating }}) as {{ service.name }}__rating_sum,
        {{ count_where(rating ~ ' >= 4') }} as {{ service.name }}__high_ratings,
        {{ count_where(rating ~ ' <= 2') }} as {{ service.name }}__low_ratings
        {{- ',' if not loop.last }}
        {%- endfor %}
    from surveys
    group by is_satisfied
),

-- One row per service a survey was asked about (a null flag means its layout did not ask).
per_service as (
    {%- for service in rating_services() %}
    select
        '{{ service.name }}' as service,
        sum({{ service.name }}__responses) as responses,
        sum({{ service.name }}__rated) as rated,
        sum({{ service.name }}__not_applicable) as not_applicable,
        cast(sum({{ service.name }}__rating_sum) as double precision)
        / nullif(sum({{ service.name }}__rated), 0) as mean_rating,
        sum({{ service.name }}__high_ratings) as high_ratings,
        sum(case when is_satisfied then {{ service.name }}__high_ratings else 0 end)
            as high_satisfied,
        sum({{ service.name }}__low_ratings) as low_ratings,
        sum(case when is_satisfied then {{ service.name }}__low_ratings else 0 end)
            as low_satisfied
    from totals
    having sum({{ service.name }}__responses) > 0
    {%- if not loop.last %}

    union all
    {%- endif %}
    {%- endfor %}
),

labelled as (
    select
        per_service.*,
        coalesce(services.service_label, per_service.service) as service_label,
        services.service_order
    from per_service
    left join services
        on per_service.service = services.service
),

scored as (
    select
        labelled.*,
        cast(high_satisfied as double precision) / nullif(high_ratings, 0)
            as satisfaction_rate_high,
        cast(low_satisfied as double precision) / nullif(low_ratings, 0)
            as satisfaction_rate_low,
        cast(high_satisfied as double precision) / nullif(high_ratings, 0)
        - cast(low_satisfied as double precision) / nullif(low_ratings, 0) as importance
    from labelled
),

with_averages as (
    select
        scored.*,
        -- averages over the services that have both measures, so they stay comparable
        avg(case when mean_rating is not null then importance end) over ()
            as average_importance,
        avg(case when importance is not null then mean_rating end) over ()
            as average_mean_rating
    from scored
),

classified as (
    select
        with_averages.*,
        case
            when importance is null or mean_rating is null then 'not enough ratings'
            when importance >= average_importance and mean_rating < average_mean_rating
                then 'concentrate here'
            when importance >= average_importance then 'keep up the good work'
            when mean_rating < average_mean_rating then 'low priority'
            else 'possible overkill'
        end as quadrant
    from with_averages
),

final as (
    select
        cast(service as varchar(64)) as service,
        cast(service_label as varchar(64)) as service_label,
        cast(service_order as integer) as service_order,
        cast(responses as bigint) as responses,
        cast(rated as bigint) as rated,
        cast(not_applicable as bigint) as not_applicable,
        cast(mean_rating as double precision) as mean_rating,
        cast(high_ratings as bigint) as high_ratings,
        cast(low_ratings as bigint) as low_ratings,
        cast(satisfaction_rate_high as double precision) as satisfaction_rate_high,
        cast(satisfaction_rate_low as double precision) as satisfaction_rate_low,
        cast(importance as double precision) as importance,
        cast(average_importance as double precision) as average_importance,
        cast(average_mean_rating as double precision) as average_mean_rating,
        cast(quadrant as varchar(32)) as quadrant
    from classified
)

select * from final
