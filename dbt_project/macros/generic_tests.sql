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
