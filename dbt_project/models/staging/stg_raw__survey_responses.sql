{#
    One row per landed survey row of the batch path, renamed and typed, with labels normalised
    and every rating split into a score (0 -> null) and a not-applicable flag. The columns come
    from the staged_survey_columns macro, which stg_raw__survey_events shares (channel
    'stream'), so the two channels union without reshaping.
    PII boundary: the passenger name and the customer id stay in raw; only a hash leaves.
#}

with

source as (
    select * from {{ source('raw', 'survey_responses') }}
),

renamed as (
    select
        {{ staged_survey_columns('batch') }}
    from source
)

select * from renamed
