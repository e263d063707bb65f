{#- One row per usage event that moves an executive KPI, with what it adds: activity (the event
    types `int_usage_events_unioned` counts, see {{ doc('active_member') }}), a call attempt, an
    answer, a drop (at its release), a charge. A view over the raw layer with one dedupe window, not
    the five of the staging views; filters on occurred_at reach the raw scan. The live part of the
    executives' view reads the same rows through the `exec_activity_events` macro, with its spans'
    bounds applied before the dedupe window. -#}
{{ config(materialized='view') }}

{{ exec_activity_events() }}
