{#- Per span (today, same_time_last_week), hour of day and member: the KPI contributions, from the
    closed hours of `fct_exec_member_hours` up to `*_live_from` and from the raw layer
    (`fct_exec_activity_events`) after it, up to the span's as-of time. A view: the raw part is read at
    query time, so an event landed a moment ago is in the next query. -#}
{{ config(materialized='view') }}
-- depends_on: {{ ref('rpt_exec_as_of') }}

{#- A literal lower bound for the raw read, so DuckLake prunes to recent day partitions: last week's
    midnight of the as-of time at build time. The as-of only moves forward, so it stays valid. -#}
{%- set since = "timestamptz '1970-01-01 00:00:00+00'" %}
{%- if var('as_of') %}
    {%- set since = "date_trunc('day', timestamptz '" ~ var('as_of') ~ "') - interval 7 day" %}
{%- elif execute %}
    {%- set result = run_query("select date_trunc('day', as_of) - interval 7 day from " ~ ref('rpt_exec_as_of')) %}
    {%- set value = result.columns[0].values()[0] %}
    {%- if value is not none %}
        {%- set since = "timestamptz '" ~ value.isoformat() ~ "'" %}
    {%- endif %}
{%- endif %}

with windows as materialized (
    -- Once per query: the as-of time behind it scans the landed opening events.
    select * from {{ ref('rpt_exec_windows') }}
),

closed as (
    select
        case when hours.hour_start >= windows.today_start then 'today' else 'same_time_last_week' end as period,
        hours.hour_start,
        hours.member_id,
        hours.is_active,
        hours.call_attempts,
        hours.answered_calls,
        hours.dropped_calls,
        hours.charge_micros
    from {{ ref('fct_exec_member_hours') }} as hours
    cross join windows
    where (hours.hour_start >= windows.today_start and hours.hour_start < windows.today_live_from)
        or (hours.hour_start >= windows.last_week_start and hours.hour_start < windows.last_week_live_from)
),

live as (
    select
        case when events.occurred_at >= windows.today_start then 'today' else 'same_time_last_week' end
            as period,
        date_trunc('hour', events.occurred_at) as hour_start,
        events.member_id,
        bool_or(events.counts_as_activity) as is_active,
        cast(sum(events.call_attempts) as bigint) as call_attempts,
        cast(sum(events.answered_calls) as bigint) as answered_calls,
        cast(sum(events.dropped_calls) as bigint) as dropped_calls,
        cast(sum(events.charge_micros) as bigint) as charge_micros
    from {{ ref('fct_exec_activity_events') }} as events
    cross join windows
    where events.occurred_at >= {{ since }}
        and events.occurred_at >= windows.last_week_live_from
        and (
            (events.occurred_at >= windows.today_live_from and events.occurred_at <= windows.as_of)
            or events.occurred_at <= windows.last_week_as_of
        )
    group by all
)

select
    period,
    cast(hour(hour_start) as integer) as hour_of_day,
    member_id,
    is_active,
    call_attempts,
    answered_calls,
    dropped_calls,
    charge_micros
from closed
union all
select
    period,
    cast(hour(hour_start) as integer),
    member_id,
    is_active,
    call_attempts,
    answered_calls,
    dropped_calls,
    charge_micros
from live
