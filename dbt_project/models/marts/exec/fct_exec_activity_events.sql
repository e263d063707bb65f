{#- One row per usage event that moves an executive KPI, with what it adds: activity (the event
    types `int_usage_events_unioned` counts, see {{ doc('active_member') }}), a call attempt, an
    answer, a drop (at its release), a charge. A view over the raw layer with one dedupe window, not
    the five of the staging views: the live part of the executives' view reads it on every query, and
    this keeps a query under half a second on the demo. Filters on occurred_at reach the raw scan. -#}
{{ config(materialized='view') }}

with events as (
    -- The staging views' dedupe (first sighting of each event_id wins), over narrow rows: the
    -- payload is read for charges only, before the window, so the window carries no JSON.
    select
        event_id,
        member_id,
        occurred_at,
        event_type,
        case when event_type = 'usage_rated' then cast(payload ->> 'charge_micros' as bigint) else 0 end
            as charge_micros
    from {{ source('raw', 'usage_events') }}
    where event_type in (
        'call_attempted', 'call_answered', 'call_dropped', 'sms_submitted', 'data_session_ended',
        'usage_rated', 'topup_completed'
    )
    qualify row_number() over (
        partition by event_id, occurred_at order by ingested_at, source, source_position
    ) = 1
)

select
    event_id,
    member_id,
    occurred_at,
    event_type in ('call_attempted', 'sms_submitted', 'data_session_ended', 'topup_completed')
        as counts_as_activity,
    cast(event_type = 'call_attempted' as integer) as call_attempts,
    cast(event_type = 'call_answered' as integer) as answered_calls,
    cast(event_type = 'call_dropped' as integer) as dropped_calls,
    cast(charge_micros as bigint) as charge_micros
from events
