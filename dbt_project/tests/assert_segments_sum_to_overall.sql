-- Each segment type partitions the surveys: its responses and satisfied counts add up to the
-- overall row, which matches fct_survey_responses.

with

segments as (
    select * from {{ ref('mart_satisfaction_by_segment') }}
),

per_type as (
    select
        segment_type,
        sum(responses) as responses,
        sum(satisfied) as satisfied
    from segments
    group by segment_type
),

fact as (
    select
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from {{ ref('fct_survey_responses') }}
)

select
    per_type.segment_type,
    per_type.responses,
    per_type.satisfied,
    fact.responses as fact_responses,
    fact.satisfied as fact_satisfied
from per_type
cross join fact
where per_type.responses <> fact.responses
    or per_type.satisfied <> fact.satisfied
