"""The direction of travel in shared/STYLE.md, enforced: events <- sources <- lake <- defs.

Each package may import only the packages listed for it; ``devstack`` stands alone and only the
CLI, the developer tools, tests and benchmarks import it. A new import against the direction
fails here with the file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "cdr_platform"
SHARED = {"errors", "settings", "processes"}
"""Plain modules every layer may use: the base error, the typed settings, process facts."""

ALLOWED: dict[str, set[str]] = {
    "events": set(),
    "sources": {"events"} | SHARED,
    "lake": {"events", "sources"} | SHARED,
    "defs": {"events", "sources", "lake"} | SHARED,
    "simulator": {"events", "sources"} | SHARED,
    "analytics": {"lake", "definitions"} | SHARED,
    "devstack": {"errors", "processes"},
    "devtools": {"events", "sources", "lake", "simulator", "devstack", "definitions"} | SHARED,
    "settings": {"events"},
    "errors": set(),
    "processes": set(),
    "definitions": {"defs"} | SHARED,
    "cli": {"analytics", "simulator", "devtools", "lake", "sources"} | SHARED,
}


def _layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0] if len(relative.parts) > 1 else relative.stem


def _imported_layers(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cdr_platform" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def test_every_import_follows_the_direction_of_travel() -> None:
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "node_modules" in path.parts or (path.name == "__init__.py" and path.parent == PACKAGE):
            continue
        layer = _layer(path)
        assert layer in ALLOWED, f"{path}: package {layer!r} has no rule here; add one"
        for line, target in _imported_layers(path):
            if target != layer and target not in ALLOWED[layer]:
                violations.append(f"{path.relative_to(PACKAGE.parent)}:{line} imports cdr_platform.{target}")
    assert not violations, "imports against the direction of travel:\n" + "\n".join(violations)


def test_product_code_never_imports_the_devstack() -> None:
    product = {"events", "sources", "lake", "defs", "simulator", "analytics", "settings", "definitions"}
    assert all("devstack" not in ALLOWED[layer] and "devtools" not in ALLOWED[layer] for layer in product)
