"""Analysts on the production profile: a catalog role that sees the mart schemas only and S3 keys that
read the marts' prefix only. Each refusal is tried with the credentials alone (no statement check in
between): raw through the catalog, raw's Parquet file by its path, and writes to either store."""

from __future__ import annotations

import duckdb
import psycopg2
import pytest

from cdr_platform.cli import main
from cdr_platform.devstack import postgres
from cdr_platform.devstack.stack import Devstack
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from tests.iam_object_store import iam_object_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROLE = "cdr_analyst"
IMSI = "310150123456789"


def test_analyst_credentials_read_the_marts_and_refuse_raw_and_writes(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    owner_dsn = production_stack.production_environment()["CDR_LAKE_CATALOG"].removeprefix("postgres:")
    parts = dict(part.split("=", 1) for part in owner_dsn.split())
    postgres.create_database(parts["host"], int(parts["port"]), "lake_acl")
    owner_dsn = owner_dsn.replace("dbname=lake", "dbname=lake_acl")
    analyst_dsn = owner_dsn.replace(f"user={parts['user']}", f"user={ROLE}")
    for key in ("AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    with iam_object_store("lake-acl", "lake/marts/") as store:
        data_path = f"s3://{store.bucket}/lake/"
        for key, value in store.platform.environment(store.endpoint).items():
            monkeypatch.setenv(key, value)
        writer = connect_lake(f"postgres:{owner_dsn}", data_path)
        writer.execute("CALL lake.set_option('data_inlining_row_limit', 0)")  # every row in a file on S3
        ensure_schema(writer)
        writer.execute(
            "INSERT INTO raw.member_events VALUES (uuid(), 'member_joined', 1, now(), 'M1', 'c', 'crm', "
            "?::JSON, 'kinesis', 's/1/0', now())",
            [f'{{"served_imsi": "{IMSI}"}}'],
        )
        writer.execute("CREATE SCHEMA marts")
        writer.execute("CREATE TABLE marts.fct_members AS SELECT range AS n FROM range(3)")
        raw_file = writer.execute(
            "SELECT data_file FROM ducklake_list_files('lake', 'member_events', schema => 'raw')"
        ).fetchone()[0]
        writer.close()
        monkeypatch.setenv("CDR_LAKE_CATALOG", f"postgres:{owner_dsn}")
        assert main(["grant-analysts", "--role", ROLE]) == 0
        assert capsys.readouterr().out == f"CDR_ANALYST_LAKE_CATALOG='postgres:{analyst_dsn}'\n"
        assert main(["grant-analysts", "--role", ROLE]) == 0  # idempotent
        capsys.readouterr()

        for key, value in store.reader.environment(store.endpoint).items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("CDR_LAKE_DATA_PATH", data_path)
        monkeypatch.setenv("CDR_ANALYST_LAKE_CATALOG", f"postgres:{analyst_dsn}")
        assert main(["sql", "-c", "SELECT count(*) AS n FROM fct_members"]) == 0
        assert capsys.readouterr().out == "n\n3\n"

        analyst = connect_lake(f"postgres:{analyst_dsn}", data_path, read_only=True)
        try:
            with pytest.raises(duckdb.CatalogException, match='schema "raw" does not exist'):
                analyst.execute("SELECT payload FROM raw.member_events").fetchall()
            with pytest.raises(duckdb.Error, match="403"):  # the file, found by the owner: S3 refuses it
                analyst.execute("SELECT * FROM read_parquet(?)", [raw_file]).fetchall()
            with pytest.raises(duckdb.Error, match="403"):
                analyst.execute(f"COPY (SELECT 1 AS n) TO '{data_path}marts/forged.parquet'")
        finally:
            analyst.close()
        writable = connect_lake(f"postgres:{analyst_dsn}", data_path)  # not READ_ONLY: the role refuses
        try:
            with pytest.raises(duckdb.Error, match=r"permission denied|403"):
                writable.execute("INSERT INTO marts.fct_members VALUES (4)")
        finally:
            writable.close()

    catalog = psycopg2.connect(analyst_dsn)
    try:
        with catalog.cursor() as cur:
            cur.execute("SELECT path FROM ducklake_data_file")
            assert all("member_events" not in row[0] for row in cur.fetchall())
            cur.execute("SELECT count(*) FROM ducklake_data_file")
            assert cur.fetchone()[0] == 1  # the mart's file only
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute("DELETE FROM ducklake_snapshot")
    finally:
        catalog.close()
