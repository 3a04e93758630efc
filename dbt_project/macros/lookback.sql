{#
    dbt's is_incremental(), except that it answers false without asking the warehouse when the
    project is compiled offline: DBT_OFFLINE_COMPILE=1 is set, or dbt runs with
    --no-introspect. dbt's own version looks the model's table up, which needs a connection
    (an offline Redshift compile has none).
#}
{% macro is_incremental() -%}
    {%- if env_var('DBT_OFFLINE_COMPILE', '0') | lower in ('1', 'true', 'yes') -%}
        {{ return(false) }}
    {%- endif -%}
    {%- if not flags.INTROSPECT -%}
        {{ return(false) }}
    {%- endif -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}


{#
    The start of the lookback window of an incremental model: the newest landing time already
    in the model, minus var('lookback_minutes') (default 60). Rows landed at or after it are
    processed again; a model with no rows yet takes every row. relation defaults to this (the
    model being built); the cycle-window tests pass the tested model.
#}
{% macro lookback_cutoff(column='loaded_at', relation=none) -%}
    {%- set minutes = var('lookback_minutes', 60) | int -%}
    {%- if minutes < 0 -%}
        {{ exceptions.raise_compiler_error(
            "var lookback_minutes = " ~ minutes ~ ": the lookback window must be 0 minutes or more"
        ) }}
    {%- endif -%}
    {%- set source_relation = relation or this -%}
    {%- set newest = '(select max(' ~ column ~ ') from ' ~ source_relation ~ ')' -%}
    {%- set cutoff = dbt.dateadd('minute', -1 * minutes, newest) -%}
    {%- set floor = "cast('1900-01-01 00:00:00' as timestamp)" -%}
    {#- At run time the cutoff is looked up once and written as a literal, so the warehouse
        can skip the storage blocks outside the window (zone maps); a subquery would not
        let it. Compiling offline, in a unit test (whose `this` is a fixture), or before the
        relation exists keeps the subquery. -#}
    {%- set offline = env_var('DBT_OFFLINE_COMPILE', '0') | lower in ('1', 'true', 'yes') -%}
    {%- if execute and flags.INTROSPECT and not offline and model.resource_type != 'unit_test'
        and load_relation(source_relation) is not none -%}
        {%- set value = run_query('select ' ~ cutoff).columns[0].values()[0] -%}
        {%- if value is none -%}
            {{ floor }}
        {%- else -%}
            cast('{{ value }}' as timestamp)
        {%- endif -%}
    {%- else -%}
        coalesce({{ cutoff }}, {{ floor }})
    {%- endif -%}
{%- endmacro %}
