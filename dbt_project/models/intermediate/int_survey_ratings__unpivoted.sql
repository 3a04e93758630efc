{#
    One row per survey and service the survey's layout asked about (the raw rating was not
    null). A view: it is fifteen times the surveys, and its only reader, fct_service_ratings,
    is a view too. The unpivot is a cross join with a one-row-per-service list, so the surveys
    are read once. loaded_at is the survey copy's landing time; a filter on it (a stream
    cycle's test window) the engine pushes below the cross join to the surveys.
#}

with

surveys as (
    select * from {{ ref('int_surveys__deduplicated') }}
),

services as (
    {{ rating_services_relation() }}
),

unpivoted as (
    select
        surveys.survey_id,
        services.service,
        services.service_label,
        services.service_order,
        case services.service
            {%- for service in rating_services() %}
            when '{{ service.name }}' then surveys.{{ service.name }}_rating
            {%- endfor %}
        end as rating,
        case services.service
            {%- for service in rating_services() %}
            when '{{ service.name }}' then surveys.{{ service.name }}_is_not_applicable
            {%- endfor %}
        end as is_not_applicable,
        surveys.is_satisfied,
        surveys.survey_date,
        surveys.loaded_at
    from surveys
    cross join services
),

asked as (
    -- a null flag means the survey's layout did not ask about this service
    select * from unpivoted
    where is_not_applicable is not null
)

select * from asked
