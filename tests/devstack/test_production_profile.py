"""The production-shaped profile: the lake on a Postgres catalog and S3, Dagster on Postgres and S3 logs."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import boto3
import psycopg2
import pytest
from dagster import DagsterInstance, asset, materialize
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from cdr_platform.devstack.stack import Devstack
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from cdr_platform.settings import PROJECT_ROOT, SettingsError, load_settings
from tests.production_profile import new_production_lake

pytestmark = pytest.mark.integration


def test_the_profile_serves_postgres_and_s3_beside_the_embedded_services(production_stack: Devstack) -> None:
    assert set(production_stack.status()) == {"kinesis", "eventstore", "postgres", "s3"}
    exported = production_stack.env_file.read_text()
    assert "export CDR_LAKE_CATALOG='postgres:dbname=lake" in exported
    assert "export CDR_LAKE_DATA_PATH='s3://cdr-lake/lake/'" in exported


def test_the_lake_keeps_its_catalog_in_postgres_and_its_files_on_s3(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = new_production_lake(production_stack, monkeypatch)
    con = connect_lake(lake.catalog, lake.data_path)
    try:
        ensure_schema(con)
        con.execute("CREATE TABLE main.probe AS SELECT range AS n FROM range(1000)")
    finally:
        con.close()
    reader = connect_lake(lake.catalog, lake.data_path, read_only=True)
    try:
        assert reader.execute("SELECT count(*), sum(n) FROM main.probe").fetchone() == (1000, 499500)
    finally:
        reader.close()

    with psycopg2.connect(lake.catalog.removeprefix("postgres:")) as pg, pg.cursor() as cur:
        cur.execute("SELECT table_name FROM ducklake_table WHERE end_snapshot IS NULL")
        assert "probe" in {row[0] for row in cur.fetchall()}
    bucket, _, prefix = lake.data_path.removeprefix("s3://").partition("/")
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    assert any(obj["Key"].endswith(".parquet") for obj in listed.get("Contents", []))


def test_dagster_keeps_runs_events_and_schedules_in_postgres_and_compute_logs_on_s3(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_production_lake(production_stack, monkeypatch)  # the AWS variables, for the S3 check below
    instance = DagsterInstance.from_config(str(production_stack.dagster_home))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)

        @asset
        def shouts() -> None:
            print("compute log line for S3")

        result = materialize([shouts], instance=instance)
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
    finally:
        instance.dispose()
    s3 = boto3.client("s3")
    bucket = production_stack.config.lake_bucket
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"dagster/compute-logs/storage/{result.run_id}/")
    bodies = [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read().decode() for o in listed["Contents"]]
    assert any("compute log line for S3" in body for body in bodies)


def _put_secret(values: dict[str, str]) -> str:
    secret_id = f"cdr/test/{uuid.uuid4().hex[:10]}"
    boto3.client("secretsmanager").create_secret(Name=secret_id, SecretString=json.dumps(values))
    return secret_id


def test_the_salt_and_eventstore_uri_come_from_secrets_manager(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch
) -> None:
    new_production_lake(production_stack, monkeypatch)  # AWS_ENDPOINT_URL_SECRETS_MANAGER and keys
    uri = "esdb://platform:s3cret-pw@esdb.internal:2113?Tls=true"
    secret_id = _put_secret({"pseudonymisation_salt": "salt-from-the-secret", "eventstore_uri": uri})
    settings = load_settings(
        environ={"CDR_ENVIRONMENT": "production", "CDR_SECRETS_MANAGER_SECRET_ID": secret_id}
    )
    assert settings.pseudonymisation_salt.get_secret_value() == "salt-from-the-secret"
    assert settings.eventstore_uri.get_secret_value() == uri
    assert "s3cret-pw" not in repr(settings) and "salt-from-the-secret" not in repr(settings)
    assert settings.with_changes(usage_stream="other").eventstore_uri.get_secret_value() == uri

    with pytest.raises(SettingsError, match="CDR_PSEUDONYMISATION_SALT: also set in the secret"):
        load_settings(
            environ={"CDR_SECRETS_MANAGER_SECRET_ID": secret_id, "CDR_PSEUDONYMISATION_SALT": "stray"}
        )
    with pytest.raises(SettingsError, match="cannot read the secret 'cdr/test/missing'"):
        load_settings(environ={"CDR_SECRETS_MANAGER_SECRET_ID": "cdr/test/missing"})
    unknown = _put_secret({"pseudonymisation_salt": "x", "kinesis_endpoint_url": "http://elsewhere"})
    with pytest.raises(SettingsError, match="unknown key 'kinesis_endpoint_url'") as refused:
        load_settings(environ={"CDR_SECRETS_MANAGER_SECRET_ID": unknown})
    assert "elsewhere" not in str(refused.value)


def test_the_production_dagster_yaml_loads_with_postgres_ecs_and_s3_logs(
    production_stack: Devstack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """deploy/production/dagster.yaml, read from its environment variables against the local endpoints."""
    new_production_lake(production_stack, monkeypatch)
    pg_host, pg_port = production_stack.status()["postgres"].rsplit("@", 1)[1].split(":")
    for key, value in {
        "DAGSTER_PG_HOST": pg_host,
        "DAGSTER_PG_PORT": pg_port,
        "DAGSTER_PG_USER": "cdr",
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_PG_DB": "dagster",
        "DAGSTER_COMPUTE_LOG_BUCKET": production_stack.config.lake_bucket,
    }.items():
        monkeypatch.setenv(key, value)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "production" / "dagster.yaml", home / "dagster.yaml")
    instance = DagsterInstance.from_config(str(home))
    try:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        instance.get_runs(limit=1)  # raises unless the storage answers (Postgres over loopback)
        assert isinstance(instance.run_launcher, EcsRunLauncher)
        assert instance.run_launcher.use_current_ecs_task_config
    finally:
        instance.dispose()
