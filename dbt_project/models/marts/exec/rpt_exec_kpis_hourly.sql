{#- Today hour by hour beside the same hours last week (calls attempted, cumulative revenue), up to
    the as-of time and over exactly the same span ({{ doc('as_of') }}). A view, as live as
    `rpt_exec_kpis_intraday`. Feeds the chart on the executives' dashboard and in Dagster. -#}
{{ config(materialized='view') }}

with rows as materialized (
    -- Each row carries its span's as-of time (one read of the view, one as-of computation).
    select * from {{ ref('rpt_exec_window_member_hours') }}
),

windows as (
    select max(today_start) as today_start, max(as_of) as as_of from rows
),

hours as (
    select
        cast(h as integer) as hour_of_day,
        windows.today_start + to_hours(cast(h as integer)) as hour_start
    from windows, range(0, 24) as t(h)
    where windows.today_start + to_hours(cast(h as integer)) <= windows.as_of
),

per_hour as (
    select
        hour_of_day,
        coalesce(sum(call_attempts) filter (where period = 'today'), 0) as calls_today,
        coalesce(sum(call_attempts) filter (where period = 'same_time_last_week'), 0)
            as calls_same_time_last_week,
        coalesce(sum(charge_micros) filter (where period = 'today'), 0) as revenue_micros_today,
        coalesce(sum(charge_micros) filter (where period = 'same_time_last_week'), 0)
            as revenue_micros_same_time_last_week
    from rows
    where hour_of_day is not null
    group by hour_of_day
)

select
    hours.hour_of_day,
    hours.hour_start,
    cast(coalesce(per_hour.calls_today, 0) as bigint) as calls_today,
    cast(coalesce(per_hour.calls_same_time_last_week, 0) as bigint) as calls_same_time_last_week,
    sum(coalesce(per_hour.revenue_micros_today, 0)) over (order by hours.hour_of_day) / 1e6
        as cumulative_revenue_today,
    sum(coalesce(per_hour.revenue_micros_same_time_last_week, 0)) over (order by hours.hour_of_day) / 1e6
        as cumulative_revenue_same_time_last_week
from hours
left join per_hour on per_hour.hour_of_day = hours.hour_of_day
order by hours.hour_of_day
