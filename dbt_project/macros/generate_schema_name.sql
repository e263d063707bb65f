{#- Models go to the schema their folder names (staging, intermediate, marts), not <target>_<schema>:
    the lake has one set of layers, shared by analysts, landing runs and dbt. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
