{#
    Grain: one row per calendar day from the earliest to the latest survey or flight date.
    A portable date spine: five cross-joined digit lists number up to 100,000 days (273 years),
    and dbt.dateadd turns each number into a day.
#}

with

surveys as (
    select * from {{ ref('int_surveys__deduplicated') }}
),

bounds as (
    select
        min(first_day) as first_day,
        max(last_day) as last_day
    from (
        select
            min(survey_date) as first_day,
            max(survey_date) as last_day
        from surveys
        union all
        select
            min(flight_date) as first_day,
            max(flight_date) as last_day
        from surveys
    ) as per_column
),

digits as (
    select 0 as digit
    union all select 1
    union all select 2
    union all select 3
    union all select 4
    union all select 5
    union all select 6
    union all select 7
    union all select 8
    union all select 9
),

day_numbers as (
    select
        ones.digit
        + 10 * tens.digit
        + 100 * hundreds.digit
        + 1000 * thousands.digit
        + 10000 * ten_thousands.digit as day_number
    from digits as ones
    cross join digits as tens
    cross join digits as hundreds
    cross join digits as thousands
    cross join digits as ten_thousands
),

spine as (
    select cast({{ dbt.dateadd('day', 'day_numbers.day_number', 'bounds.first_day') }} as date)
        as date_day
    from day_numbers
    cross join bounds
    where day_numbers.day_number
        <= {{ dbt.datediff('bounds.first_day', 'bounds.last_day', 'day') }}
),

final as (
    select
        cast(date_day as date) as date_day,
        cast(extract(year from date_day) as integer) as year_number,
        cast(extract(quarter from date_day) as integer) as quarter_number,
        cast(extract(month from date_day) as integer) as month_number,
        cast(extract(day from date_day) as integer) as day_of_month,
        -- 0 = Sunday ... 6 = Saturday on every supported engine
        cast(extract(dow from date_day) as integer) as day_of_week,
        cast(
            case cast(extract(dow from date_day) as integer)
                when 0 then 'Sunday'
                when 1 then 'Monday'
                when 2 then 'Tuesday'
                when 3 then 'Wednesday'
                when 4 then 'Thursday'
                when 5 then 'Friday'
                else 'Saturday'
            end as varchar(9)
        ) as day_name,
        cast({{ dbt.date_trunc('week', 'date_day') }} as date) as week_start,
        cast({{ dbt.date_trunc('month', 'date_day') }} as date) as month_start,
        case when extract(dow from date_day) in (0, 6) then true else false end as is_weekend
    from spine
)

select * from final
