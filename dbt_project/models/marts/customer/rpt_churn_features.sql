{#- One row per member at risk today: the churn model's point-in-time features as of today's as-of
    date (events before it only; the as-of day is the day of the `as_of` var, else of the latest
    event time), the component scores, with NULL where a window lacks data, and the churn-risk score.
    The same features the backtest judges (see {{ doc('churn_model') }}). -#}
select
    member_id,
    as_of_date,
    plan_type,
    tenure_days,
    observed_days,
    days_since_last_activity,
    days_since_last_topup,
    usage_events_recent,
    usage_events_baseline,
    usage_trend_ratio,
    usage_trend_complete,
    dropped_calls,
    released_answered_calls,
    dropped_call_rate,
    spend_micros_recent,
    spend_micros_prior,
    spend_trend_ratio,
    spend_trend_complete,
    inactivity_component,
    topup_lapse_component,
    usage_decline_component,
    dropped_call_component,
    spend_decline_component,
    new_member_component,
    score_components_available,
    churn_risk_score,
    case when churn_risk_score >= 0.6 then 'high' when churn_risk_score >= 0.3 then 'medium' else 'low' end
        as churn_risk_band
from {{ ref('int_churn_features_point_in_time') }}
where not is_backtest_cutoff
