{#- One row per tariff plan members have been activated on or moved to, with its type and how many
    members are on it now. -#}
with members as (
    select * from {{ ref('int_member_lifecycles_summarised') }}
),

plans as (
    select plan_id, plan_type from members where plan_id is not null
    union all
    select activation_plan_id, null from members where activation_plan_id is not null
),

current_members as (
    select plan_id, count(*) as current_members
    from members
    where deactivated_at is null and plan_id is not null
    group by plan_id
)

select
    plans.plan_id,
    min(plans.plan_type) as plan_type,
    coalesce(any_value(current_members.current_members), 0) as current_members
from plans
left join current_members on current_members.plan_id = plans.plan_id
group by plans.plan_id
