"""dbt exposures (``models/_exposures.yml``) as Dagster assets downstream of the marts they read.

An exposure is a consumer outside the warehouse (the executives' dashboard, the churn model), so
it is an asset Dagster does not materialize: it shows who reads which marts, and who to tell when
one of them breaks. Its key is ``exposures/<name>``; its team is the dbt group whose owner email
the exposure names, so its owners and group come from ``_groups.yml`` like every other asset's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AssetSpec, MetadataValue

from cdr_platform.defs.teams import GROUPS_FILE, Team, teams
from cdr_platform.defs.transform.translator import CdrDbtTranslator
from cdr_platform.errors import PlatformError


class ExposureOwnerError(PlatformError):
    """An exposure's owner email is no team's in ``_groups.yml``."""


def exposure_team(exposure: Mapping[str, Any]) -> Team:
    """The team whose ``_groups.yml`` owner email the exposure names."""
    email = (exposure.get("owner") or {}).get("email")
    for candidate in teams().values():
        if candidate.email == email:
            return candidate
    raise ExposureOwnerError(
        f"exposure {exposure['name']!r} names owner {email!r}, which is no group owner in {GROUPS_FILE}: "
        "use the owning team's email"
    )


def exposure_specs(manifest: Mapping[str, Any]) -> list[AssetSpec]:
    """One asset per dbt exposure, downstream of the models it depends on, owned by its team."""
    translator = CdrDbtTranslator()
    specs = []
    for unique_id, exposure in sorted(manifest["exposures"].items()):
        owner = exposure_team(exposure)
        deps = [
            translator.get_asset_key(translator.get_resource_props(manifest, parent))
            for parent in exposure["depends_on"]["nodes"]
        ]
        metadata: dict[str, Any] = {"dbt/unique_id": unique_id, "maturity": exposure.get("maturity")}
        if exposure.get("url"):
            metadata["url"] = MetadataValue.url(exposure["url"])
        specs.append(
            AssetSpec(
                key=AssetKey(["exposures", exposure["name"]]),
                deps=deps,
                description=(exposure.get("label") or exposure["name"])
                + ": "
                + " ".join(exposure.get("description", "").split()),
                group_name=owner.group,
                owners=owner.owners,
                kinds={"dbt", exposure["type"]},
                metadata={k: v for k, v in metadata.items() if v is not None},
            )
        )
    return specs
