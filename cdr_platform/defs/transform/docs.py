"""``python -m cdr_platform.defs.transform.docs [--port 8080] [--no-serve]``: dbt docs, built and served.

Offline: dbt's docs site is one self-contained page. Against a lake that exists (the settings'
``CDR_DATA_DIR``, ``.data`` by default, after ``make dev`` or ``make demo``) the catalog holds
every relation's columns and row statistics; before anything has landed, the docs are built
from the manifest alone (``--no-compile --empty-catalog``), so no lake is created as a side
effect. The docs go to ``dbt_project/target/docs/``, apart from the manifest Dagster loads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.project import DBT_PROJECT_DIR, dbt_cli, dbt_project
from cdr_platform.settings import load_settings

DOCS_PORT = 8080
DOCS_TARGET = DBT_PROJECT_DIR / "target" / "docs"


def generate_docs(lake: LakeResource, target: Path = DOCS_TARGET) -> Path:
    """``dbt docs generate`` into ``target``; returns the path of the site's ``index.html``."""
    args = ["docs", "generate"] + ([] if lake.exists() else ["--no-compile", "--empty-catalog"])
    with lake.dbt_environment():
        dbt_cli(dbt_project()).cli(args, target_path=target).wait()
    return target / "index.html"


def serve_docs(lake: LakeResource, port: int, target: Path = DOCS_TARGET) -> None:
    """``dbt docs serve`` on 127.0.0.1:``port`` until interrupted."""
    with lake.dbt_environment():
        dbt_cli(dbt_project()).cli(
            ["docs", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-browser"],
            target_path=target,
        ).wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build dbt's docs site and serve it.")
    parser.add_argument("--port", type=int, default=DOCS_PORT, help=f"port to serve on (default {DOCS_PORT})")
    parser.add_argument("--no-serve", action="store_true", help="build the docs and exit")
    args = parser.parse_args(argv)
    settings = load_settings()
    lake = LakeResource(catalog=settings.resolved_lake_catalog, data_path=settings.resolved_lake_data_path)
    index = generate_docs(lake)
    catalog = "the lake's catalog" if lake.exists() else "no lake yet: models without their catalog"
    print(f"dbt docs: {index} ({catalog})", flush=True)
    if not args.no_serve:
        print(f"serving dbt docs at http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
        serve_docs(lake, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
