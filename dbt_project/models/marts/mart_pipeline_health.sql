{#
    Grain: one row per load batch (raw.load_audit). What the loader reported next to what
    actually landed, the quarantined rows by reason, and the batch's freshness: seconds from
    its newest survey submission to the moment it was loaded. The stream path will add its
    per-cycle rows here.
#}

with

audit as (
    select * from {{ ref('stg_raw__load_audit') }}
),

responses as (
    select * from {{ ref('stg_raw__survey_responses') }}
),

quarantine as (
    select * from {{ ref('stg_raw__quarantine') }}
),

landed as (
    select
        batch_id,
        count(*) as rows_landed,
        max(loaded_at) as loaded_at,
        max(survey_submitted_at) as newest_survey_submitted_at
    from responses
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

joined as (
    select
        audit.batch_id,
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
        landed.newest_survey_submitted_at
    from audit
    left join landed
        on audit.batch_id = landed.batch_id
    left join quarantined
        on audit.batch_id = quarantined.batch_id
),

final as (
    select
        cast(batch_id as varchar) as batch_id,
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
        cast(
            {{ dbt.datediff('newest_survey_submitted_at', 'loaded_at', 'second') }} as bigint
        ) as freshness_seconds
    from joined
)

select * from final
