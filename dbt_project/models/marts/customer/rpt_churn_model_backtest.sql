{#- The churn-risk score judged before the churn: one row per backtest cut-off, the score computed
    from events before the cut-off only, the label = churn within `churn_horizon_days` after it.
    AUC (ties count half), precision among the top k scores (ties broken by member_id) and the
    base rate to read them against. See {{ doc('churn_model') }}. -#}
{%- set k = var('churn_precision_k') | int %}

with scored as (
    select
        as_of_date,
        member_id,
        churn_risk_score,
        churned_within_horizon,
        score_components_available,
        rank() over (partition by as_of_date order by churn_risk_score) as low_rank,
        count(*) over (partition by as_of_date, churn_risk_score) as tied,
        row_number() over (partition by as_of_date order by churn_risk_score desc, member_id) as top_position
    from {{ ref('int_churn_features_point_in_time') }}
    where is_backtest_cutoff
),

per_cutoff as (
    select
        as_of_date,
        count(*) as members,
        count(*) filter (where churned_within_horizon) as churners,
        -- Mann-Whitney: the average rank of the churners' scores (tied scores share their mean rank)
        sum(low_rank + (tied - 1) / 2.0) filter (where churned_within_horizon) as churner_rank_sum,
        least({{ k }}, count(*)) as k,
        count(*) filter (where churned_within_horizon and top_position <= {{ k }}) as churners_in_top_k,
        avg(score_components_available) as avg_score_components_available
    from scored
    group by as_of_date
)

select
    as_of_date as cutoff_date,
    cast(as_of_date + interval {{ var('churn_horizon_days') | int }} day as date) as label_window_end,
    cast({{ var('churn_horizon_days') | int }} as integer) as horizon_days,
    members,
    churners,
    {{ kpi_ratio('churners', 'members') }} as base_rate,
    case when churners > 0 and churners < members then
        (churner_rank_sum - churners * (churners + 1) / 2.0) / (churners * (members - churners))
    end as auc,
    k,
    churners_in_top_k,
    {{ kpi_ratio('churners_in_top_k', 'k') }} as precision_at_k,
    {{ kpi_ratio(kpi_ratio('churners_in_top_k', 'k'), kpi_ratio('churners', 'members')) }} as lift_at_k,
    avg_score_components_available
from per_cutoff
