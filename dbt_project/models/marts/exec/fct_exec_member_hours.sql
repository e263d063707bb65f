{#- Closed history of the executives' view: one row per member and UTC hour with activity, calls
    attempted, answered and dropped, and revenue. Only hours that ended before the as-of time
    ({{ doc('as_of') }}) are written, so a row never misses events still in flight; the view
    `rpt_exec_kpis_intraday` adds everything after the last written hour from the raw layer at query
    time. Whole hours from the lookback on are recomputed each run (delete+insert on hour_start).
    The as-of time is computed here from the same macro as `rpt_exec_source_watermarks`, whose scan
    starts where this model's closed hours end (so that view depends on this model, not the reverse). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_start',
        on_schema_change='append_new_columns',
    )
}}

{%- set since = lookback_start() %}
{%- if var('as_of') %}
    {%- set as_of = "timestamptz '" ~ var('as_of') ~ "'" %}
{%- else %}
    {#- The floor of the watermark scan: where the hours closed by the previous run end. -#}
    {%- set floor = "(select max(hour_start) + interval 1 hour from " ~ this ~ ")" if is_incremental() else "null::timestamptz" %}
    {%- set as_of = "(select min(complete_through) filter (where bounds_as_of) from (" ~ exec_source_watermarks(floor, bounding_only=true) ~ "))" %}
{%- endif %}

select
    date_trunc('hour', events.occurred_at) as hour_start,
    events.member_id,
    bool_or(events.counts_as_activity) as is_active,
    cast(sum(events.call_attempts) as bigint) as call_attempts,
    cast(sum(events.answered_calls) as bigint) as answered_calls,
    cast(sum(events.dropped_calls) as bigint) as dropped_calls,
    cast(sum(events.charge_micros) as bigint) as charge_micros,
    max(events.occurred_at) as last_event_at
from {{ ref('fct_exec_activity_events') }} as events
where events.occurred_at >= date_trunc('hour', {{ since }})
    and events.occurred_at < date_trunc('hour', {{ as_of }})
group by all
