{#- Daily, weekly and monthly active members per UTC day ({{ doc('active_member') }}), and
    stickiness = DAU / MAU. WAU and MAU are trailing windows of 7 and 30 days ending that day; a
    window that starts before the first day of data is flagged incomplete (its count is a floor and
    stickiness an upper bound). -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='activity_date',
        on_schema_change='append_new_columns',
    )
}}

{%- set since_day = lookback_start_day() %}

with active_days as (
    select member_id, activity_date, last_event_at
    from {{ ref('int_member_days_aggregated') }}
    where is_active and activity_date >= {{ since_day }} - interval 29 day
),

days as (
    select distinct activity_date from active_days where activity_date >= {{ since_day }}
),

first_day as (
    select min(activity_date) as first_data_date from {{ ref('int_member_days_aggregated') }}
)

select
    days.activity_date,
    count(distinct active_days.member_id) filter (where active_days.activity_date = days.activity_date)
        as daily_active_members,
    count(distinct active_days.member_id) filter (where active_days.activity_date > days.activity_date - 7)
        as weekly_active_members,
    count(distinct active_days.member_id) as monthly_active_members,
    {{ kpi_ratio(
        'count(distinct active_days.member_id) filter (where active_days.activity_date = days.activity_date)',
        'count(distinct active_days.member_id)'
    ) }} as stickiness,
    days.activity_date - 6 >= any_value(first_day.first_data_date) as weekly_window_complete,
    days.activity_date - 29 >= any_value(first_day.first_data_date) as monthly_window_complete,
    max(active_days.last_event_at) filter (where active_days.activity_date = days.activity_date) as last_event_at
from days
cross join first_day
join active_days
    on active_days.activity_date > days.activity_date - 30
    and active_days.activity_date <= days.activity_date
group by days.activity_date
