{#- One row per call lifecycle event (one served member's leg), numbers pseudonymised. -#}
with events as (
    {{ deduplicated_events('usage_events', ['call_attempted', 'call_answered', 'call_ended', 'call_dropped', 'call_failed']) }}
)

select
    event_id,
    event_type,
    occurred_at,
    correlation_id as call_id,
    member_id,
    payload ->> 'record_type' as record_type,
    {{ pseudonymise("payload ->> 'calling_party_number'") }} as calling_party_pseudonym,
    {{ pseudonymise("payload ->> 'called_party_number'") }} as called_party_pseudonym,
    {{ pseudonymise("payload ->> 'served_imsi'") }} as imsi_pseudonym,
    {{ pseudonymise("payload ->> 'served_imei'") }} as imei_pseudonym,
    payload ->> 'cell_id' as cell_id,
    cast(payload ->> 'location_area_code' as integer) as location_area_code,
    payload ->> 'rat_type' as rat_type,
    cast(payload ->> 'roaming' as boolean) as is_roaming,
    cast(payload ->> 'call_duration_s' as double) as call_duration_s,
    payload ->> 'cause_for_termination' as cause_for_termination,
    cast(payload -> 'cause' ->> 'code' as integer) as failure_cause_code,
    payload -> 'cause' ->> 'name' as failure_cause_name,
    producer,
    ingested_at
from events
