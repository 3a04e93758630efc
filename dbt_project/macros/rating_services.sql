{#
    The services a survey can rate, in the canonical order of ingestion/schema.py
    RATING_COLUMNS, with the label dashboards show. Keep the two lists in step.
#}
{% macro rating_services() -%}
    {{ return([
        {'name': 'seat_comfort', 'label': 'Seat comfort'},
        {'name': 'departure_arrival_time_convenient', 'label': 'Departure/arrival time convenient'},
        {'name': 'food_and_drink', 'label': 'Food and drink'},
        {'name': 'gate_location', 'label': 'Gate location'},
        {'name': 'inflight_wifi_service', 'label': 'Inflight wifi service'},
        {'name': 'inflight_entertainment', 'label': 'Inflight entertainment'},
        {'name': 'online_support', 'label': 'Online support'},
        {'name': 'ease_of_online_booking', 'label': 'Ease of online booking'},
        {'name': 'on_board_service', 'label': 'On-board service'},
        {'name': 'leg_room_service', 'label': 'Leg room service'},
        {'name': 'baggage_handling', 'label': 'Baggage handling'},
        {'name': 'checkin_service', 'label': 'Check-in service'},
        {'name': 'cleanliness', 'label': 'Cleanliness'},
        {'name': 'online_boarding', 'label': 'Online boarding'},
        {'name': 'inflight_service', 'label': 'Inflight service'},
    ]) }}
{%- endmacro %}


{#
    The reasons a loader quarantines a row, as in ingestion/schema.py QUARANTINE_REASONS.
#}
{% macro quarantine_reasons() -%}
    {{ return([
        'wrong_field_count',
        'not_an_integer',
        'rating_out_of_range',
        'age_out_of_range',
        'negative_delay',
        'unknown_value',
        'empty_required_field',
        'repeated_header',
        'invalid_utf8',
        'blank_line',
        'truncated_json',
        'wrong_envelope',
        'schema_violation',
        'corrupt_gzip',
    ]) }}
{%- endmacro %}


{#
    The services as rows (service, service_label, service_order), one select per service, for
    models that join or cross join them.
#}
{% macro rating_services_relation() -%}
    {%- for service in rating_services() %}
    {% if not loop.first %}union all {% endif -%}
    select
        '{{ service.name }}' as service,
        '{{ service.label }}' as service_label,
        {{ loop.index }} as service_order
    {%- endfor %}
{%- endmacro %}
