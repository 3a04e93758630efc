{#
    One row per landed stream record (raw.survey_events), copies of a redelivered event
    included: only lineage and timing, for pipeline health. The surveys themselves are staged,
    deduplicated, in stg_raw__survey_events.
#}

with

source as (
    select * from {{ source('raw', 'survey_events') }}
),

renamed as (
    select
        batch_id,
        source_file,
        source_line,
        event_id,
        submitted_at,
        loaded_at
    from source
)

select * from renamed
