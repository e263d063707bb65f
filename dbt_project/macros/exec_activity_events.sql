{#- What the executives' view reads of the raw layer, in one place: `fct_exec_activity_events` and
    the live part of `rpt_exec_window_member_hours` both select through these macros. -#}

{#- The usage events that move an executive KPI, narrow: the payload is read for charges only, so
    the dedupe window carries no JSON. `where` (SQL on occurred_at) is applied in the scan itself, so
    DuckLake prunes files and day partitions by it, also when its bounds are scalar subqueries
    evaluated at query time. -#}
{% macro exec_raw_activity_rows(where='true') -%}
select
    event_id,
    member_id,
    occurred_at,
    event_type,
    case when event_type = 'usage_rated' then cast(payload ->> 'charge_micros' as bigint) else 0 end
        as charge_micros,
    ingested_at,
    source,
    source_position
from {{ source('raw', 'usage_events') }}
where event_type in (
    'call_attempted', 'call_answered', 'call_dropped', 'sms_submitted', 'data_session_ended',
    'usage_rated', 'topup_completed'
)
    and ({{ where }})
{%- endmacro %}

{#- One row per event of `rows` (a relation or subquery of `exec_raw_activity_rows`' columns, default
    the whole raw layer) within `where`, with what it adds to each KPI. The staging views' dedupe: the
    first sighting of each event_id wins. The window is partitioned by (event_id, occurred_at), so a
    filter on occurred_at before it keeps the same rows. -#}
{% macro exec_activity_events(where='true', rows=none) -%}
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
from (
    {%- if rows is none %}
    {{ exec_raw_activity_rows(where) | indent(4) }}
    {%- else %}
    select * from {{ rows }} where ({{ where }})
    {%- endif %}
    qualify row_number() over (
        partition by event_id, occurred_at order by ingested_at, source, source_position
    ) = 1
) as deduplicated
{%- endmacro %}
