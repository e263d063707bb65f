{#- One row per landing source with the event time it has landed through; see {{ doc('as_of') }}.
    A view: each query reads the landing checkpoints, and the opening events landed since the end of
    the closed hours of `fct_exec_member_hours` (the floor, see the `exec_source_watermarks` macro),
    as they are now. -#}
{{ config(materialized='view') }}

{{ exec_source_watermarks(
    "(select max(hour_start) + interval 1 hour from " ~ ref('fct_exec_member_hours') ~ ")"
) }}
