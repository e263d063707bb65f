{#- One row per completed prepaid top-up. -#}
with events as (
    {{ deduplicated_events('usage_events', ['topup_completed']) }}
)

select
    event_id,
    occurred_at as topped_up_at,
    member_id,
    cast(payload ->> 'amount_micros' as bigint) as amount_micros,
    payload ->> 'currency' as currency,
    payload ->> 'channel' as channel,
    ingested_at
from events
