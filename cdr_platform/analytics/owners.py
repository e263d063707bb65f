"""Who owns what: every asset of a Definitions with its owners, group and neighbours."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from dagster import Definitions


@dataclass(frozen=True)
class OwnerRow:
    """One asset: key, owners, group (the owning team), upstream and downstream asset keys."""

    asset_key: str
    owners: list[str]
    group: str | None
    upstream: list[str] = field(default_factory=list)
    downstream: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def owners_report(defs: Definitions) -> list[OwnerRow]:
    """Every asset of ``defs`` (materialisable or external), sorted by key."""
    graph = defs.resolve_asset_graph()
    rows = []
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        rows.append(
            OwnerRow(
                asset_key=key.to_user_string(),
                owners=list(node.owners),
                group=node.group_name,
                upstream=sorted(k.to_user_string() for k in node.parent_keys),
                downstream=sorted(k.to_user_string() for k in node.child_keys),
            )
        )
    return sorted(rows, key=lambda row: row.asset_key)


def unowned(rows: list[OwnerRow]) -> list[str]:
    """Keys of the assets nobody owns."""
    return [row.asset_key for row in rows if not row.owners]


def format_owners_table(rows: list[OwnerRow]) -> str:
    """A plain-text table for terminals: one line per asset."""
    header = ("ASSET", "OWNERS", "GROUP", "UPSTREAM", "DOWNSTREAM")
    lines = [
        (
            r.asset_key,
            ", ".join(r.owners) or "-",
            r.group or "-",
            ", ".join(r.upstream) or "-",
            ", ".join(r.downstream) or "-",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(3)]
    return "\n".join(
        f"{a:<{widths[0]}}  {o:<{widths[1]}}  {g:<{widths[2]}}  <- {u}  -> {d}"
        for a, o, g, u, d in [header, *lines]
    )
