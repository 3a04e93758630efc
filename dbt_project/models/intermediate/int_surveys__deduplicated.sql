{{ config(
    materialized='incremental',
    unique_key='survey_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'cycle_window_column': 'loaded_at'},
    indexes=[{'columns': ['survey_id']}] if target.type == 'postgres' else []
) }}

{#
    One row per survey_id across both channels (batch exports and the stream): the copy loaded
    last wins, whichever channel it came through. Incremental on loaded_at (the landing time,
    not the event time, so late events are still picked up): a run ranks only the copies
    landed in the lookback window, and each survey with such a copy is replaced whole
    (delete+insert on survey_id). A copy outside the window never beats one inside it, since it
    was loaded earlier. See the docs block for the window and what it assumes.
#}

with

batch_responses as (
    select * from {{ ref('stg_raw__survey_responses') }}
    {%- if is_incremental() %}
    where loaded_at >= {{ lookback_cutoff() }}
    {%- endif %}
),

stream_responses as (
    select * from {{ ref('stg_raw__survey_events') }}
    {%- if is_incremental() %}
    where loaded_at >= {{ lookback_cutoff() }}
    {%- endif %}
),

responses as (
    select * from batch_responses
    union all
    select * from stream_responses
),

ranked as (
    select
        responses.*,
        row_number() over (
            partition by survey_id
            order by loaded_at desc, batch_id desc, source_line desc
        ) as load_rank
    from responses
    where survey_id is not null
),

latest as (
    select * from ranked
    where load_rank = 1
)

select
    survey_id,
    passenger_key,
    channel,
    batch_id,
    source_file,
    source_line,
    loaded_at,
    carrier_code,
    flight_number,
    flight_id,
    flight_date,
    origin_airport,
    destination_airport,
    scheduled_departure_at,
    actual_departure_at,
    scheduled_arrival_at,
    actual_arrival_at,
    survey_submitted_at,
    survey_date,
    satisfaction,
    is_satisfied,
    gender,
    customer_type,
    age,
    type_of_travel,
    travel_class,
    flight_distance,
    {%- for service in rating_services() %}
    {{ service.name }}_rating,
    {{ service.name }}_is_not_applicable,
    {%- endfor %}
    departure_delay_minutes,
    arrival_delay_minutes
from latest
