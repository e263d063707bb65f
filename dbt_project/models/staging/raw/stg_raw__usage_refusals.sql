{#- One row per usage the OCS refused because the prepaid balance could not pay for its first unit
    (a minute, a message, a megabyte). Nothing was used or charged; a refused call has no call events. -#}
with events as (
    {{ deduplicated_events('usage_events', ['usage_refused']) }}
)

select
    event_id,
    occurred_at as refused_at,
    correlation_id,
    member_id,
    payload ->> 'usage_kind' as usage_kind,
    payload ->> 'reason' as refusal_reason,
    payload ->> 'tariff_id' as tariff_id,
    cast(payload ->> 'balance_micros' as bigint) as balance_micros,
    cast(payload ->> 'required_micros' as bigint) as required_micros,
    payload ->> 'currency' as currency,
    ingested_at
from events
