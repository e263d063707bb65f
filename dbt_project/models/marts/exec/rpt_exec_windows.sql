{#- The two spans the executives' view compares, one row: today from midnight to the as-of time
    ({{ doc('as_of') }}) and exactly the same span seven days earlier; and, for each, where the
    closed hours of `fct_exec_member_hours` end and the query-time read of the raw layer begins. -#}
{{ config(materialized='view') }}

with base as (
    select
        as_of,
        date_trunc('day', as_of) as today_start,
        date_trunc('hour', as_of) as open_hour_start,
        (select max(hour_start) + interval 1 hour from {{ ref('fct_exec_member_hours') }}) as closed_until
    from {{ ref('rpt_exec_as_of') }}
)

select
    as_of,
    today_start,
    today_start - interval 7 day as last_week_start,
    as_of - interval 7 day as last_week_as_of,
    greatest(today_start, least(open_hour_start, coalesce(closed_until, today_start))) as today_live_from,
    greatest(
        today_start - interval 7 day,
        least(open_hour_start - interval 7 day, coalesce(closed_until, today_start - interval 7 day))
    ) as last_week_live_from
from base
