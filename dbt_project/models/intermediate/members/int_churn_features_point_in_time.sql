{#- The churn model's features, point in time: one row per as-of date and member at risk on it,
    computed from events strictly before the as-of date (midnight UTC) only, and the label (churn
    within `churn_horizon_days` from it). The as-of dates are the backtest's cut-offs plus today's
    (the as-of day of the data); see the `churn_model` doc. -#}
{{ config(materialized='table') }}

{%- set horizon = var('churn_horizon_days') | int %}
{%- set recent = var('churn_recent_days') | int %}
{%- set baseline = var('churn_baseline_days') | int %}
{%- set spend = var('churn_spend_days') | int %}
{%- set drop_window = var('churn_drop_window_days') | int %}
{%- set min_answered = var('churn_min_answered_calls') | int %}
{%- set step = var('churn_backtest_step_days') | int %}
{%- set min_history = var('churn_backtest_min_history_days') | int %}

with member_days as (
    select * from {{ ref('int_member_days_aggregated') }}
),

bounds as (
    select
        min(activity_date) as first_data_date,
        cast({{ as_of_timestamp() }} as date) as today,
        -- the latest cut-off whose label window [cut-off, cut-off + horizon) has fully passed
        cast({{ as_of_timestamp() }} - interval {{ horizon }} day as date) as last_cutoff
    from member_days
),

cutoffs as (
    select bounds.last_cutoff - cast(k * {{ step }} as integer) as as_of_date, true as is_backtest_cutoff
    from bounds
    cross join range(0, 100000) as r(k)
    where bounds.last_cutoff - cast(k * {{ step }} as integer) >= bounds.first_data_date + {{ min_history }}
    union all
    select today, false from bounds
),

lifecycle as (
    select * from {{ ref('stg_raw__member_events') }}
),

members as (
    select
        member_id,
        min(occurred_at) filter (where event_type = 'member_activated') as activated_at,
        min(occurred_at) filter (where event_type in ('port_out_requested', 'member_deactivated')) as churned_at
    from lifecycle
    group by member_id
),

population as (
    select
        cutoffs.as_of_date,
        cutoffs.is_backtest_cutoff,
        members.member_id,
        members.activated_at,
        members.churned_at,
        -- the first whole day observed for this member: data and membership both under way
        greatest(bounds.first_data_date, cast(members.activated_at as date) + 1) as history_start
    from cutoffs
    cross join bounds
    join members
        on members.activated_at < cutoffs.as_of_date
        and (members.churned_at is null or members.churned_at >= cutoffs.as_of_date)
),

plan_at_cutoff as (
    select
        population.as_of_date,
        population.member_id,
        last(lifecycle.plan_type order by lifecycle.occurred_at, lifecycle.event_id) as plan_type
    from population
    join lifecycle
        on lifecycle.member_id = population.member_id
        and lifecycle.occurred_at < population.as_of_date
        and lifecycle.plan_type is not null
    group by all
),

usage as (
    select
        population.as_of_date,
        population.member_id,
        max(d.activity_date) filter (where d.is_active) as last_active_date,
        max(d.activity_date) filter (where d.topups > 0) as last_topup_date,
        sum(d.call_attempts + d.sms_sent + d.data_sessions)
            filter (where d.activity_date >= population.as_of_date - {{ recent }}) as usage_recent,
        sum(d.call_attempts + d.sms_sent + d.data_sessions)
            filter (where d.activity_date < population.as_of_date - {{ recent }}
                and d.activity_date >= population.as_of_date - {{ recent + baseline }}) as usage_baseline,
        sum(d.dropped_calls) filter (where d.activity_date >= population.as_of_date - {{ drop_window }})
            as dropped_calls,
        sum(d.released_answered_calls) filter (where d.activity_date >= population.as_of_date - {{ drop_window }})
            as released_answered_calls,
        sum(d.spend_micros - d.plan_fee_spend_micros)
            filter (where d.activity_date >= population.as_of_date - {{ spend }}) as spend_recent,
        sum(d.spend_micros - d.plan_fee_spend_micros)
            filter (where d.activity_date < population.as_of_date - {{ spend }}
                and d.activity_date >= population.as_of_date - {{ 2 * spend }}) as spend_prior
    from population
    join member_days as d
        on d.member_id = population.member_id
        and d.activity_date < population.as_of_date
    group by all
),

features as (
    select
        p.as_of_date,
        p.is_backtest_cutoff,
        p.member_id,
        plan_at_cutoff.plan_type,
        cast(p.as_of_date - cast(p.activated_at as date) as integer) as tenure_days,
        cast(greatest(p.as_of_date - p.history_start, 0) as integer) as observed_days,
        cast(p.as_of_date - u.last_active_date as integer) as days_since_last_activity,
        cast(p.as_of_date - u.last_topup_date as integer) as days_since_last_topup,
        p.as_of_date - {{ recent + baseline }} >= p.history_start as usage_trend_complete,
        p.as_of_date - {{ 2 * spend }} >= p.history_start as spend_trend_complete,
        cast(coalesce(u.usage_recent, 0) as bigint) as usage_events_recent,
        cast(coalesce(u.usage_baseline, 0) as bigint) as usage_events_baseline,
        cast(coalesce(u.dropped_calls, 0) as bigint) as dropped_calls,
        cast(coalesce(u.released_answered_calls, 0) as bigint) as released_answered_calls,
        cast(coalesce(u.spend_recent, 0) as bigint) as spend_micros_recent,
        cast(coalesce(u.spend_prior, 0) as bigint) as spend_micros_prior,
        p.churned_at,
        p.churned_at is not null and p.churned_at < p.as_of_date + interval {{ horizon }} day as churned_within_horizon
    from population as p
    left join plan_at_cutoff on plan_at_cutoff.as_of_date = p.as_of_date and plan_at_cutoff.member_id = p.member_id
    left join usage as u on u.as_of_date = p.as_of_date and u.member_id = p.member_id
),

windowed as (
    -- a window the member's observed history does not cover is NULL, never a silent 0
    select
        * replace (
            case when usage_trend_complete then usage_events_recent end as usage_events_recent,
            case when usage_trend_complete then usage_events_baseline end as usage_events_baseline,
            case when spend_trend_complete then spend_micros_recent end as spend_micros_recent,
            case when spend_trend_complete then spend_micros_prior end as spend_micros_prior
        ),
        case when usage_trend_complete then
            {{ kpi_ratio('usage_events_recent / ' ~ recent ~ '.0', 'usage_events_baseline / ' ~ baseline ~ '.0') }}
        end as usage_trend_ratio,
        case when spend_trend_complete then {{ kpi_ratio('spend_micros_recent', 'spend_micros_prior') }} end
            as spend_trend_ratio,
        case when released_answered_calls >= {{ min_answered }} then
            {{ kpi_ratio('dropped_calls', 'released_answered_calls') }}
        end as dropped_call_rate
    from features
),

components as (
    select
        *,
        cast(case
            when days_since_last_activity is not null then least(days_since_last_activity / 14.0, 1)
            when observed_days >= 14 then 1
        end as double) as inactivity_component,
        cast(case
            when plan_type is distinct from 'prepaid' then 0
            when days_since_last_topup is not null then least(days_since_last_topup / 30.0, 1)
            when observed_days >= 30 then 1
        end as double) as topup_lapse_component,
        -- DuckDB's least() skips NULLs, so each NULL input is kept NULL explicitly
        cast(case when usage_trend_ratio is not null then 1 - least(usage_trend_ratio, 1) end as double)
            as usage_decline_component,
        cast(case when dropped_call_rate is not null then least(dropped_call_rate / 0.05, 1) end as double)
            as dropped_call_component,
        cast(case when spend_trend_ratio is not null then 1 - least(spend_trend_ratio, 1) end as double)
            as spend_decline_component,
        cast(case when tenure_days < 90 then 1 else 0 end as double) as new_member_component
    from windowed
)

select
    *,
    -- the weighted mean of the components that have enough data; the new-member one always has
    cast(round(
        (
            coalesce(0.30 * inactivity_component, 0)
            + coalesce(0.15 * topup_lapse_component, 0)
            + coalesce(0.25 * usage_decline_component, 0)
            + coalesce(0.15 * dropped_call_component, 0)
            + coalesce(0.10 * spend_decline_component, 0)
            + 0.05 * new_member_component
        ) / (
            0.30 * (inactivity_component is not null)::int
            + 0.15 * (topup_lapse_component is not null)::int
            + 0.25 * (usage_decline_component is not null)::int
            + 0.15 * (dropped_call_component is not null)::int
            + 0.10 * (spend_decline_component is not null)::int
            + 0.05
        ),
        4
    ) as double) as churn_risk_score,
    cast(
        (inactivity_component is not null)::int
        + (topup_lapse_component is not null)::int
        + (usage_decline_component is not null)::int
        + (dropped_call_component is not null)::int
        + (spend_decline_component is not null)::int
        + 1 as integer
    ) as score_components_available
from components
