{{ config(
    materialized='incremental',
    unique_key='survey_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'cycle_window_column': 'loaded_at'},
    indexes=[{'columns': ['survey_id']}] if target.type == 'postgres' else [],
    pre_hook="{{ delete_ratings_of_unrated_copies() }}"
) }}

-- depends_on: {{ ref('int_surveys__deduplicated') }}

{#
    Grain: one row per survey and service the survey's layout asked about.
    rating is null when the passenger answered 0 ("not applicable"). Kept narrow (fifteen rows
    per survey): labels are in mart_service_drivers, dates and segments in fct_survey_responses.
    Incremental: the unique key is survey_id, not (survey_id, service), so a survey landed again
    has all its rows replaced and a service its newer copy no longer asks about disappears; the
    pre-hook removes the rows of a survey whose newer copy asks about no service at all.
#}

with

ratings as (
    select * from {{ ref('int_survey_ratings__unpivoted') }}
    {%- if is_incremental() %}
    where loaded_at >= {{ lookback_cutoff() }}
    {%- endif %}
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
