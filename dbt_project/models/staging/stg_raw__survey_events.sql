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

-- Firehose delivers at least once: keep the first landed copy of each event (ordered by
-- loaded_at, batch_id, source_line). Written as an anti-join rather than a window over every
-- event, so a filter on loaded_at (the incremental models' lookback) reaches the scan.
events as (
    select source.*
    from source
    where not exists (
        select 1
        from source as earlier
        where earlier.event_id = source.event_id
            and (
                earlier.loaded_at < source.loaded_at
                or (
                    earlier.loaded_at = source.loaded_at
                    and earlier.batch_id < source.batch_id
                )
                or (
                    earlier.loaded_at = source.loaded_at
                    and earlier.batch_id = source.batch_id
                    and earlier.source_line < source.source_line
                )
            )
    )
),

renamed as (
    select
        {{ staged_survey_columns('stream') }}
    from events
)

select * from renamed
