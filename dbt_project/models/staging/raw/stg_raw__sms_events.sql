{#- One row per SMS event (submitted, delivered, failed) of the member's SMS-MO record. -#}
with events as (
    {{ deduplicated_events('usage_events', ['sms_submitted', 'sms_delivered', 'sms_failed']) }}
)

select
    event_id,
    event_type,
    occurred_at,
    correlation_id as message_id,
    member_id,
    {{ pseudonymise("payload ->> 'served_msisdn'") }} as msisdn_pseudonym,
    {{ pseudonymise("payload ->> 'served_imsi'") }} as imsi_pseudonym,
    {{ pseudonymise("payload ->> 'destination_number'") }} as destination_pseudonym,
    payload ->> 'cell_id' as cell_id,
    payload ->> 'rat_type' as rat_type,
    cast(payload ->> 'roaming' as boolean) as is_roaming,
    payload ->> 'failure_cause' as failure_cause,
    ingested_at
from events
