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
- The executives' KPIs carry a freshness policy: warn after 20 minutes, fail after 45. Their data is
  live regardless (views over closed hours plus the raw layer at query time); the policy watches
  that the closed hours behind them keep being rebuilt on the cadence.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dagster import AssetKey, AssetSpec, AutomationCondition, FreshnessPolicy
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

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
            automation_condition=new_data_on_cadence(),
            freshness_policy=EXEC_FRESHNESS if group == EXEC_GROUP else None,
        )
