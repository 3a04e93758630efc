-- For every batch a loader accepted ('loaded'): rows_in_file = rows_loaded +
-- rows_quarantined, and those counts match the rows in raw.quarantine and in the batch's
-- landing table (raw.survey_responses for CSV files, raw.survey_events for delivery
-- objects, where rows_in_file counts records). A 'replaced' batch was accepted once, so its file still
-- adds up; its rows have since been superseded, so raw is not compared. 'rejected' files
-- are refused whole and record no such balance.

with

audit as (
    select * from {{ source('raw', 'load_audit') }}
),

landed_rows as (
    select batch_id from {{ source('raw', 'survey_responses') }}
    union all
    select batch_id from {{ source('raw', 'survey_events') }}
),

landed as (
    select
        batch_id,
        count(*) as rows_landed
    from landed_rows
    group by batch_id
),

quarantined as (
    select
        batch_id,
        count(*) as rows_in_quarantine
    from {{ source('raw', 'quarantine') }}
    group by batch_id
),

checked as (
    select
        audit.batch_id,
        audit.status,
        audit.rows_in_file,
        audit.rows_loaded,
        audit.rows_quarantined,
        coalesce(landed.rows_landed, 0) as rows_landed,
        coalesce(quarantined.rows_in_quarantine, 0) as rows_in_quarantine
    from audit
    left join landed
        on audit.batch_id = landed.batch_id
    left join quarantined
        on audit.batch_id = quarantined.batch_id
    where audit.status in ('loaded', 'replaced')
)

select * from checked
where rows_in_file is null
    or rows_loaded is null
    or rows_quarantined is null
    or rows_in_file <> rows_loaded + rows_quarantined
    or (status = 'loaded' and rows_loaded <> rows_landed)
    or (status = 'loaded' and rows_quarantined <> rows_in_quarantine)
