{#- A keyed, one-way pseudonym for a subscriber identifier (MSISDN, IMSI, IMEI, party number).
    The salt is a DuckDB variable set on every dbt connection by cdr_platform.analytics.dbt_plugin,
    so it never reaches compiled SQL or the catalog; without it the pseudonym is NULL, never an
    unsalted hash. Equal inputs give equal pseudonyms, so joins and distinct counts still work. -#}
{% macro pseudonymise(expression) -%}
    sha256(getvariable('cdr_pseudonymisation_salt') || ':' || ({{ expression }}))
{%- endmacro %}
