{#- One row per closed PGW record (a data session), volumes in bytes. -#}
with events as (
    {{ deduplicated_events('usage_events', ['data_session_ended']) }}
)

select
    event_id,
    occurred_at as ended_at,
    correlation_id as session_id,
    member_id,
    {{ pseudonymise("payload ->> 'served_msisdn'") }} as msisdn_pseudonym,
    {{ pseudonymise("payload ->> 'served_imsi'") }} as imsi_pseudonym,
    {{ pseudonymise("payload ->> 'served_imei'") }} as imei_pseudonym,
    cast(payload ->> 'charging_id' as bigint) as charging_id,
    payload ->> 'access_point_name_ni' as access_point_name,
    payload ->> 'rat_type' as rat_type,
    payload ->> 'cell_id' as cell_id,
    cast(payload ->> 'roaming' as boolean) as is_roaming,
    cast(payload ->> 'data_volume_uplink' as bigint) as uplink_bytes,
    cast(payload ->> 'data_volume_downlink' as bigint) as downlink_bytes,
    cast(payload ->> 'duration_s' as double) as duration_s,
    payload ->> 'cause_for_rec_closing' as cause_for_record_closing,
    ingested_at
from events
