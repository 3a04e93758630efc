{#
    Grain: one row per survey and service the survey's layout asked about.
    rating is null when the passenger answered 0 ("not applicable"). Kept narrow (fifteen rows
    per survey): labels are in mart_service_drivers, dates and segments in fct_survey_responses.
#}

with

ratings as (
    select * from {{ ref('int_survey_ratings__unpivoted') }}
),

final as (
    select
        cast(survey_id as varchar) as survey_id,
        cast(service as varchar(64)) as service,
        cast(rating as integer) as rating,
        cast(is_not_applicable as boolean) as is_not_applicable,
        cast(is_satisfied as boolean) as is_satisfied
    from ratings
)

select * from final
