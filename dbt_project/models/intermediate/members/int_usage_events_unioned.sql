{#- Every usage event of a member on one shape: what it counts towards (activity, minutes, SMS,
    bytes, spend, top-ups). A view: filters on occurred_at reach the raw scans through it.
    `counts_as_activity` is the definition of an active member ({{ doc('active_member') }}). -#}
{{ config(materialized='view') }}

with calls as (
    select
        event_id,
        member_id,
        occurred_at,
        case when event_type = 'call_attempted' then 'call_attempt' else 'call_release' end as activity_kind,
        event_type = 'call_attempted' as counts_as_activity,
        case when event_type in ('call_ended', 'call_dropped') then call_duration_s else 0 end as voice_seconds,
        event_type = 'call_dropped' as is_dropped_call,
        0 as sms_sent,
        cast(0 as bigint) as uplink_bytes,
        cast(0 as bigint) as downlink_bytes,
        cast(null as varchar) as usage_kind,
        cast(0 as bigint) as charge_micros,
        cast(0 as bigint) as topup_micros,
        cast(null as varchar) as currency
    from {{ ref('stg_raw__call_events') }}
    where event_type in ('call_attempted', 'call_ended', 'call_dropped')
),

sms as (
    select
        event_id, member_id, occurred_at, 'sms' as activity_kind, true as counts_as_activity,
        0.0 as voice_seconds, false as is_dropped_call, 1 as sms_sent,
        cast(0 as bigint), cast(0 as bigint), null, cast(0 as bigint), cast(0 as bigint), null
    from {{ ref('stg_raw__sms_events') }}
    where event_type = 'sms_submitted'
),

data_sessions as (
    select
        event_id, member_id, ended_at, 'data' as activity_kind, true as counts_as_activity,
        0.0, false, 0, uplink_bytes, downlink_bytes, null, cast(0 as bigint), cast(0 as bigint), null
    from {{ ref('stg_raw__data_sessions') }}
),

charges as (
    select
        event_id, member_id, rated_at, 'charge' as activity_kind, false as counts_as_activity,
        0.0, false, 0, cast(0 as bigint), cast(0 as bigint), usage_kind, charge_micros, cast(0 as bigint),
        currency
    from {{ ref('stg_raw__usage_charges') }}
),

topups as (
    select
        event_id, member_id, topped_up_at, 'topup' as activity_kind, true as counts_as_activity,
        0.0, false, 0, cast(0 as bigint), cast(0 as bigint), null, cast(0 as bigint), amount_micros,
        currency
    from {{ ref('stg_raw__topups') }}
)

select * from calls
union all select * from sms
union all select * from data_sessions
union all select * from charges
union all select * from topups
