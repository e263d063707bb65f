{#- "Now" for the intraday reports and churn features: the `as_of` var when given (an ISO
    timestamp, UTC), otherwise the latest event time in the data (any call event, or any usage
    event a member day counts). Using the data's own clock makes the reports deterministic on
    replayed or simulated history, and honest when landing lags (they show what is known). -#}
{% macro as_of_timestamp() -%}
    {%- if var('as_of') -%}
        timestamptz '{{ var("as_of") }}'
    {%- else -%}
        (
            select greatest(
                (select max(last_event_at) from {{ ref('int_member_days_aggregated') }}),
                (select max(last_event_at) from {{ ref('fct_calls') }})
            )
        )
    {%- endif -%}
{%- endmacro %}
