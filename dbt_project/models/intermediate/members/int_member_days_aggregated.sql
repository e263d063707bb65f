{#- One row per member and UTC day with any usage: the member's activity, minutes, SMS, bytes,
    spend (usage charges by kind and plan fees) and top-ups that day. Dropped calls and released answered calls (ended or dropped) both
    count on the day of the release, so their ratio is a rate. Whole days from the lookback day on are recomputed each run. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['member_id', 'activity_date'],
        on_schema_change='append_new_columns',
    )
}}

select
    member_id,
    cast(occurred_at as date) as activity_date,
    bool_or(counts_as_activity) as is_active,
    count(*) filter (where activity_kind = 'call_attempt') as call_attempts,
    count(*) filter (where is_dropped_call) as dropped_calls,
    count(*) filter (where activity_kind = 'call_release') as released_answered_calls,
    cast(coalesce(sum(voice_seconds), 0) as double) as voice_seconds,
    cast(coalesce(sum(sms_sent), 0) as bigint) as sms_sent,
    count(*) filter (where activity_kind = 'data') as data_sessions,
    cast(coalesce(sum(uplink_bytes), 0) as bigint) as uplink_bytes,
    cast(coalesce(sum(downlink_bytes), 0) as bigint) as downlink_bytes,
    cast(coalesce(sum(charge_micros) filter (where usage_kind = 'voice'), 0) as bigint) as voice_spend_micros,
    cast(coalesce(sum(charge_micros) filter (where usage_kind = 'sms'), 0) as bigint) as sms_spend_micros,
    cast(coalesce(sum(charge_micros) filter (where usage_kind = 'data'), 0) as bigint) as data_spend_micros,
    cast(coalesce(sum(charge_micros) filter (where usage_kind = 'plan_fee'), 0) as bigint) as plan_fee_spend_micros,
    cast(coalesce(sum(charge_micros), 0) as bigint) as spend_micros,
    count(*) filter (where activity_kind = 'topup') as topups,
    cast(coalesce(sum(topup_micros), 0) as bigint) as topup_micros,
    min(currency) as currency,
    max(occurred_at) as last_event_at
from {{ ref('int_usage_events_unioned') }}
where occurred_at >= {{ lookback_start_day() }}
group by member_id, cast(occurred_at as date)
