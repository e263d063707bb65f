"""dbt in Dagster: models as assets downstream of the raw landing assets (see ``definitions.py``)."""
