{#- The executives' real-time view: each KPI so far today beside the same time last week, over
    exactly the same span ({{ doc('as_of') }}). A view: closed hours come from an incremental model,
    the rest from the raw layer at query time, so it is fresh within seconds without dbt runs. -#}
{{ config(materialized='view') }}

with per_window as materialized (
    -- Both spans are always present in `rpt_exec_window_member_hours`, each row with its as-of time.
    select
        rows.period,
        count(distinct rows.member_id) filter (where rows.is_active) as active_members,
        coalesce(sum(rows.call_attempts), 0) as calls,
        coalesce(sum(rows.answered_calls), 0) as answered_calls,
        coalesce(sum(rows.dropped_calls), 0) as dropped_calls,
        coalesce(sum(rows.charge_micros), 0) as revenue_micros,
        max(rows.as_of) as as_of,
        max(rows.today_start) as today_start,
        max(rows.last_week_as_of) as last_week_as_of
    from {{ ref('rpt_exec_window_member_hours') }} as rows
    group by rows.period
),

windows as (
    select max(as_of) as as_of, max(today_start) as today_start, max(last_week_as_of) as last_week_as_of
    from per_window
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
    windows.as_of,
    windows.today_start,
    windows.last_week_as_of,
    max(kpis.value) filter (where kpis.period = 'today') as value_today,
    max(kpis.value) filter (where kpis.period = 'same_time_last_week') as value_same_time_last_week,
    max(kpis.value) filter (where kpis.period = 'today')
        - max(kpis.value) filter (where kpis.period = 'same_time_last_week') as change_abs,
    {{ kpi_ratio(
        "max(kpis.value) filter (where kpis.period = 'today') - max(kpis.value) filter (where kpis.period = 'same_time_last_week')",
        "max(kpis.value) filter (where kpis.period = 'same_time_last_week')"
    ) }} as change_ratio
from kpis
cross join windows
group by all
order by kpis.kpi_order
