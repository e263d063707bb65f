{#- One row per landing source with the event time it has landed through; see {{ doc('as_of') }}.
    A view: each query reads the landing checkpoints and the raw layer as they are now. -#}
{{ config(materialized='view') }}

{#- The landing checkpoints (meta schema) are written in the same transaction as the raw rows by the
    landing assets, so they are not dbt sources of their own: in Dagster they are part of
    raw/usage_events and raw/member_events, which this model already depends on. -#}
{%- set kinesis_checkpoints = api.Relation.create(database=target.database, schema='meta', identifier='kinesis_checkpoints') %}
{%- set eventstore_checkpoints = api.Relation.create(database=target.database, schema='meta', identifier='eventstore_checkpoints') %}

{%- set allowance = "interval '" ~ var('in_flight_allowance_seconds') ~ " seconds'" %}
{%- set opening_types = "('call_attempted', 'sms_submitted', 'topup_completed')" %}
{#- A literal lower bound on the scan, so each query reads recent day partitions only: a day before
    the slowest partition's clock at build time. Clocks only move forward, so it stays valid. -#}
{%- set since = "timestamptz '1970-01-01 00:00:00+00'" %}
{%- if execute %}
    {%- set result = run_query(
        "select min(clock) - interval 1 day from (select max(occurred_at) as clock from "
        ~ source('raw', 'usage_events') ~ " where event_type in " ~ opening_types
        ~ " group by source, split_part(source_position, '/', 1))"
    ) %}
    {%- set value = result.columns[0].values()[0] %}
    {%- if value is not none %}
        {%- set since = "timestamptz '" ~ value.isoformat() ~ "'" %}
    {%- endif %}
{%- endif %}

with opening_events as (
    -- Events a transaction emits when it starts (or instantaneous ones): their time is the
    -- producer's clock. Completions (call ends, data sessions, rating) can lie far past it.
    select
        source,
        case when source = 'kinesis' then split_part(source_position, '/', 1) else source end as partition_id,
        occurred_at
    from {{ source('raw', 'usage_events') }}
    where event_type in {{ opening_types }} and occurred_at >= {{ since }}
),

landed_usage as (
    select source, partition_id, max(occurred_at) as landed_through
    from opening_events
    group by all
),

shards as (
    select shard_id, bool_or(shard_ended) as shard_ended, max(updated_at) as checkpoint_at
    from {{ kinesis_checkpoints }}
    group by shard_id
),

kinesis as (
    select
        'kinesis_shard' as source_kind,
        coalesce(shards.shard_id, landed_usage.partition_id) as source_name,
        landed_usage.landed_through,
        shards.checkpoint_at,
        -- An ended shard's children carry on; a shard with nothing landed yet holds no clock.
        not coalesce(shards.shard_ended, false) and landed_usage.landed_through is not null as bounds_as_of
    from shards
    full outer join (select * from landed_usage where source = 'kinesis') as landed_usage
        on landed_usage.partition_id = shards.shard_id
),

repairs as (
    -- Usage events first seen by reconciliation or replay: repairs of the Kinesis path, not a clock.
    select 'repair' as source_kind, source as source_name, landed_through, null::timestamptz as checkpoint_at,
        false as bounds_as_of
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
        checkpoints.updated_at as checkpoint_at,
        false as bounds_as_of
    from {{ eventstore_checkpoints }} as checkpoints
),

sources as (
    select * from kinesis
    union all select * from repairs
    union all select * from consumers
)

select
    source_kind,
    source_name,
    landed_through,
    landed_through - {{ allowance }} as complete_through,
    checkpoint_at,
    bounds_as_of
from sources
