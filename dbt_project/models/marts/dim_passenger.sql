{{ config(
    materialized='incremental',
    unique_key='passenger_key',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'cycle_window_column': 'last_loaded_at'},
    indexes=[{'columns': ['passenger_key']}] if target.type == 'postgres' else []
) }}

{#
    Grain: one row per passenger (passenger_key, a hash of the customer id).
    PII-safe: no name, no customer id, no exact age; the age band comes from the passenger's
    latest survey. Incremental: a run rebuilds only the passengers with a survey landed in the
    lookback window (from every survey of theirs).
#}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
    where passenger_key is not null
),
{%- if is_incremental() %}

-- A separate import of the window: a CTE read twice would be materialised whole by DuckDB.
recent_surveys as (
    select passenger_key from {{ ref('fct_survey_responses') }}
    where loaded_at >= {{ lookback_cutoff('last_loaded_at') }}
),

touched_passengers as (
    select distinct passenger_key
    from recent_surveys
    where passenger_key is not null
),

passenger_surveys as (
    select surveys.*
    from surveys
    inner join touched_passengers
        on surveys.passenger_key = touched_passengers.passenger_key
),
{%- else %}

passenger_surveys as (
    select * from surveys
),
{%- endif %}

ranked as (
    select
        passenger_key,
        age_band,
        row_number() over (
            partition by passenger_key
            order by survey_submitted_at desc, survey_id desc
        ) as survey_rank,
        max(loaded_at) over (partition by passenger_key) as last_loaded_at
    from passenger_surveys
),

final as (
    select
        cast(passenger_key as varchar(32)) as passenger_key,
        cast(age_band as varchar(16)) as age_band,
        cast(last_loaded_at as timestamp) as last_loaded_at
    from ranked
    where survey_rank = 1
)

select * from final
