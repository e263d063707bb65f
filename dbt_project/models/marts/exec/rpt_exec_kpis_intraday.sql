{#- The executives' real-time view: each KPI so far today beside the same time last week.
    "Today" is the UTC day of the as-of time ({{ doc('as_of') }}); "same time last week" is the
    same span (midnight to the as-of time of day) seven days earlier. -#}
with bounds as (
    select
        as_of,
        date_trunc('day', as_of) as today_start,
        date_trunc('day', as_of) - interval 7 day as last_week_start,
        as_of - interval 7 day as last_week_as_of
    from (select {{ as_of_timestamp() }} as as_of)
),

windows as (
    select 'today' as period, today_start as window_start, as_of as window_end from bounds
    union all
    select 'same_time_last_week', last_week_start, last_week_as_of from bounds
),

usage as (
    select usage.*
    from {{ ref('int_usage_events_unioned') }} as usage
    where usage.occurred_at >= (select last_week_start from bounds)
),

calls as (
    select calls.*
    from {{ ref('fct_calls') }} as calls
    where calls.attempted_at >= (select last_week_start from bounds) - interval 1 day
),

per_window as (
    select
        windows.period,
        (
            select count(distinct member_id) from usage
            where counts_as_activity and occurred_at between windows.window_start and windows.window_end
        ) as active_members,
        (
            select count(*) from calls
            where attempted_at between windows.window_start and windows.window_end
        ) as calls,
        (
            select count(*) from calls
            where is_answered and answered_at between windows.window_start and windows.window_end
        ) as answered_calls,
        (
            select count(*) from calls
            where is_dropped and released_at between windows.window_start and windows.window_end
        ) as dropped_calls,
        (
            select coalesce(sum(charge_micros), 0) from usage
            where activity_kind = 'charge' and occurred_at between windows.window_start and windows.window_end
        ) as revenue_micros
    from windows
),

kpis as (
    select period, 'active_members' as kpi, 1 as kpi_order, cast(active_members as double) as value
    from per_window
    union all
    select period, 'calls', 2, cast(calls as double) from per_window
    union all
    select period, 'dropped_call_rate', 3, {{ kpi_ratio('dropped_calls', 'answered_calls') }} from per_window
    union all
    select period, 'revenue', 4, revenue_micros / 1e6 from per_window
)

select
    kpis.kpi,
    kpis.kpi_order,
    case kpis.kpi
        when 'active_members' then 'Active members'
        when 'calls' then 'Calls attempted'
        when 'dropped_call_rate' then 'Dropped-call rate'
        when 'revenue' then 'Revenue so far'
    end as kpi_label,
    case kpis.kpi
        when 'active_members' then 'members'
        when 'calls' then 'calls'
        when 'dropped_call_rate' then 'ratio'
        when 'revenue' then 'currency'
    end as unit,
    bounds.as_of,
    bounds.today_start,
    bounds.last_week_as_of,
    max(kpis.value) filter (where kpis.period = 'today') as value_today,
    max(kpis.value) filter (where kpis.period = 'same_time_last_week') as value_same_time_last_week,
    max(kpis.value) filter (where kpis.period = 'today')
        - max(kpis.value) filter (where kpis.period = 'same_time_last_week') as change_abs,
    {{ kpi_ratio(
        "max(kpis.value) filter (where kpis.period = 'today') - max(kpis.value) filter (where kpis.period = 'same_time_last_week')",
        "max(kpis.value) filter (where kpis.period = 'same_time_last_week')"
    ) }} as change_ratio
from kpis
cross join bounds
group by all
order by kpis.kpi_order
