{#- Raw events of `event_types`, one row per event_id (the first sighting wins).

    The landing code already keeps event_id unique; this is the staging layer's own guarantee.
    The window is partitioned by (event_id, occurred_at), which is the same thing as by event_id
    (an id is derived from the business key, so it always carries the same occurred_at), but lets
    DuckDB push incremental filters on occurred_at through the window into the DuckLake scan. -#}
{% macro deduplicated_events(source_table, event_types) -%}
    select *
    from {{ source('raw', source_table) }}
    where event_type in ('{{ event_types | join("', '") }}')
    qualify row_number() over (
        partition by event_id, occurred_at order by ingested_at, source, source_position
    ) = 1
{%- endmacro %}
