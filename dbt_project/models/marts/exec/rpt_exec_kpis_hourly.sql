{#- Today hour by hour beside the same hours last week: calls attempted and revenue (cumulative),
    up to the as-of time. Feeds the chart on the executive dashboard and in Dagster. -#}
with bounds as (
    select as_of, date_trunc('day', as_of) as today_start
    from (select {{ as_of_timestamp() }} as as_of)
),

hours as (
    select
        cast(h as integer) as hour_of_day,
        bounds.today_start + to_hours(cast(h as integer)) as hour_start,
        bounds.today_start + to_hours(cast(h as integer)) - interval 7 day as last_week_hour_start,
        bounds.as_of
    from bounds, range(0, 24) as t(h)
    where bounds.today_start + to_hours(cast(h as integer)) <= bounds.as_of
),

calls as (
    select attempted_at
    from {{ ref('fct_calls') }}
    where attempted_at >= (select today_start - interval 7 day from bounds)
),

charges as (
    select occurred_at, charge_micros
    from {{ ref('int_usage_events_unioned') }}
    where activity_kind = 'charge' and occurred_at >= (select today_start - interval 7 day from bounds)
),

hourly as (
    select
        hours.hour_of_day,
        hours.hour_start,
        (
            select count(*) from calls
            where attempted_at >= hours.hour_start and attempted_at < hours.hour_start + interval 1 hour
                and attempted_at <= hours.as_of
        ) as calls_today,
        (
            select count(*) from calls
            where attempted_at >= hours.last_week_hour_start
                and attempted_at < hours.last_week_hour_start + interval 1 hour
                and attempted_at <= hours.as_of - interval 7 day
        ) as calls_same_time_last_week,
        (
            select coalesce(sum(charge_micros), 0) from charges
            where occurred_at >= hours.hour_start and occurred_at < hours.hour_start + interval 1 hour
                and occurred_at <= hours.as_of
        ) as revenue_micros_today,
        (
            select coalesce(sum(charge_micros), 0) from charges
            where occurred_at >= hours.last_week_hour_start
                and occurred_at < hours.last_week_hour_start + interval 1 hour
                and occurred_at <= hours.as_of - interval 7 day
        ) as revenue_micros_same_time_last_week
    from hours
)

select
    hour_of_day,
    hour_start,
    calls_today,
    calls_same_time_last_week,
    sum(revenue_micros_today) over (order by hour_of_day) / 1e6 as cumulative_revenue_today,
    sum(revenue_micros_same_time_last_week) over (order by hour_of_day) / 1e6
        as cumulative_revenue_same_time_last_week
from hourly
order by hour_of_day
