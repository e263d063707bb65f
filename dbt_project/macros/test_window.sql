{#- Data tests on an incremental build check the recent window only; the daily full build checks all.

    A test of a model (or source) whose meta names a `test_window_column` reads only the rows with
    that event time at or after `test_window_start()`: the `lookback_hours` before the raw layer's
    latest event time, the same window the incremental models re-process. So an incremental build's
    tests cost the same whatever the history holds: the bound is a literal, and DuckLake prunes
    files and day partitions on it (the staging views' dedupe lets filters on occurred_at through).

    Every test reads its whole model when the environment variable `DBT_CDR_TESTS` is `full` (the
    Dagster job `dbt_daily_build` and a `full_refresh` run set it) or on `--full-refresh`. What the
    window skips (a bad row older than the window) the daily full build finds. A test's own `where`
    config still applies, inside the window. -#}
{% macro get_where_subquery(relation) -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set column = test_window_column() -%}
    {%- if column -%}
        {%- do conditions.append(column ~ ' >= ' ~ test_window_start()) -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ conditions | join(' and ') ~ ') dbt_subquery') -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}

{#- The tested node's `test_window_column` meta, or none when this build tests every row. -#}
{% macro test_window_column() -%}
    {%- if not execute or flags.FULL_REFRESH or env_var('DBT_CDR_TESTS', 'window') == 'full' -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- set tested_id = model.get('attached_node') or (model.depends_on.nodes | last) -%}
    {%- set tested = graph.nodes.get(tested_id) or graph.sources.get(tested_id) -%}
    {%- if tested is none -%}
        {%- do return(none) -%}
    {%- endif -%}
    {%- do return(tested.config.get('meta', {}).get('test_window_column') or tested.get('meta', {}).get('test_window_column')) -%}
{%- endmacro %}

{#- The window's start, a literal: `lookback_hours` before the latest event time landed, or before
    now when an event claims a time past now (a producer's wrong clock must not empty the window).
    Both maxima come from DuckLake's column statistics, not from a scan. -#}
{% macro test_window_start() -%}
    {%- set usage_events = api.Relation.create(database=target.database, schema='raw', identifier='usage_events') -%}
    {%- set member_events = api.Relation.create(database=target.database, schema='raw', identifier='member_events') -%}
    {%- set query -%}
        select least(
            greatest(
                (select max(occurred_at) from {{ usage_events }}),
                (select max(occurred_at) from {{ member_events }})
            ),
            current_timestamp
        ) - interval '{{ var("lookback_hours") }} hours'
    {%- endset -%}
    {%- set value = run_query(query).columns[0].values()[0] -%}
    {%- if value is none -%}
        {{- "timestamptz '-infinity'" -}}
    {%- else -%}
        timestamptz '{{ value.isoformat() }}'
    {%- endif -%}
{%- endmacro %}
