{{ config(
    materialized='view',
    meta={
        'cycle_window_column': 'loaded_at',
        'cycle_window_newest_from': 'int_surveys__deduplicated',
    }
) }}

{#
    Grain: one row per survey and service the survey's layout asked about.
    rating is null when the passenger answered 0 ("not applicable"). A view over the
    deduplicated surveys: at fifteen rows a survey it would be the largest table by far, and
    keeping it in step with the surveys is what a view does for free (a newer copy of a survey
    replaces all its ratings, including services it no longer asks about). Kept narrow: labels
    are in mart_service_drivers, dates and segments in fct_survey_responses.
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
        cast(is_satisfied as boolean) as is_satisfied,
        cast(loaded_at as timestamp) as loaded_at
    from ratings
)

select * from final
