{#
    One row per streamed survey event (raw.survey_events), deduplicated on event_id because
    Firehose delivers at least once, and shaped exactly like stg_raw__survey_responses (same
    columns, same normalisation) with channel = 'stream', so the two union without reshaping.
    source_file is the delivery object's key and source_line the record's ordinal in it.
    PII boundary: the passenger name and the customer id stay in raw; only a hash leaves.
#}

with

source as (
    select * from {{ source('raw', 'survey_events') }}
),

-- Firehose delivers at least once: keep the first landed copy of each event.
ranked as (
    select
        source.*,
        row_number() over (
            partition by event_id
            order by loaded_at, batch_id, source_line
        ) as copy_rank
    from source
),

events as (
    select * from ranked
    where copy_rank = 1
),

renamed as (
    select
        {{ staged_survey_columns('stream') }}
    from events
)

select * from renamed
