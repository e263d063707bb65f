"""Analytics on the marts: the dbt connection plugin, the owners report and the SQL shell."""
