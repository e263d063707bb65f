{#- The lower bound an incremental run re-processes from: this model's high-water mark
    (max of `column`, the latest event time that contributed to a row) minus `lookback_hours`.
    Rendered as a literal at run time so DuckLake prunes files on it; on a first build or a full
    refresh it is the start of time. Keys with any event at or after the bound are recomputed in
    full and merged on the unique key, so a re-run, a late event within the window or a full
    refresh all end in the same rows. -#}
{% macro lookback_start(column='last_event_at') -%}
    {%- set floor = "timestamptz '1970-01-01 00:00:00+00'" -%}
    {%- if execute and is_incremental() -%}
        {%- set result = run_query(
            "select max(" ~ column ~ ") - interval '" ~ var('lookback_hours') ~ " hours' from " ~ this
        ) -%}
        {%- set value = result.columns[0].values()[0] -%}
        {%- if value is none -%}
            {{ floor }}
        {%- else -%}
            timestamptz '{{ value.isoformat() }}'
        {%- endif -%}
    {%- else -%}
        {{ floor }}
    {%- endif -%}
{%- endmacro %}

{#- Calendar day (UTC) of the lookback start: day-grain models recompute whole days. -#}
{% macro lookback_start_day(column='last_event_at') -%}
    cast(date_trunc('day', {{ lookback_start(column) }} at time zone 'UTC') as date)
{%- endmacro %}
