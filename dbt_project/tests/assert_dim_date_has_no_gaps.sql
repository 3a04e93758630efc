-- dim_date holds every day between its first and last day, once.

with

spine as (
    select
        count(*) as days,
        count(distinct date_day) as distinct_days,
        min(date_day) as first_day,
        max(date_day) as last_day
    from {{ ref('dim_date') }}
)

select * from spine
where days > 0
    and (
        days <> distinct_days
        or days <> {{ dbt.datediff('first_day', 'last_day', 'day') }} + 1
    )
