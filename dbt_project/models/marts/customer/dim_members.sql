{#- One row per member: plan, status and lifecycle dates. Identifiers are pseudonyms only. -#}
select
    member_id,
    case
        when deactivated_at is not null then 'deactivated'
        when port_out_requested_at is not null then 'port_out_requested'
        when activated_at is not null then 'active'
        else 'unknown'
    end as member_status,
    plan_id,
    plan_type,
    activation_plan_id,
    plan_changes,
    activated_at,
    cast(activated_at as date) as activation_date,
    port_out_requested_at,
    port_out_recipient,
    deactivated_at,
    deactivation_reason,
    msisdn_pseudonym,
    imsi_pseudonym,
    imei_pseudonym,
    home_plmn_id,
    last_lifecycle_event_at
from {{ ref('int_member_lifecycles_summarised') }}
