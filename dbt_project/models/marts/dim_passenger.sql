{#
    Grain: one row per passenger (passenger_key, a hash of the customer id).
    PII-safe: no name, no customer id, no exact age; the age band comes from the passenger's
    latest survey.
#}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

ranked as (
    select
        passenger_key,
        age_band,
        row_number() over (
            partition by passenger_key
            order by survey_submitted_at desc, survey_id desc
        ) as survey_rank
    from surveys
    where passenger_key is not null
),

final as (
    select
        cast(passenger_key as varchar(32)) as passenger_key,
        cast(age_band as varchar(16)) as age_band
    from ranked
    where survey_rank = 1
)

select * from final
