{{ config(
    materialized='incremental',
    unique_key='survey_id',
    incremental_strategy='delete+insert',
    on_schema_change='fail',
    meta={'cycle_window_column': 'loaded_at'},
    indexes=[{'columns': ['survey_id']}] if target.type == 'postgres' else []
) }}

{#
    Grain: one row per survey (survey_id), the latest loaded version of it.
    No passenger name or customer id: passenger_key joins to dim_passenger.
    Incremental: a run replaces the surveys whose latest copy landed in the lookback window.
#}

with

surveys as (
    select * from {{ ref('int_surveys__deduplicated') }}
    {%- if is_incremental() %}
    where loaded_at >= {{ lookback_cutoff() }}
    {%- endif %}
),

final as (
    select
        cast(survey_id as varchar) as survey_id,
        cast(passenger_key as varchar(32)) as passenger_key,
        cast(channel as varchar(16)) as channel,

        cast(carrier_code as varchar) as carrier_code,
        cast(flight_number as integer) as flight_number,
        cast(flight_id as varchar) as flight_id,
        cast(flight_date as date) as flight_date,
        cast(origin_airport as varchar) as origin_airport,
        cast(destination_airport as varchar) as destination_airport,
        cast(scheduled_departure_at as timestamp) as scheduled_departure_at,
        cast(actual_departure_at as timestamp) as actual_departure_at,
        cast(scheduled_arrival_at as timestamp) as scheduled_arrival_at,
        cast(actual_arrival_at as timestamp) as actual_arrival_at,
        cast(survey_submitted_at as timestamp) as survey_submitted_at,
        cast(survey_date as date) as survey_date,

        cast(satisfaction as varchar(32)) as satisfaction,
        cast(is_satisfied as boolean) as is_satisfied,
        cast(gender as varchar(16)) as gender,
        cast(customer_type as varchar(16)) as customer_type,
        cast(age as integer) as age,
        cast({{ age_band('age') }} as varchar(16)) as age_band,
        cast(type_of_travel as varchar(16)) as type_of_travel,
        cast(travel_class as varchar(16)) as travel_class,
        cast(flight_distance as integer) as flight_distance,

        {%- for service in rating_services() %}
        cast({{ service.name }}_rating as integer) as {{ service.name }}_rating,
        cast({{ service.name }}_is_not_applicable as boolean)
            as {{ service.name }}_is_not_applicable,
        {%- endfor %}

        cast(departure_delay_minutes as integer) as departure_delay_minutes,
        cast(arrival_delay_minutes as integer) as arrival_delay_minutes,
        cast({{ delay_band('departure_delay_minutes') }} as varchar(16)) as departure_delay_band,
        cast({{ delay_band('arrival_delay_minutes') }} as varchar(16)) as arrival_delay_band,

        cast(batch_id as varchar) as batch_id,
        cast(source_file as varchar) as source_file,
        cast(source_line as bigint) as source_line,
        cast(loaded_at as timestamp) as loaded_at
    from surveys
)

select * from final
