{#- Fails for every combination of `columns` that occurs more than once (composite keys). -#}
{% test unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}

{#- Fails for rows where `expression` is false: ratios within bounds, sums that must add up.
    On a column, `column_name` is available to the expression but not required by it. -#}
{% test expression_is_true(model, expression, column_name=none) %}
select * from {{ model }} where not ({{ expression }})
{% endtest %}

{#- Fails when `column_name` holds more than one distinct value (one operator currency, say). -#}
{% test has_one_value(model, column_name) %}
select count(distinct {{ column_name }}) as distinct_values
from {{ model }}
having count(distinct {{ column_name }}) > 1
{% endtest %}
