{#
    Grain: one row per calendar day from the first to the last survey submission date,
    days without surveys included with zero responses. The rolling rate is the satisfied
    surveys of the last 7 calendar days (the day and the 6 before it) over the responses of
    those days; the spine has every day, so 7 rows are 7 days.
#}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

calendar as (
    select * from {{ ref('dim_date') }}
),

daily as (
    select
        survey_date,
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from surveys
    group by survey_date
),

survey_days as (
    select
        calendar.date_day,
        coalesce(daily.responses, 0) as responses,
        coalesce(daily.satisfied, 0) as satisfied
    from calendar
    left join daily
        on calendar.date_day = daily.survey_date
    where calendar.date_day >= (select min(survey_date) from surveys)
        and calendar.date_day <= (select max(survey_date) from surveys)
),

rolling as (
    select
        date_day,
        responses,
        satisfied,
        sum(responses) over (
            order by date_day rows between 6 preceding and current row
        ) as rolling_7d_responses,
        sum(satisfied) over (
            order by date_day rows between 6 preceding and current row
        ) as rolling_7d_satisfied
    from survey_days
),

final as (
    select
        cast(date_day as date) as date_day,
        cast(responses as bigint) as responses,
        cast(satisfied as bigint) as satisfied,
        cast(satisfied as double precision) / nullif(responses, 0) as satisfaction_rate,
        cast(rolling_7d_responses as bigint) as rolling_7d_responses,
        cast(rolling_7d_satisfied as bigint) as rolling_7d_satisfied,
        cast(rolling_7d_satisfied as double precision) / nullif(rolling_7d_responses, 0)
            as rolling_7d_satisfaction_rate
    from rolling
)

select * from final
