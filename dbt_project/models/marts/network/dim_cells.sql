{#- One row per radio cell that has carried a call: its location area, radio technology and the
    first and last time it was seen. Merged per cell from the calls changed in this run. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='merge',
        unique_key='cell_id',
        on_schema_change='append_new_columns',
    )
}}

with changed as (
    select attempt_cell_id as cell_id, location_area_code, rat_type, attempted_at as seen_at, last_event_at
    from {{ ref('fct_calls') }}
    where last_event_at >= {{ lookback_start() }}
    union all
    select last_cell_id, null, null, attempted_at, last_event_at
    from {{ ref('fct_calls') }}
    where last_event_at >= {{ lookback_start() }}
    {% if is_incremental() -%}
    union all
    select cell_id, location_area_code, rat_type, first_seen_at, last_event_at
    from {{ this }}
    where cell_id in (
        select attempt_cell_id from {{ ref('fct_calls') }} where last_event_at >= {{ lookback_start() }}
        union
        select last_cell_id from {{ ref('fct_calls') }} where last_event_at >= {{ lookback_start() }}
    )
    {%- endif %}
)

select
    cell_id,
    last(location_area_code order by seen_at, location_area_code) filter (where location_area_code is not null)
        as location_area_code,
    last(rat_type order by seen_at, rat_type) filter (where rat_type is not null) as rat_type,
    min(seen_at) as first_seen_at,
    max(last_event_at) as last_event_at
from changed
group by cell_id
