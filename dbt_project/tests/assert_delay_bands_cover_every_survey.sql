-- The delay bands of each delay type partition the surveys: their responses add up to the
-- rows of fct_survey_responses.

with

per_type as (
    select
        delay_type,
        sum(responses) as responses
    from {{ ref('mart_delay_impact') }}
    group by delay_type
),

fact as (
    select count(*) as responses
    from {{ ref('fct_survey_responses') }}
)

select
    per_type.delay_type,
    per_type.responses,
    fact.responses as fact_responses
from per_type
cross join fact
where per_type.responses <> fact.responses
