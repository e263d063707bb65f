{#- The as-of time of the executives' view, one row; see {{ doc('as_of') }}. A view, so it moves
    as soon as a landing run commits. -#}
{{ config(materialized='view') }}

select
    {% if var('as_of') -%}
    timestamptz '{{ var("as_of") }}' as as_of,
    'var' as as_of_basis,
    {%- else -%}
    min(complete_through) filter (where bounds_as_of) as as_of,
    'landed_watermark' as as_of_basis,
    {%- endif %}
    count(*) filter (where bounds_as_of) as bounding_sources
from {{ ref('rpt_exec_source_watermarks') }}
