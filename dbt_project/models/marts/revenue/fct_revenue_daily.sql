{#- Revenue per UTC day: rated usage charges by kind and plan fees, top-ups, the subscriber base and ARPU =
    revenue / the day's average subscriber base (see {{ doc('arpu') }}); revenue per active member
    beside it. Amounts are integer micros of the operator's currency. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='revenue_date',
        on_schema_change='append_new_columns',
    )
}}

with daily as (
    select
        activity_date as revenue_date,
        min(currency) as currency,
        cast(sum(voice_spend_micros) as bigint) as voice_revenue_micros,
        cast(sum(sms_spend_micros) as bigint) as sms_revenue_micros,
        cast(sum(data_spend_micros) as bigint) as data_revenue_micros,
        cast(sum(plan_fee_spend_micros) as bigint) as plan_fee_revenue_micros,
        cast(sum(spend_micros) as bigint) as revenue_micros,
        cast(sum(topup_micros) as bigint) as topup_micros,
        count(*) filter (where is_active) as active_members,
        count(*) filter (where spend_micros > 0) as paying_members,
        max(last_event_at) as last_event_at
    from {{ ref('int_member_days_aggregated') }}
    where activity_date >= {{ lookback_start_day() }}
    group by activity_date
),

-- subscribers: activated and not (yet) deactivated, at the start and at the end of the day
base as (
    select
        daily.revenue_date,
        count(members.member_id) filter (
            where members.activated_at < daily.revenue_date
            and (members.deactivated_at is null or members.deactivated_at >= daily.revenue_date)
        ) as opening_subscribers,
        count(members.member_id) filter (
            where members.activated_at < daily.revenue_date + 1
            and (members.deactivated_at is null or members.deactivated_at >= daily.revenue_date + 1)
        ) as closing_subscribers
    from daily
    cross join {{ ref('int_member_lifecycles_summarised') }} as members
    group by daily.revenue_date
)

select
    daily.revenue_date,
    daily.currency,
    daily.voice_revenue_micros,
    daily.sms_revenue_micros,
    daily.data_revenue_micros,
    daily.plan_fee_revenue_micros,
    daily.revenue_micros,
    daily.topup_micros,
    daily.active_members,
    daily.paying_members,
    coalesce(base.opening_subscribers, 0) as opening_subscribers,
    coalesce(base.closing_subscribers, 0) as closing_subscribers,
    (coalesce(base.opening_subscribers, 0) + coalesce(base.closing_subscribers, 0)) / 2.0 as average_subscribers,
    {{ kpi_ratio('daily.revenue_micros', '(coalesce(base.opening_subscribers, 0) + coalesce(base.closing_subscribers, 0)) / 2.0') }}
        as arpu_micros,
    {{ kpi_ratio('daily.revenue_micros', 'daily.active_members') }} as revenue_per_active_member_micros,
    daily.last_event_at
from daily
left join base on base.revenue_date = daily.revenue_date
