{#
    Grain: one row per delay type (departure, arrival) and delay band. Every known band is
    listed, with zero responses if none fell in it; 'unknown' (a null delay) only when some did.
#}

with

surveys as (
    select * from {{ ref('fct_survey_responses') }}
),

bands as (
    {{ delay_bands_relation() }}
),

delay_types as (
    select 'departure' as delay_type
    union all
    select 'arrival'
),

grid as (
    select
        delay_types.delay_type,
        bands.delay_band,
        bands.band_order
    from delay_types
    cross join bands
),

-- The surveys are read once, into at most one row per pair of bands, and rolled up from there.
band_pairs as (
    select
        departure_delay_band,
        arrival_delay_band,
        count(*) as responses,
        sum(case when is_satisfied then 1 else 0 end) as satisfied
    from surveys
    group by departure_delay_band, arrival_delay_band
),

counts as (
    select
        'departure' as delay_type,
        departure_delay_band as delay_band,
        sum(responses) as responses,
        sum(satisfied) as satisfied
    from band_pairs
    group by departure_delay_band

    union all

    select
        'arrival' as delay_type,
        arrival_delay_band as delay_band,
        sum(responses) as responses,
        sum(satisfied) as satisfied
    from band_pairs
    group by arrival_delay_band
),

joined as (
    select
        grid.delay_type,
        grid.delay_band,
        grid.band_order,
        coalesce(counts.responses, 0) as responses,
        coalesce(counts.satisfied, 0) as satisfied
    from grid
    left join counts
        on grid.delay_type = counts.delay_type
        and grid.delay_band = counts.delay_band
    where grid.delay_band <> 'unknown' or counts.responses > 0
),

final as (
    select
        cast(delay_type as varchar(16)) as delay_type,
        cast(delay_band as varchar(16)) as delay_band,
        cast(band_order as integer) as band_order,
        cast(responses as bigint) as responses,
        cast(satisfied as bigint) as satisfied,
        cast(satisfied as double precision) / nullif(responses, 0) as satisfaction_rate
    from joined
)

select * from final
