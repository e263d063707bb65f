{#- One row per charge: the OCS's price for a call, SMS or data session (usage_rated), or a plan's
    monthly fee (plan_fee_charged, usage_kind 'plan_fee', no rated event, charged for the period
    period_start to period_end). Revenue is the sum of both. -#}
with rated as (
    {{ deduplicated_events('usage_events', ['usage_rated']) }}
),

fees as (
    {{ deduplicated_events('usage_events', ['plan_fee_charged']) }}
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
    cast(null as varchar) as plan_id,
    cast(null as date) as period_start,
    cast(null as date) as period_end,
    ingested_at
from rated
union all
select
    event_id,
    occurred_at as rated_at,
    correlation_id,
    member_id,
    cast(null as uuid) as rated_event_id,
    cast(null as varchar) as rated_event_type,
    'plan_fee' as usage_kind,
    cast(1 as bigint) as quantity,
    'month' as quantity_unit,
    (payload ->> 'plan_id') || '-FEE' as tariff_id,
    cast(payload ->> 'charge_micros' as bigint) as charge_micros,
    payload ->> 'currency' as currency,
    payload ->> 'plan_id' as plan_id,
    cast(payload ->> 'period_start' as date) as period_start,
    cast(payload ->> 'period_end' as date) as period_end,
    ingested_at
from fees
