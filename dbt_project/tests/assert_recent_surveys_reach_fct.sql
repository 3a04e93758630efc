-- The micro-batch form of assert_rows_reconcile_raw_to_fct: every survey id landed in raw (by
-- either channel) within fct_survey_responses' lookback window is in the fact. It reads the
-- window only, so stream cycles run it; full builds run the whole-table reconciliation too.
-- Fails on each missing survey id.

with

recent_batch as (
    select survey_id
    from {{ source('raw', 'survey_responses') }}
    where loaded_at >= {{ lookback_cutoff('loaded_at', ref('fct_survey_responses')) }}
),

recent_stream as (
    select survey_id
    from {{ source('raw', 'survey_events') }}
    where loaded_at >= {{ lookback_cutoff('loaded_at', ref('fct_survey_responses')) }}
),

recent as (
    select survey_id from recent_batch
    union
    select survey_id from recent_stream
),

facts as (
    select survey_id from {{ ref('fct_survey_responses') }}
)

select recent.survey_id
from recent
left join facts
    on recent.survey_id = facts.survey_id
where recent.survey_id is not null
    and facts.survey_id is null
