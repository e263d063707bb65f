{#- numerator / denominator as a double, NULL (not 0, not an error) when the denominator is 0. -#}
{% macro kpi_ratio(numerator, denominator) -%}
    cast({{ numerator }} as double) / nullif({{ denominator }}, 0)
{%- endmacro %}
