{# Grain: one row per airport (IATA code), from the airports seed. #}

with

airports as (
    select * from {{ ref('airports') }}
),

final as (
    select
        cast(airport_code as varchar(3)) as airport_code,
        cast(airport_name as varchar) as airport_name,
        cast(city as varchar) as city,
        cast(country_code as varchar(2)) as country_code,
        cast(latitude as double precision) as latitude,
        cast(longitude as double precision) as longitude,
        cast(timezone as varchar) as timezone
    from airports
)

select * from final
