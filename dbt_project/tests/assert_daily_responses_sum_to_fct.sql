-- The daily mart counts every survey on exactly one day.

with

daily as (
    select
        coalesce(sum(responses), 0) as responses,
        coalesce(sum(satisfied), 0) as satisfied
    from {{ ref('mart_daily_satisfaction') }}
),

fact as (
    select
        count(*) as responses,
        coalesce(sum(case when is_satisfied then 1 else 0 end), 0) as satisfied
    from {{ ref('fct_survey_responses') }}
    where survey_date is not null
)

select
    daily.responses,
    daily.satisfied,
    fact.responses as fact_responses,
    fact.satisfied as fact_satisfied
from daily
cross join fact
where daily.responses <> fact.responses
    or daily.satisfied <> fact.satisfied
