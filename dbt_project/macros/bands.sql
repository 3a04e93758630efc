{#
    Banding rules shared by the marts. Each returns a portable case expression; see
    _macros__docs.md for the bands and why they are drawn where they are.
#}

{% macro age_band(age_column) -%}
    case
        when {{ age_column }} is null then 'unknown'
        when {{ age_column }} < 18 then 'under 18'
        when {{ age_column }} < 25 then '18-24'
        when {{ age_column }} < 35 then '25-34'
        when {{ age_column }} < 45 then '35-44'
        when {{ age_column }} < 55 then '45-54'
        when {{ age_column }} < 65 then '55-64'
        else '65 and over'
    end
{%- endmacro %}


{% macro delay_band(minutes_column) -%}
    case
        when {{ minutes_column }} is null then 'unknown'
        when {{ minutes_column }} <= 0 then 'on time'
        when {{ minutes_column }} <= 15 then '1-15 min'
        when {{ minutes_column }} <= 30 then '16-30 min'
        when {{ minutes_column }} <= 60 then '31-60 min'
        when {{ minutes_column }} <= 120 then '61-120 min'
        else 'over 120 min'
    end
{%- endmacro %}


{% macro delay_band_order(minutes_column) -%}
    case
        when {{ minutes_column }} is null then 99
        when {{ minutes_column }} <= 0 then 1
        when {{ minutes_column }} <= 15 then 2
        when {{ minutes_column }} <= 30 then 3
        when {{ minutes_column }} <= 60 then 4
        when {{ minutes_column }} <= 120 then 5
        else 6
    end
{%- endmacro %}


{#
    Every delay band with its sort key, as rows (one select per band), so marts can show
    bands that have no responses.
#}
{% macro delay_bands_relation() -%}
    select 'on time' as delay_band, 1 as band_order
    union all select '1-15 min', 2
    union all select '16-30 min', 3
    union all select '31-60 min', 4
    union all select '61-120 min', 5
    union all select 'over 120 min', 6
    union all select 'unknown', 99
{%- endmacro %}
