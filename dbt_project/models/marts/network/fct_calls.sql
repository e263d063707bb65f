{#- One row per call attempt (one served member's leg) with its outcome; see {{ doc('call_outcome') }}. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='call_key',
        on_schema_change='append_new_columns',
    )
}}

select
    call_key,
    call_id,
    member_id,
    record_type,
    attempted_at,
    cast(attempted_at as date) as attempt_date,
    date_trunc('hour', attempted_at) as attempt_hour,
    answered_at,
    released_at,
    outcome,
    is_answered,
    is_dropped,
    is_failed,
    failure_cause_code,
    failure_cause_name,
    failure_category,
    call_duration_s,
    attempt_cell_id,
    last_cell_id,
    location_area_code,
    rat_type,
    is_roaming,
    calling_party_pseudonym,
    called_party_pseudonym,
    charge_micros,
    currency,
    last_event_at
from {{ ref('int_calls_assembled') }}
where last_event_at >= {{ lookback_start() }}
