{#- The as-of time of the executives' view, one row; see {{ doc('as_of') }}. A view, so it moves
    as soon as a landing run commits. It reads the sources that can bound it only (the Kinesis
    shards: their checkpoints, and the opening events landed since the closed hours of
    `fct_exec_member_hours`); `rpt_exec_source_watermarks` lists every source. -#}
{{ config(materialized='view') }}

with watermarks as (
    {{ exec_source_watermarks(
        "(select max(hour_start) + interval 1 hour from " ~ ref('fct_exec_member_hours') ~ ")",
        bounding_only=true,
    ) | indent(4) }}
)

{{ exec_as_of('watermarks') }}
