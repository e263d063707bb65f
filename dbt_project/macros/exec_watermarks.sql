{#- The landed watermark of each landing source, as a select (see the `as_of` doc block): used by
    `rpt_exec_source_watermarks` (at query time) and by `fct_exec_member_hours` (to close hours).

    `floor` is a SQL scalar: an event time every source existing when it was set had already landed
    through (the end of the closed hours of `fct_exec_member_hours`, which only closes hours before
    the as-of time), or NULL when there is none yet. The raw scan reads opening events from the floor
    on only: DuckLake prunes files and day partitions by that bound at query time (a scalar
    subquery's result is pushed into the scan), so each query reads what landed since the last closed
    hour, never the whole history. A shard with nothing newer than the floor is complete through the
    floor: the floor is a lower bound of everything it had landed, and landed rows are never removed.
    A relay heartbeat read from a shard (its checkpoint's `published_through`) counts as an opening
    event of that time landed from it, so a quiet shard keeps up with the others.
    With no floor the scan is whole, and a shard that has landed nothing holds no clock.

    `bounding_only`: only the sources that can bound the as-of time (the Kinesis shards), for the
    as-of path that runs on every query of the executives' view; the repairs and the EventStoreDB
    consumers are listed by `rpt_exec_source_watermarks` only. `rows`: a relation already holding
    the raw rows from the floor on (see `exec_raw_activity_rows`), so that one scan of the raw layer
    serves both the as-of time and the live part of the view. -#}
{% macro exec_source_watermarks(floor, bounding_only=false, rows=none) -%}
{%- set kinesis_checkpoints = api.Relation.create(database=target.database, schema='meta', identifier='kinesis_checkpoints') %}
{%- set eventstore_checkpoints = api.Relation.create(database=target.database, schema='meta', identifier='eventstore_checkpoints') %}
{%- set allowance = "interval '" ~ var('in_flight_allowance_seconds') ~ " seconds'" %}
with watermark_floor as (
    select {{ floor }} as floor_at
),

opening_events as (
    -- Events a transaction emits when it starts (or instantaneous ones): their time is the
    -- producer's clock. Completions (call ends, data sessions, rating) can lie far past it.
    -- The same types as OPENING_EVENT_TYPES (cdr_platform/events/catalog.py), which the relay's
    -- heartbeats follow.
    select
        source,
        case when source = 'kinesis' then split_part(source_position, '/', 1) else source end as partition_id,
        occurred_at
    from {{ rows if rows is not none else source('raw', 'usage_events') }}
    where event_type in ('call_attempted', 'sms_submitted', 'topup_completed')
        and occurred_at >= (select coalesce(floor_at, timestamptz '-infinity') from watermark_floor)
        {%- if bounding_only %}
        and source = 'kinesis'
        {%- endif %}
),

landed_usage as (
    select source, partition_id, max(occurred_at) as landed_through
    from opening_events
    group by all
),

shards as (
    -- The landing checkpoints are written in the same transaction as the raw rows they describe.
    -- published_through: the latest relay heartbeat read from the shard (the relay had published
    -- everything it read before a producer clock of that time; see sources/relay_heartbeat.py).
    select
        shard_id,
        bool_or(shard_ended) as shard_ended,
        max(updated_at) as checkpoint_at,
        max(published_through) as published_through
    from {{ kinesis_checkpoints }}
    group by shard_id
),

kinesis as (
    select
        'kinesis_shard' as source_kind,
        coalesce(shards.shard_id, landed_usage.partition_id) as source_name,
        greatest(landed_usage.landed_through, shards.published_through) as landed_through,
        greatest(
            landed_usage.landed_through - {{ allowance }},
            shards.published_through - {{ allowance }},
            watermark_floor.floor_at
        ) as complete_through,
        shards.checkpoint_at,
        -- An ended shard's children carry on.
        not coalesce(shards.shard_ended, false) as is_open
    from shards
    full outer join (select * from landed_usage where source = 'kinesis') as landed_usage
        on landed_usage.partition_id = shards.shard_id
    cross join watermark_floor
),
{%- if not bounding_only %}

repairs as (
    -- Usage events first seen by reconciliation or replay: repairs of the Kinesis path, not a clock.
    select 'repair' as source_kind, source as source_name, landed_through,
        landed_through - {{ allowance }} as complete_through, null::timestamptz as checkpoint_at,
        false as is_open
    from landed_usage
    where source <> 'kinesis'
),

consumers as (
    -- Member lifecycle events, landed straight from $all: no executive KPI reads them, so only the
    -- checkpoint's time is shown (and no query of the view scans the member events).
    select
        'eventstore_consumer' as source_kind,
        checkpoints.consumer as source_name,
        null::timestamptz as landed_through,
        null::timestamptz as complete_through,
        checkpoints.updated_at as checkpoint_at,
        false as is_open
    from {{ eventstore_checkpoints }} as checkpoints
),
{%- endif %}

sources as (
    select * from kinesis
    {%- if not bounding_only %}
    union all select * from repairs
    union all select * from consumers
    {%- endif %}
)

select
    source_kind,
    source_name,
    landed_through,
    complete_through,
    checkpoint_at,
    source_kind = 'kinesis_shard' and is_open and complete_through is not null as bounds_as_of
from sources
{%- endmacro %}


{#- The as-of time, one row, from the rows of `exec_source_watermarks` (see the `as_of` doc block):
    the `as_of` var when set, else the minimum complete_through over the sources that bound it. -#}
{% macro exec_as_of(watermarks) -%}
select
    {% if var('as_of') -%}
    timestamptz '{{ var("as_of") }}' as as_of,
    'var' as as_of_basis,
    {%- else -%}
    min(complete_through) filter (where bounds_as_of) as as_of,
    'landed_watermark' as as_of_basis,
    {%- endif %}
    count(*) filter (where bounds_as_of) as bounding_sources
from {{ watermarks }}
{%- endmacro %}

{#- The two spans the executives' view compares, one row, from a relation with the as-of time and
    `closed_until` (where the closed hours of `fct_exec_member_hours` end): today from midnight to
    the as-of time and exactly the same span seven days earlier, and where each switches from closed
    hours to the raw layer. -#}
{% macro exec_windows(base) -%}
select
    as_of,
    date_trunc('day', as_of) as today_start,
    date_trunc('day', as_of) - interval 7 day as last_week_start,
    as_of - interval 7 day as last_week_as_of,
    greatest(
        date_trunc('day', as_of),
        least(date_trunc('hour', as_of), coalesce(closed_until, date_trunc('day', as_of)))
    ) as today_live_from,
    greatest(
        date_trunc('day', as_of) - interval 7 day,
        least(
            date_trunc('hour', as_of) - interval 7 day,
            coalesce(closed_until, date_trunc('day', as_of) - interval 7 day)
        )
    ) as last_week_live_from
from {{ base }}
{%- endmacro %}
