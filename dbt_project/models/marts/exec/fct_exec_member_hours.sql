{#- Closed history of the executives' view: one row per member and UTC hour with activity, calls
    attempted, answered and dropped, and revenue. Only hours that ended before the as-of time
    ({{ doc('as_of') }}) are written, so a row never misses events still in flight; the view
    `rpt_exec_kpis_intraday` adds everything after the last written hour from the raw layer at query
    time. Whole hours from the lookback on are recomputed each run (delete+insert on hour_start). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_start',
        on_schema_change='append_new_columns',
    )
}}

{%- set since = lookback_start() %}

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
    and events.occurred_at < (select date_trunc('hour', as_of) from {{ ref('rpt_exec_as_of') }})
group by all
