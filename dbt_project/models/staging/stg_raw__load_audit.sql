{# One row per load attempt of one file or delivery object, as the loaders recorded it. #}

with

source as (
    select * from {{ source('raw', 'load_audit') }}
),

renamed as (
    select
        batch_id,
        source_kind,
        source_file,
        file_sha256,
        file_bytes,
        layout,
        status,
        rows_in_file,
        rows_loaded,
        rows_quarantined,
        message,
        started_at,
        finished_at
    from source
)

select * from renamed
