{#
    Grain: one row per load batch (raw.load_audit, row_kind 'load') plus one row per published
    micro-batch cycle of the stream runner (raw.stream_cycles, row_kind 'cycle'). Load rows
    hold what the loader reported next to what actually landed (raw.survey_responses for CSV
    files, raw.survey_events for delivery objects), the quarantined rows by reason, and the
    batch's freshness. Cycle rows hold the cycle's event-to-snapshot freshness and timings;
    the load columns are null on them, and the cycle columns are null on load rows.
#}

with

audit as (
    select * from {{ ref('stg_raw__load_audit') }}
),

responses as (
    select * from {{ ref('stg_raw__survey_responses') }}
),

event_records as (
    select * from {{ ref('stg_raw__survey_event_records') }}
),

quarantine as (
    select * from {{ ref('stg_raw__quarantine') }}
),

cycles as (
    select * from {{ ref('stg_raw__stream_cycles') }}
),

-- For a CSV batch the newest survey is the latest survey_submitted_at; for a delivery object
-- it is the latest submitted_at, when the API accepted the event.
landed_rows as (
    select
        batch_id,
        loaded_at,
        survey_submitted_at as submitted_at
    from responses
    union all
    select
        batch_id,
        loaded_at,
        submitted_at
    from event_records
),

landed as (
    select
        batch_id,
        count(*) as rows_landed,
        max(loaded_at) as loaded_at,
        max(submitted_at) as newest_survey_submitted_at
    from landed_rows
    group by batch_id
),

quarantined as (
    select
        batch_id,
        count(*) as rows_in_quarantine,
        {%- for reason in quarantine_reasons() %}
        sum(case when reason = '{{ reason }}' then 1 else 0 end) as quarantined_{{ reason }},
        {%- endfor %}
        sum(
            case when reason not in ('{{ quarantine_reasons() | join("', '") }}') then 1 else 0 end
        ) as quarantined_other_reason
    from quarantine
    group by batch_id
),

load_rows as (
    select
        'load' as row_kind,
        audit.batch_id,
        cast(null as {{ dbt.type_string() }}) as cycle_id,
        audit.source_kind,
        audit.source_file,
        audit.layout,
        audit.status,
        audit.message,
        audit.rows_in_file,
        audit.rows_loaded,
        audit.rows_quarantined,
        coalesce(landed.rows_landed, 0) as rows_landed,
        coalesce(quarantined.rows_in_quarantine, 0) as rows_in_quarantine,
        {%- for reason in quarantine_reasons() %}
        coalesce(quarantined.quarantined_{{ reason }}, 0) as quarantined_{{ reason }},
        {%- endfor %}
        coalesce(quarantined.quarantined_other_reason, 0) as quarantined_other_reason,
        audit.started_at,
        audit.finished_at,
        coalesce(landed.loaded_at, audit.finished_at) as loaded_at,
        landed.newest_survey_submitted_at,
        {{ dbt.datediff('landed.newest_survey_submitted_at', 'landed.loaded_at', 'second') }}
            as freshness_seconds,
        cast(null as timestamp) as published_at,
        cast(null as bigint) as objects_loaded,
        cast(null as bigint) as events_loaded,
        cast(null as bigint) as events_quarantined,
        cast(null as double precision) as freshness_p50_s,
        cast(null as double precision) as freshness_p95_s,
        cast(null as double precision) as freshness_max_s,
        cast(null as double precision) as load_s,
        cast(null as double precision) as build_s,
        cast(null as double precision) as publish_s,
        cast(null as double precision) as cycle_s
    from audit
    left join landed
        on audit.batch_id = landed.batch_id
    left join quarantined
        on audit.batch_id = quarantined.batch_id
),

cycle_rows as (
    select
        'cycle' as row_kind,
        cast(null as {{ dbt.type_string() }}) as batch_id,
        cycle_id,
        cast(null as {{ dbt.type_string() }}) as source_kind,
        cast(null as {{ dbt.type_string() }}) as source_file,
        cast(null as {{ dbt.type_string() }}) as layout,
        cast(null as {{ dbt.type_string() }}) as status,
        cast(null as {{ dbt.type_string() }}) as message,
        cast(null as bigint) as rows_in_file,
        cast(null as bigint) as rows_loaded,
        cast(null as bigint) as rows_quarantined,
        cast(null as bigint) as rows_landed,
        cast(null as bigint) as rows_in_quarantine,
        {%- for reason in quarantine_reasons() %}
        cast(null as bigint) as quarantined_{{ reason }},
        {%- endfor %}
        cast(null as bigint) as quarantined_other_reason,
        started_at,
        published_at as finished_at,
        cast(null as timestamp) as loaded_at,
        cast(null as timestamp) as newest_survey_submitted_at,
        cast(null as bigint) as freshness_seconds,
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
    from cycles
),

health as (
    select * from load_rows
    union all
    select * from cycle_rows
),

final as (
    select
        cast(row_kind as varchar(8)) as row_kind,
        cast(batch_id as varchar) as batch_id,
        cast(cycle_id as varchar) as cycle_id,
        cast(source_kind as varchar(16)) as source_kind,
        cast(source_file as varchar) as source_file,
        cast(layout as varchar) as layout,
        cast(status as varchar(16)) as status,
        cast(message as varchar) as message,
        cast(rows_in_file as bigint) as rows_in_file,
        cast(rows_loaded as bigint) as rows_loaded,
        cast(rows_quarantined as bigint) as rows_quarantined,
        cast(rows_landed as bigint) as rows_landed,
        cast(rows_in_quarantine as bigint) as rows_in_quarantine,
        {%- for reason in quarantine_reasons() %}
        cast(quarantined_{{ reason }} as bigint) as quarantined_{{ reason }},
        {%- endfor %}
        cast(quarantined_other_reason as bigint) as quarantined_other_reason,
        cast(started_at as timestamp) as started_at,
        cast(finished_at as timestamp) as finished_at,
        cast(loaded_at as timestamp) as loaded_at,
        cast(newest_survey_submitted_at as timestamp) as newest_survey_submitted_at,
        cast(freshness_seconds as bigint) as freshness_seconds,
        cast(published_at as timestamp) as published_at,
        cast(objects_loaded as bigint) as objects_loaded,
        cast(events_loaded as bigint) as events_loaded,
        cast(events_quarantined as bigint) as events_quarantined,
        cast(freshness_p50_s as double precision) as freshness_p50_s,
        cast(freshness_p95_s as double precision) as freshness_p95_s,
        cast(freshness_max_s as double precision) as freshness_max_s,
        cast(load_s as double precision) as load_s,
        cast(build_s as double precision) as build_s,
        cast(publish_s as double precision) as publish_s,
        cast(cycle_s as double precision) as cycle_s
    from health
)

select * from final
