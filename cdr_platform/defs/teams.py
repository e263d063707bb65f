"""Owning teams, declared once in dbt's ``models/_groups.yml`` and read by every asset.

A dbt group is a team: Dagster shows it as the asset group, and the owners of every asset, dbt or
Python, are ``team:<group>`` followed by the group owner's email. Adding a team is one entry in
``_groups.yml``; nothing here changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

GROUPS_FILE = Path(__file__).resolve().parents[2] / "dbt_project" / "models" / "_groups.yml"

DATA_PLATFORM = "data_platform"
"""The team that owns landing, recovery and the raw layer."""


class UnknownTeamError(KeyError):
    """An asset names a team that ``_groups.yml`` does not declare."""


@dataclass(frozen=True)
class Team:
    """One owning team: its group name, display name and contact email."""

    group: str
    name: str
    email: str

    @property
    def owners(self) -> list[str]:
        """The asset owners every asset of this team carries, in this order."""
        return [f"team:{self.group}", self.email]


@cache
def teams() -> dict[str, Team]:
    """Every team of ``_groups.yml``, by group name (read once per process)."""
    document = yaml.safe_load(GROUPS_FILE.read_text())
    return {
        group["name"]: Team(group["name"], group["owner"]["name"], group["owner"]["email"])
        for group in document["groups"]
    }


def team(group: str) -> Team:
    """The team named ``group``; a clear error if ``_groups.yml`` does not declare it."""
    try:
        return teams()[group]
    except KeyError as exc:
        raise UnknownTeamError(f"team {group!r} is not declared in {GROUPS_FILE}") from exc
