-- Every distinct survey id landed in raw, by either channel (batch exports in
-- raw.survey_responses, streamed events in raw.survey_events), is exactly one row of
-- fct_survey_responses, and the fact holds no survey that raw does not. Fails with the
-- counts when they differ.

with

raw_ids as (
    select survey_id from {{ source('raw', 'survey_responses') }}
    union
    select survey_id from {{ source('raw', 'survey_events') }}
),

raw_surveys as (
    select count(*) as surveys
    from raw_ids
    where survey_id is not null
),

fact_surveys as (
    select
        count(*) as fact_rows,
        count(distinct survey_id) as fact_surveys
    from {{ ref('fct_survey_responses') }}
)

select
    raw_surveys.surveys as raw_surveys,
    fact_surveys.fact_rows,
    fact_surveys.fact_surveys
from raw_surveys
cross join fact_surveys
where raw_surveys.surveys <> fact_surveys.fact_rows
    or raw_surveys.surveys <> fact_surveys.fact_surveys
