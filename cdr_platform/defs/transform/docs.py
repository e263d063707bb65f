"""``python -m cdr_platform.defs.transform.docs [--port 8080] [--no-serve]``: dbt docs, built and served.

Offline: dbt's docs site is one self-contained page. Against a lake that exists (the settings'
``CDR_DATA_DIR``, ``.data`` by default, after ``make dev`` or ``make demo``) the catalog holds
every relation's columns and row statistics; before anything has landed, the docs are built
from the manifest alone (``--no-compile --empty-catalog``), so no lake is created as a side
effect (the page then reads the manifest ``make prepare`` parsed). The docs go to
``dbt_project/target/docs/``, apart from the manifest Dagster loads.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from cdr_platform.defs.resources import LakeResource
from cdr_platform.defs.transform.project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_cli, dbt_project
from cdr_platform.settings import load_settings

DOCS_PORT = 8080
DOCS_TARGET = DBT_PROJECT_DIR / "target" / "docs"


def generate_docs(lake: LakeResource, target: Path = DOCS_TARGET) -> Path:
    """``dbt docs generate`` into ``target``; returns the path of the site's ``index.html``."""
    project = dbt_project()
    args = ["docs", "generate"] + ([] if lake.exists() else ["--no-compile", "--empty-catalog"])
    with lake.dbt_environment():
        dbt_cli(project).cli(args, target_path=target).wait()
    if not (target / "manifest.json").exists():  # --no-compile writes none; the page needs the parsed one
        shutil.copyfile(project.manifest_path, target / "manifest.json")
    return target / "index.html"


def serve_docs(port: int, target: Path = DOCS_TARGET) -> int:
    """``dbt docs serve`` on 127.0.0.1:``port`` until interrupted; returns dbt's exit code.

    A plain subprocess (serving yields no dbt events); it shares this terminal, so Ctrl-C stops it.
    """
    command = [DBT_EXECUTABLE, "docs", "serve", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    paths = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
    return subprocess.run([*command, *paths, "--target-path", str(target)], check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build dbt's docs site and serve it.")
    parser.add_argument("--port", type=int, default=DOCS_PORT, help=f"port to serve on (default {DOCS_PORT})")
    parser.add_argument("--no-serve", action="store_true", help="build the docs and exit")
    parser.add_argument(
        "--target", type=Path, default=DOCS_TARGET, help=f"output folder (default {DOCS_TARGET})"
    )
    args = parser.parse_args(argv)
    settings = load_settings()
    lake = LakeResource(catalog=settings.resolved_lake_catalog, data_path=settings.resolved_lake_data_path)
    index = generate_docs(lake, args.target)
    catalog = "the lake's catalog" if lake.exists() else "no lake yet: models without their catalog"
    print(f"dbt docs: {index} ({catalog})", flush=True)
    if not args.no_serve:
        print(f"serving dbt docs at http://127.0.0.1:{args.port} (Ctrl-C stops)", flush=True)
        return serve_docs(args.port, args.target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
