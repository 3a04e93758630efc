{#
    Grain: one row per flight (flight_id): carrier, number, date, route and schedule, which all
    surveys of a flight share (should they ever differ, the latest submitted survey wins).
    Actual times stay on fct_survey_responses: each exported survey reports its own delays.
#}

with

surveys as (
    select * from {{ ref('int_surveys__deduplicated') }}
),

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
        count(*) over (partition by flight_id) as surveys
    from surveys
    where flight_id is not null
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
        cast(surveys as bigint) as surveys
    from ranked
    where survey_rank = 1
)

select * from final
