{#- One row per member lifecycle event; identifiers pseudonymised. -#}
with events as (
    {{ deduplicated_events('member_events', ['member_activated', 'plan_changed', 'port_out_requested', 'member_deactivated']) }}
)

select
    event_id,
    event_type,
    occurred_at,
    member_id,
    coalesce(payload ->> 'plan_id', payload ->> 'new_plan_id') as plan_id,
    coalesce(payload ->> 'plan_type', payload ->> 'new_plan_type') as plan_type,
    payload ->> 'old_plan_id' as previous_plan_id,
    {{ pseudonymise("payload ->> 'served_msisdn'") }} as msisdn_pseudonym,
    {{ pseudonymise("payload ->> 'served_imsi'") }} as imsi_pseudonym,
    {{ pseudonymise("payload ->> 'served_imei'") }} as imei_pseudonym,
    payload ->> 'home_plmn_id' as home_plmn_id,
    payload ->> 'recipient_operator' as recipient_operator,
    payload ->> 'reason' as deactivation_reason,
    ingested_at
from events
