{#
    The staged survey columns both channels share: ids and lineage, the flight, respondent and
    trip labels normalised, every rating split into a score (0 -> null) and a not-applicable
    flag, and the delays. Selected from a relation with the raw survey columns
    (ingestion/schema.py); only a hash of the customer id leaves raw.
#}
{% macro staged_survey_columns(channel) %}
        -- ids and lineage
        survey_id,
        cast({{ dbt.hash('customer_id') }} as varchar(32)) as passenger_key,
        '{{ channel }}' as channel,
        batch_id,
        source_file,
        source_line,
        loaded_at,

        -- flight
        carrier_code,
        flight_number,
        flight_id,
        flight_date,
        origin_airport,
        destination_airport,
        scheduled_departure_at,
        actual_departure_at,
        scheduled_arrival_at,
        actual_arrival_at,
        survey_submitted_at,
        cast(survey_submitted_at as date) as survey_date,

        -- respondent and trip, labels normalised (see the model's docs)
        case lower(trim(satisfaction))
            when 'satisfied' then 'satisfied'
            when 'dissatisfied' then 'dissatisfied'
            when 'neutral or dissatisfied' then 'neutral or dissatisfied'
        end as satisfaction,
        case
            when satisfaction is null then cast(null as boolean)
            when lower(trim(satisfaction)) = 'satisfied' then true
            else false
        end as is_satisfied,
        case lower(trim(gender))
            when 'male' then 'male'
            when 'female' then 'female'
        end as gender,
        case lower(trim(customer_type))
            when 'loyal customer' then 'loyal'
            when 'disloyal customer' then 'disloyal'
        end as customer_type,
        age,
        case lower(trim(type_of_travel))
            when 'personal travel' then 'personal'
            when 'business travel' then 'business'
        end as type_of_travel,
        case lower(trim(travel_class))
            when 'eco' then 'eco'
            when 'eco plus' then 'eco plus'
            when 'business' then 'business'
        end as travel_class,
        flight_distance,

        -- ratings: 1-5 is a score; 0 means "not applicable" and is never averaged
        {%- for service in rating_services() %}
        case when {{ service.name }} = 0 then cast(null as integer) else {{ service.name }} end
            as {{ service.name }}_rating,
        case
            when {{ service.name }} is null then cast(null as boolean)
            when {{ service.name }} = 0 then true
            else false
        end as {{ service.name }}_is_not_applicable,
        {%- endfor %}

        -- delays in whole minutes; a blank arrival delay stays null
        departure_delay_minutes,
        arrival_delay_minutes
{% endmacro %}
