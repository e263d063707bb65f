"""dbt in Dagster: the models as assets (dbt tests as checks), the exposures that read them, the
schedules, and the automation sensor. The manifest is read once: ``validate_manifest`` caches it
for ``@dbt_assets``."""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus, Definitions
from dagster_dbt.dbt_manifest import validate_manifest

from cdr_platform.defs.transform.assets import build_dbt_assets
from cdr_platform.defs.transform.exposures import exposure_specs
from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.defs.transform.schedules import (
    daily_dbt_build_schedule,
    dead_letter_schedule,
    reprocess_dead_letter_job,
)

project = dbt_project()
cdr_dbt_models = build_dbt_assets(project)

marts_automation_sensor = AutomationConditionSensorDefinition(
    "marts_automation",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,  # Dagster's implicit one starts stopped
    minimum_interval_seconds=30,
    description="Evaluates the dbt models' automation conditions: marts update soon after raw data lands.",
)

defs = Definitions(
    assets=[cdr_dbt_models, *exposure_specs(validate_manifest(project.manifest_path))],
    jobs=[reprocess_dead_letter_job],
    schedules=[daily_dbt_build_schedule(cdr_dbt_models), dead_letter_schedule],
    sensors=[marts_automation_sensor],
    resources={"dbt": dbt_cli(project)},
)
