"""How dbt resources become Dagster assets: keys, owners, groups, automation and freshness.

- Keys are ``<schema>/<model>`` (``marts/fct_calls``), like ``raw/usage_events`` upstream; the
  raw sources map onto the landing assets' keys through their ``meta.dagster.asset_key``.
- Groups are the dbt groups (the owning teams, in ``models/_groups.yml``); owners are
  ``team:<group>`` plus the group owner's email, so ownership is declared once, in dbt.
- Automation: every model runs on a 10-minute cadence **only if** something upstream changed
  since it last ran. Landing commits every sensor tick, so ``eager()`` would keep dbt running
  back to back; batching by a cron tick bounds builds to six an hour while keeping the executive
  view within ~10 minutes plus build time of the raw layer. Requests propagate down the graph in
  the same evaluation, so one run carries a change from staging to the KPIs.
  A model with no upstream at all (``dim_date``, a generated calendar) can never see a change, so
  it runs when missing and when its SQL changes instead.
- The executives' KPIs carry a freshness policy: warn after 20 minutes, fail after 45. Their data is
  live regardless (views over closed hours plus the raw layer at query time); the policy watches
  that the closed hours behind them keep being rebuilt on the cadence.
- Descriptions are the dbt descriptions without the raw SQL (the code reference links to it); a dbt
  test without a description gets one said from its kind, column and arguments.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dagster import AssetCheckSpec, AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject
from dagster_dbt.asset_utils import default_description_fn

from cdr_platform.defs.teams import DATA_PLATFORM, team

AUTOMATION_CRON = "*/10 * * * *"
EXEC_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=timedelta(minutes=45), warn_window=timedelta(minutes=20)
)
EXEC_GROUP = "executive_reporting"


def new_data_on_cadence(cron: str = AUTOMATION_CRON) -> AutomationCondition:
    """Run after a cron tick if any dependency updated (or is about to) since this asset last ran."""
    dep_changed = (
        AutomationCondition.any_deps_updated()
        | AutomationCondition.any_deps_match(AutomationCondition.will_be_requested())
    ).since_last_handled()
    return (
        AutomationCondition.cron_tick_passed(cron).since_last_handled()
        & dep_changed
        & ~AutomationCondition.in_progress()
    ).with_label(f"on new data, at most every tick of {cron}")


def when_missing_or_changed() -> AutomationCondition:
    """For a model without upstream: run when never built, or when its code version (its SQL) changed.

    A failed build is not retried tick after tick (the daily full build or a person retries it).
    """
    never_built = AutomationCondition.missing() & ~AutomationCondition.execution_failed()
    return (
        (never_built | AutomationCondition.code_version_changed().since_last_handled())
        & ~AutomationCondition.in_progress()
    ).with_label("when missing or its SQL changed")


def describe_test(test: Mapping[str, Any]) -> str:
    """The dbt test's own description, else one said from its kind, model, column and arguments."""
    if test.get("description"):
        return str(test["description"]).strip()
    metadata = test.get("test_metadata") or {}
    kind, kwargs = metadata.get("name"), metadata.get("kwargs") or {}
    model = str(test.get("attached_node") or "").rsplit(".", 1)[-1] or "the model"
    column = f"`{test['column_name']}`" if test.get("column_name") else None
    if kind == "unique" and column:
        return f"{column} is unique in {model}."
    if kind == "not_null" and column:
        return f"{column} is never null in {model}."
    if kind == "accepted_values" and column:
        return f"{column} in {model} only takes the values {', '.join(map(str, kwargs.get('values', [])))}."
    if kind == "relationships" and column:
        target = str(kwargs.get("to", "")).removeprefix("ref('").removesuffix("')")
        return f"Every {column} of {model} exists in {target}.{kwargs.get('field')}."
    if kind == "unique_combination":
        return f"({', '.join(kwargs.get('columns', []))}) is unique in {model}."
    if kind == "expression_is_true":
        return f"`{kwargs.get('expression')}` holds on every row of {model}."
    subject = f" on {column}" if column else ""
    return f"dbt test {kind or test['name']} of {model}{subject}: fails when its query returns rows."


class CdrDbtTranslator(DagsterDbtTranslator):
    """dagster-dbt translator for the cdr-platform dbt project."""

    def __init__(self) -> None:
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                enable_code_references=True,
                enable_source_tests_as_checks=False,
            )
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "snapshot", "seed"):
            return AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        return default_description_fn(dbt_resource_props, display_raw_sql=False)

    def get_asset_check_spec(
        self,
        asset_spec: AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> AssetCheckSpec | None:
        spec = super().get_asset_check_spec(asset_spec, manifest, unique_id, project)
        if spec is None or spec.description:
            return spec
        # Every other field as dagster-dbt made it (partitions_def included, and any field added later).
        return spec._replace(description=describe_test(self.get_resource_props(manifest, unique_id)))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        if not unique_id.startswith("model."):
            return spec
        group = spec.group_name or DATA_PLATFORM
        owners = team(group).owners
        return spec.replace_attributes(
            owners=owners,
            automation_condition=new_data_on_cadence() if spec.deps else when_missing_or_changed(),
            freshness_policy=EXEC_FRESHNESS if group == EXEC_GROUP else None,
        )
