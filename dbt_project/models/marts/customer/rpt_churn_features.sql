{#- One row per member: the churn model's features as of the latest day in the data (or the
    `as_of` var), a transparent baseline churn-risk score, and the labels (port-out request,
    deactivation). See {{ doc('churn_risk_score') }}. -#}
with as_of as (
    select cast({{ as_of_timestamp() }} as date) as as_of_date
),

members as (
    select * from {{ ref('int_member_lifecycles_summarised') }}
),

days as (
    select days.*, as_of.as_of_date
    from {{ ref('int_member_days_aggregated') }} as days
    cross join as_of
    where days.activity_date <= as_of.as_of_date
),

history as (
    select
        member_id,
        max(activity_date) filter (where is_active) as last_active_date,
        max(activity_date) filter (where topups > 0) as last_topup_date
    from days
    group by member_id
),

recent as (
    select
        member_id,
        sum(call_attempts + sms_sent + data_sessions) filter (where activity_date > as_of_date - 7)
            as usage_events_7d,
        sum(call_attempts + sms_sent + data_sessions)
            filter (where activity_date <= as_of_date - 7 and activity_date > as_of_date - 35)
            as usage_events_prior_28d,
        sum(dropped_calls) filter (where activity_date > as_of_date - 28) as dropped_calls_28d,
        sum(spend_micros) filter (where activity_date > as_of_date - 30) as spend_micros_30d,
        sum(spend_micros) filter (where activity_date <= as_of_date - 30 and activity_date > as_of_date - 60)
            as spend_micros_prior_30d
    from days
    where activity_date > as_of_date - 60
    group by member_id
),

features as (
    select
        members.member_id,
        as_of.as_of_date,
        members.plan_type,
        cast(as_of.as_of_date - cast(members.activated_at as date) as integer) as tenure_days,
        cast(as_of.as_of_date - history.last_active_date as integer) as days_since_last_activity,
        cast(as_of.as_of_date - history.last_topup_date as integer) as days_since_last_topup,
        cast(coalesce(recent.usage_events_7d, 0) as bigint) as usage_events_7d,
        cast(coalesce(recent.usage_events_prior_28d, 0) as bigint) as usage_events_prior_28d,
        {{ kpi_ratio('coalesce(recent.usage_events_7d, 0) / 7.0', 'coalesce(recent.usage_events_prior_28d, 0) / 28.0') }}
            as usage_trend_ratio,
        cast(coalesce(recent.dropped_calls_28d, 0) as bigint) as dropped_calls_28d,
        cast(coalesce(recent.spend_micros_30d, 0) as bigint) as arpu_micros_30d,
        cast(coalesce(recent.spend_micros_prior_30d, 0) as bigint) as arpu_micros_prior_30d,
        {{ kpi_ratio('coalesce(recent.spend_micros_30d, 0)', 'coalesce(recent.spend_micros_prior_30d, 0)') }}
            as arpu_trend_ratio,
        members.port_out_requested_at is not null and cast(members.port_out_requested_at as date) <= as_of.as_of_date
            as has_requested_port_out,
        members.deactivated_at is not null and cast(members.deactivated_at as date) <= as_of.as_of_date
            as is_deactivated,
        least(members.port_out_requested_at, members.deactivated_at) as churned_at
    from members
    cross join as_of
    left join history on history.member_id = members.member_id
    left join recent on recent.member_id = members.member_id
    where members.activated_at is not null and cast(members.activated_at as date) <= as_of.as_of_date
),

scored as (
    select
        *,
        round(
            0.30 * least(coalesce(days_since_last_activity, tenure_days, 0) / 14.0, 1)
            + 0.15 * case when plan_type = 'prepaid'
                then least(coalesce(days_since_last_topup, tenure_days, 0) / 30.0, 1) else 0 end
            + 0.25 * (1 - least(coalesce(usage_trend_ratio, 1), 1))
            + 0.15 * least(dropped_calls_28d / 5.0, 1)
            + 0.10 * (1 - least(coalesce(arpu_trend_ratio, 1), 1))
            + 0.05 * case when tenure_days < 90 then 1 else 0 end,
            4
        ) as churn_risk_score
    from features
)

select
    member_id,
    as_of_date,
    plan_type,
    tenure_days,
    days_since_last_activity,
    days_since_last_topup,
    usage_events_7d,
    usage_events_prior_28d,
    usage_trend_ratio,
    dropped_calls_28d,
    arpu_micros_30d,
    arpu_micros_prior_30d,
    arpu_trend_ratio,
    churn_risk_score,
    case when churn_risk_score >= 0.6 then 'high' when churn_risk_score >= 0.3 then 'medium' else 'low' end
        as churn_risk_band,
    has_requested_port_out,
    is_deactivated,
    has_requested_port_out or is_deactivated as has_churned,
    churned_at
from scored
