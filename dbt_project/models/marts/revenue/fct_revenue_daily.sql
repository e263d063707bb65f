{#- Revenue per UTC day: rated usage charges by kind, top-ups, and ARPU = revenue / active members
    that day (see {{ doc('arpu') }}). Amounts are integer micros of the operator's currency. -#}
{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='revenue_date',
        on_schema_change='append_new_columns',
    )
}}

select
    activity_date as revenue_date,
    min(currency) as currency,
    cast(sum(voice_spend_micros) as bigint) as voice_revenue_micros,
    cast(sum(sms_spend_micros) as bigint) as sms_revenue_micros,
    cast(sum(data_spend_micros) as bigint) as data_revenue_micros,
    cast(sum(spend_micros) as bigint) as revenue_micros,
    cast(sum(topup_micros) as bigint) as topup_micros,
    count(*) filter (where is_active) as active_members,
    count(*) filter (where spend_micros > 0) as paying_members,
    {{ kpi_ratio('sum(spend_micros)', 'count(*) filter (where is_active)') }} as arpu_micros,
    max(last_event_at) as last_event_at
from {{ ref('int_member_days_aggregated') }}
where activity_date >= {{ lookback_start_day() }}
group by activity_date
