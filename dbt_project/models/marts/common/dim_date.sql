{#- One row per UTC calendar day from `calendar_start` to `calendar_end` (vars). -#}
with days as (
    select cast(day as date) as date_day
    from range(
        cast('{{ var("calendar_start", "2020-01-01") }}' as date),
        cast('{{ var("calendar_end", "2035-12-31") }}' as date) + interval 1 day,
        interval 1 day
    ) as t(day)
)

select
    date_day,
    cast(date_trunc('week', date_day) as date) as week_start,
    cast(date_trunc('month', date_day) as date) as month_start,
    extract(year from date_day) as calendar_year,
    extract(month from date_day) as calendar_month,
    extract(isodow from date_day) as iso_day_of_week,
    dayname(date_day) as day_name,
    extract(isodow from date_day) in (6, 7) as is_weekend
from days
