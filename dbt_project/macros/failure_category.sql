{#- Q.850 cause of a failed call -> the category the network KPIs count.
    17 user busy; 18 no user responding and 19 no answer from user; 20 subscriber absent; 21 call
    rejected (the terminal reject of E.425): the called party's causes that ITU-T E.411 counts as
    effective for NER. 34, 42 and 44 are the congestion causes that count as blocking. -#}
{% macro failure_category(code) -%}
    case
        when {{ code }} = 17 then 'user_busy'
        when {{ code }} in (18, 19) then 'no_answer'
        when {{ code }} = 20 then 'subscriber_absent'
        when {{ code }} = 21 then 'call_rejected'
        when {{ code }} in (34, 42, 44) then 'congestion'
        else 'other_failure'
    end
{%- endmacro %}
