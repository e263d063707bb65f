{#- One row per call attempt as seen by one served member (a call leg), assembled from its
    lifecycle events: call_attempted -> (call_answered -> call_ended | call_dropped) | call_failed,
    plus the OCS's charge for the released call. Events may arrive in any order and late: a key is
    re-assembled from all of its events whenever any of them falls in the lookback window. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='call_key',
        on_schema_change='append_new_columns',
    )
}}

{%- set since = lookback_start() %}
{%- set span = "interval '" ~ var('call_max_span_hours') ~ " hours'" %}

with changed_calls as (
    select distinct call_id, member_id
    from {{ ref('stg_raw__call_events') }}
    where occurred_at >= {{ since }}
    union
    select distinct correlation_id, member_id
    from {{ ref('stg_raw__usage_charges') }}
    where rated_at >= {{ since }} and usage_kind = 'voice'
),

call_events as (
    select
        events.*,
        case
            when event_type = 'call_attempted' then 1
            when event_type = 'call_answered' then 2
            else 3
        end as stage
    from {{ ref('stg_raw__call_events') }} as events
    semi join changed_calls
        on events.call_id = changed_calls.call_id and events.member_id = changed_calls.member_id
    where events.occurred_at >= {{ since }} - {{ span }}
),

charges as (
    select
        rated_event_id,
        cast(sum(charge_micros) as bigint) as charge_micros,
        min(currency) as currency,
        max(rated_at) as rated_at
    from {{ ref('stg_raw__usage_charges') }} as charges
    semi join changed_calls
        on charges.correlation_id = changed_calls.call_id and charges.member_id = changed_calls.member_id
    where charges.rated_at >= {{ since }} - {{ span }} and charges.usage_kind = 'voice'
    group by rated_event_id
),

assembled as (
    select
        call_id,
        member_id,
        first(record_type order by stage, occurred_at, event_id) as record_type,
        min(occurred_at) filter (where event_type = 'call_attempted') as attempted_at,
        min(occurred_at) as first_event_at,
        min(occurred_at) filter (where event_type = 'call_answered') as answered_at,
        min(occurred_at) filter (where event_type in ('call_ended', 'call_dropped')) as released_at,
        max(occurred_at) as last_call_event_at,
        bool_or(event_type = 'call_attempted') as has_attempt_event,
        bool_or(event_type in ('call_answered', 'call_ended', 'call_dropped')) as is_answered,
        bool_or(event_type = 'call_ended') as is_ended,
        bool_or(event_type = 'call_dropped') as is_dropped,
        bool_or(event_type = 'call_failed') as is_failed,
        first(failure_cause_code order by occurred_at, event_id) filter (where event_type = 'call_failed')
            as failure_cause_code,
        first(failure_cause_name order by occurred_at, event_id) filter (where event_type = 'call_failed')
            as failure_cause_name,
        first(event_id order by occurred_at, event_id) filter (where event_type in ('call_ended', 'call_dropped'))
            as release_event_id,
        max(call_duration_s) filter (where event_type in ('call_ended', 'call_dropped')) as call_duration_s,
        first(cell_id order by stage, occurred_at, event_id) as attempt_cell_id,
        last(cell_id order by stage, occurred_at, event_id) as last_cell_id,
        first(location_area_code order by stage, occurred_at, event_id) as location_area_code,
        first(rat_type order by stage, occurred_at, event_id) as rat_type,
        bool_or(is_roaming) as is_roaming,
        first(calling_party_pseudonym order by stage, occurred_at, event_id) as calling_party_pseudonym,
        first(called_party_pseudonym order by stage, occurred_at, event_id) as called_party_pseudonym,
        count(*) as event_count
    from call_events
    group by call_id, member_id
)

select
    md5(assembled.call_id || '|' || assembled.member_id) as call_key,
    assembled.call_id,
    assembled.member_id,
    assembled.record_type,
    coalesce(assembled.attempted_at, assembled.first_event_at) as attempted_at,
    assembled.answered_at,
    assembled.released_at,
    case
        when assembled.is_dropped then 'dropped'
        when assembled.is_ended then 'completed'
        when assembled.is_answered then 'answered'
        when assembled.is_failed then 'failed'
        else 'attempted'
    end as outcome,
    assembled.is_answered,
    assembled.is_dropped,
    assembled.is_failed and not assembled.is_answered as is_failed,
    case when assembled.is_answered then null else assembled.failure_cause_code end as failure_cause_code,
    case when assembled.is_answered then null else assembled.failure_cause_name end as failure_cause_name,
    case
        when assembled.is_answered or not assembled.is_failed then null
        else {{ failure_category('assembled.failure_cause_code') }}
    end as failure_category,
    assembled.call_duration_s,
    assembled.attempt_cell_id,
    assembled.last_cell_id,
    assembled.location_area_code,
    assembled.rat_type,
    assembled.is_roaming,
    assembled.calling_party_pseudonym,
    assembled.called_party_pseudonym,
    assembled.has_attempt_event,
    assembled.event_count,
    charges.charge_micros,
    charges.currency,
    greatest(assembled.last_call_event_at, coalesce(charges.rated_at, assembled.last_call_event_at))
        as last_event_at
from assembled
left join charges on charges.rated_event_id = assembled.release_event_id
