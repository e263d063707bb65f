{#- One row per rated usage event (the OCS's price for a call, SMS or data session). -#}
with events as (
    {{ deduplicated_events('usage_events', ['usage_rated']) }}
)

select
    event_id,
    occurred_at as rated_at,
    correlation_id,
    member_id,
    cast(payload ->> 'rated_event_id' as uuid) as rated_event_id,
    payload ->> 'rated_event_type' as rated_event_type,
    payload ->> 'usage_kind' as usage_kind,
    cast(payload ->> 'quantity' as bigint) as quantity,
    payload ->> 'quantity_unit' as quantity_unit,
    payload ->> 'tariff_id' as tariff_id,
    cast(payload ->> 'charge_micros' as bigint) as charge_micros,
    payload ->> 'currency' as currency,
    ingested_at
from events
