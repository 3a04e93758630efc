{# One row per micro-batch cycle of `contrail stream run`, as the runner recorded it. #}

with

source as (
    select * from {{ source('raw', 'stream_cycles') }}
),

renamed as (
    select
        cycle_id,
        started_at,
        published_at,
        objects_loaded,
        events_loaded,
        events_quarantined,
        freshness_p50_s,
        freshness_p95_s,
        freshness_max_s,
        load_s,
        build_s,
        publish_s,
        cycle_s
    from source
)

select * from renamed
