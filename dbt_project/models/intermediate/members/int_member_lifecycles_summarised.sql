{#- One row per member: the current state folded from the lifecycle events (activation, plan
    changes, port-out request, deactivation). Lifecycle events are few, so this is rebuilt whole. -#}
{{ config(materialized='table') }}

with events as (
    select * from {{ ref('stg_raw__member_events') }}
)

select
    member_id,
    min(occurred_at) filter (where event_type = 'member_activated') as activated_at,
    last(plan_id order by occurred_at, event_id) filter (where plan_id is not null) as plan_id,
    last(plan_type order by occurred_at, event_id) filter (where plan_type is not null) as plan_type,
    first(plan_id order by occurred_at, event_id) filter (where event_type = 'member_activated')
        as activation_plan_id,
    count(*) filter (where event_type = 'plan_changed') as plan_changes,
    first(msisdn_pseudonym order by occurred_at, event_id) filter (where event_type = 'member_activated')
        as msisdn_pseudonym,
    first(imsi_pseudonym order by occurred_at, event_id) filter (where event_type = 'member_activated')
        as imsi_pseudonym,
    first(imei_pseudonym order by occurred_at, event_id) filter (where event_type = 'member_activated')
        as imei_pseudonym,
    first(home_plmn_id order by occurred_at, event_id) filter (where event_type = 'member_activated')
        as home_plmn_id,
    min(occurred_at) filter (where event_type = 'port_out_requested') as port_out_requested_at,
    first(recipient_operator order by occurred_at, event_id) filter (where event_type = 'port_out_requested')
        as port_out_recipient,
    min(occurred_at) filter (where event_type = 'member_deactivated') as deactivated_at,
    first(deactivation_reason order by occurred_at, event_id) filter (where event_type = 'member_deactivated')
        as deactivation_reason,
    max(occurred_at) as last_lifecycle_event_at
from events
group by member_id
