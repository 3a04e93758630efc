{{ config(
    materialized='incremental',
    unique_key='flight_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'cycle_window_column': 'last_loaded_at'},
    indexes=[{'columns': ['flight_id']}] if target.type == 'postgres' else []
) }}

{#
    Grain: one row per flight (flight_id): carrier, number, date, route and schedule, which all
    surveys of a flight share (should they ever differ, the latest submitted survey wins).
    Actual times stay on fct_survey_responses: each exported survey reports its own delays.
    Incremental: a run rebuilds only the flights with a survey landed in the lookback window
    (from every survey of those flights), so its cost follows the new surveys, not the history.
#}

with

surveys as (
    select * from {{ ref('int_surveys__deduplicated') }}
    where flight_id is not null
),
{%- if is_incremental() %}

-- A separate import of the window: a CTE read twice would be materialised whole by DuckDB.
recent_surveys as (
    select flight_id from {{ ref('int_surveys__deduplicated') }}
    where loaded_at >= {{ lookback_cutoff('last_loaded_at') }}
),

touched_flights as (
    select distinct flight_id
    from recent_surveys
    where flight_id is not null
),

flight_surveys as (
    select surveys.*
    from surveys
    inner join touched_flights
        on surveys.flight_id = touched_flights.flight_id
),
{%- else %}

flight_surveys as (
    select * from surveys
),
{%- endif %}

ranked as (
    select
        flight_id,
        carrier_code,
        flight_number,
        flight_date,
        origin_airport,
        destination_airport,
        scheduled_departure_at,
        scheduled_arrival_at,
        row_number() over (
            partition by flight_id
            order by survey_submitted_at desc, survey_id desc
        ) as survey_rank,
        count(*) over (partition by flight_id) as surveys,
        max(loaded_at) over (partition by flight_id) as last_loaded_at
    from flight_surveys
),

final as (
    select
        cast(flight_id as varchar) as flight_id,
        cast(carrier_code as varchar) as carrier_code,
        cast(flight_number as integer) as flight_number,
        cast(flight_date as date) as flight_date,
        cast(origin_airport as varchar) as origin_airport,
        cast(destination_airport as varchar) as destination_airport,
        cast(scheduled_departure_at as timestamp) as scheduled_departure_at,
        cast(scheduled_arrival_at as timestamp) as scheduled_arrival_at,
        cast(surveys as bigint) as surveys,
        cast(last_loaded_at as timestamp) as last_loaded_at
    from ranked
    where survey_rank = 1
)

select * from final
