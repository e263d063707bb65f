{#- One row per member and UTC day with usage: minutes, SMS, data bytes and spend. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key=['member_id', 'usage_date'],
        on_schema_change='append_new_columns',
    )
}}

select
    member_id,
    activity_date as usage_date,
    is_active,
    call_attempts,
    dropped_calls,
    voice_seconds,
    voice_seconds / 60.0 as voice_minutes,
    sms_sent,
    data_sessions,
    uplink_bytes,
    downlink_bytes,
    uplink_bytes + downlink_bytes as data_bytes,
    voice_spend_micros,
    sms_spend_micros,
    data_spend_micros,
    spend_micros,
    topups,
    topup_micros,
    currency,
    last_event_at
from {{ ref('int_member_days_aggregated') }}
where last_event_at >= {{ lookback_start() }}
