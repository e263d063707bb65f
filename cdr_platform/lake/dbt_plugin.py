"""dbt-duckdb plugin: prepares every dbt connection to the lake before dbt attaches it.

dbt-duckdb would download extensions by name, which these machines cannot do, so the plugin
installs ``ducklake`` and the catalog's scanner from their PyPI wheels first (a fresh CI machine has
an empty ``~/.duckdb``), and gives an S3 data path its credentials. It also puts the
pseudonymisation salt in a DuckDB variable on every connection and cursor: the staging views hash
phone numbers and IMSI/IMEI with ``getvariable('cdr_pseudonymisation_salt')``, so the salt never
appears in compiled SQL, ``manifest.json`` or the view definitions stored in the catalog. Settings
come from ``load_settings()``, exactly as for the rest of the platform.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dbt.adapters.duckdb.plugins import BasePlugin
from duckdb import DuckDBPyConnection

from cdr_platform.lake.connection import ensure_local_folders, prepare_connection
from cdr_platform.settings import load_settings

SALT_VARIABLE = "cdr_pseudonymisation_salt"


class Plugin(BasePlugin):
    """Referenced from ``dbt_project/profiles.yml`` as ``cdr_platform.lake.dbt_plugin``."""

    def initialize(self, plugin_config: dict[str, Any]) -> None:
        settings = load_settings()
        self._catalog = settings.resolved_lake_catalog
        self._data_path = settings.resolved_lake_data_path
        self._salt = settings.pseudonymisation_salt.get_secret_value()
        # dbt may run before any landing (the automation on a fresh data folder): it attaches the
        # lake, so its folders must exist, as they do for every other writer.
        ensure_local_folders(self._catalog, self._data_path)

    def update_connection_config(self, creds: Any, config: dict[str, Any]) -> None:
        """Keep the in-memory home database when dagster-dbt opens its own adapter.

        To fetch column metadata, dagster-dbt opens the profile in-process with the path made
        absolute and ``access_mode=READ_ONLY`` (right for a DuckDB file, impossible for
        ``:memory:``). The warehouse is the attached lake, which takes concurrent readers.
        """
        if Path(creds.path).name == ":memory:":
            creds.path = ":memory:"
            if str(config.get("access_mode", "")).upper() == "READ_ONLY":
                del config["access_mode"]

    def configure_connection(self, conn: DuckDBPyConnection) -> None:
        prepare_connection(conn, self._catalog, self._data_path)  # extensions, S3 credentials
        self.configure_cursor(conn)

    def configure_cursor(self, cursor: DuckDBPyConnection) -> None:
        cursor.execute(f"SET VARIABLE {SALT_VARIABLE} = ?", [self._salt])
