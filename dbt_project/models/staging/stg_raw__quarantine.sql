{#
    One row per input row or record a loader refused. raw_text can hold personal data from the
    refused line, so it stays in raw; staging keeps where the row was and why it was refused.
#}

with

source as (
    select * from {{ source('raw', 'quarantine') }}
),

renamed as (
    select
        batch_id,
        source_kind,
        source_file,
        file_sha256,
        source_line,
        byte_offset,
        reason,
        detail,
        quarantined_at
    from source
)

select * from renamed
