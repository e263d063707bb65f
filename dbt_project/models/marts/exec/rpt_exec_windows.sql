{#- The two spans the executives' view compares, one row: today from midnight to the as-of time
    ({{ doc('as_of') }}) and exactly the same span seven days earlier; and, for each, where the
    closed hours of `fct_exec_member_hours` end and the query-time read of the raw layer begins.
    `rpt_exec_window_member_hours` computes the same row through the same macro, from its own single
    read of the raw layer. -#}
{{ config(materialized='view') }}

with base as (
    select
        as_of,
        (select max(hour_start) + interval 1 hour from {{ ref('fct_exec_member_hours') }}) as closed_until
    from {{ ref('rpt_exec_as_of') }}
)

{{ exec_windows('base') }}
