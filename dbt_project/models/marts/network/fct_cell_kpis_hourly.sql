{#- Network KPIs per cell and UTC hour of seizure (see the column docs for each formula).
    Every count, drops included, is at the cell where the call was attempted (the seizure cell), so
    the dropped-call rate's numerator and denominator are the same calls (see the `dropped_call`
    doc). Every hour touched by a changed call is recomputed for all cells and replaces that hour (delete+insert on hour_start), so no stale cell row survives a re-run. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='hour_start',
        on_schema_change='append_new_columns',
    )
}}

with changed_hours as (
    select distinct attempt_hour
    from {{ ref('fct_calls') }}
    where last_event_at >= {{ lookback_start() }}
),

calls as (
    select calls.*
    from {{ ref('fct_calls') }} as calls
    semi join changed_hours on calls.attempt_hour = changed_hours.attempt_hour
    {% if is_incremental() -%}
    where calls.attempted_at >= (select min(attempt_hour) from changed_hours)
    {%- endif %}
),

at_attempt_cell as (
    select
        attempt_cell_id as cell_id,
        attempt_hour as hour_start,
        count(*) as seizures,
        count(*) filter (where is_answered) as answered_calls,
        count(*) filter (where failure_category = 'user_busy') as user_busy_failures,
        count(*) filter (where failure_category = 'no_answer') as no_answer_failures,
        count(*) filter (where failure_category = 'subscriber_absent') as subscriber_absent_failures,
        count(*) filter (where failure_category = 'call_rejected') as rejected_failures,
        count(*) filter (where failure_category = 'congestion') as congestion_failures,
        count(*) filter (where is_failed) as failed_calls,
        count(*) filter (where is_dropped) as dropped_calls,
        count(*) filter (where call_duration_s is not null) as released_answered_calls,
        coalesce(sum(call_duration_s), 0) as answered_duration_s,
        max(last_event_at) as last_event_at
    from calls
    group by all
)

select
    cell_id,
    hour_start,
    cast(hour_start as date) as hour_date,
    seizures,
    answered_calls,
    user_busy_failures,
    no_answer_failures,
    subscriber_absent_failures,
    rejected_failures,
    congestion_failures,
    failed_calls,
    dropped_calls,
    released_answered_calls,
    answered_duration_s,
    {{ kpi_ratio('answered_calls', 'seizures') }} as answer_seizure_ratio,
    {{ kpi_ratio('answered_calls + user_busy_failures + no_answer_failures + subscriber_absent_failures + rejected_failures', 'seizures') }}
        as network_effectiveness_ratio,
    {{ kpi_ratio('answered_duration_s', 'released_answered_calls') }} as average_call_duration_s,
    {{ kpi_ratio('dropped_calls', 'answered_calls') }} as dropped_call_rate,
    {{ kpi_ratio('congestion_failures', 'seizures') }} as blocking_rate,
    last_event_at
from at_attempt_cell
