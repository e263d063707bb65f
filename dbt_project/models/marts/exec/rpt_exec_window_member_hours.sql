{#- Per span (today, same_time_last_week), hour of day and member: the KPI contributions, from the
    closed hours of `fct_exec_member_hours` up to `*_live_from` and from the raw layer (the rows of
    `fct_exec_activity_events`) after it, up to the span's as-of time; each row carries the as-of
    time. A view: the raw part is read at query time, so an event landed a moment ago is in the next
    query. -#}
{{ config(materialized='view') }}
-- depends_on: {{ ref('fct_exec_activity_events') }}
-- depends_on: {{ ref('rpt_exec_windows') }}

{#- One read of the raw layer per query serves the as-of time and today's live part: the rows since
    the closed hours of `fct_exec_member_hours` (`recent`, pruned by DuckLake at query time). The
    as-of time and the spans come from the same macros as `rpt_exec_as_of` and `rpt_exec_windows`,
    the live rows from the same macro as `fct_exec_activity_events`. Last week's live part (the
    partial hour up to last week's as-of time) is a second read, pruned to that span. It also carries
    a static bound that is always true: without it DuckDB's common-subplan optimizer (1.5) merges the
    two reads into one that reads the whole table and filters afterwards (found by experiment; the
    pruning is checked by tests/transform/test_incremental_windows.py). -#}
{%- set last_week -%}
    occurred_at < timestamptz '9999-12-31 00:00:00+00'
    and occurred_at >= (select last_week_live_from from windows)
    and occurred_at <= (select last_week_as_of from windows)
{%- endset %}

with closed_until as materialized (
    select max(hour_start) + interval 1 hour as closed_until from {{ ref('fct_exec_member_hours') }}
),

recent as materialized (
    {{ exec_raw_activity_rows(
        "occurred_at >= (select coalesce(closed_until, timestamptz '-infinity') from closed_until)"
    ) | indent(4) }}
),

watermarks as (
    {{ exec_source_watermarks("(select closed_until from closed_until)", bounding_only=true, rows='recent') | indent(4) }}
),

as_of as (
    {{ exec_as_of('watermarks') | indent(4) }}
),

window_base as (
    select as_of.as_of, closed_until.closed_until from as_of cross join closed_until
),

windows as materialized (
    {{ exec_windows('window_base') | indent(4) }}
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
    from (
        select * from (
            {{ exec_activity_events(
                "occurred_at >= (select today_live_from from windows) and occurred_at <= (select as_of from windows)",
                rows='recent',
            ) | indent(12) }}
        )
        union all
        select * from (
            {{ exec_activity_events(last_week) | indent(12) }}
        )
    ) as events
    cross join windows
    group by all
),

contributions as (
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
)

-- Every row carries its span's as-of time, and each span has at least one row (NULL hour and member
-- when nothing happened in it), so the reports read the as-of time from here: a second reference
-- to `rpt_exec_windows` would compute it (and scan the raw layer) a second time per query.
select
    periods.period,
    contributions.hour_of_day,
    contributions.member_id,
    contributions.is_active,
    contributions.call_attempts,
    contributions.answered_calls,
    contributions.dropped_calls,
    contributions.charge_micros,
    windows.as_of,
    windows.today_start,
    windows.last_week_as_of
from windows
cross join (values ('today'), ('same_time_last_week')) as periods (period)
left join contributions on contributions.period = periods.period
