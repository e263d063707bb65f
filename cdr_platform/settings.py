"""One typed settings object for every endpoint, stream, storage path and secret.

Values come from, in increasing priority: the defaults below (the embedded local stack), a TOML
file named by ``CDR_CONFIG_FILE`` (keys without the prefix), ``CDR_*`` environment variables, and
keyword overrides given to ``load_settings``. Everything is checked at start: an unknown key or an
invalid value stops the program with the ``CDR_*`` key and the reason, so a typo in a production
deployment never silently falls back to a local default, and nothing fails later inside a client
library. Secrets (the salt, the EventStoreDB URI, which holds a password in production) are
``SecretStr``: ``repr``, logs and error messages show them masked or with the password redacted.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qs, urlsplit, urlunsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from cdr_platform.events.catalog import MEMBER_EVENT_TYPES

ENV_PREFIX = "CDR_"
CONFIG_FILE_ENV = "CDR_CONFIG_FILE"
LOCAL_SALT = "local-dev-salt-not-for-production"
PROJECT_ROOT = Path(__file__).resolve().parent.parent

# What esdbclient 1.0.25 accepts in a connection string (esdbclient/connection_spec.py); checked
# here so that a bad URI fails at start with its key instead of later in the relay or a sensor.
# tests/test_settings.py compares these with esdbclient's own lists.
ESDB_SCHEMES = ("esdb", "esdb+discover")
ESDB_BOOLEAN_OPTIONS = ("Tls", "TlsVerifyCert")
ESDB_INTEGER_OPTIONS = (
    "MaxDiscoverAttempts",
    "DiscoveryInterval",
    "GossipTimeout",
    "DefaultDeadline",
    "KeepAliveInterval",
    "KeepAliveTimeout",
)
ESDB_NODE_PREFERENCES = ("leader", "follower", "random", "readonlyreplica")
ESDB_OPTIONS = ("Tls", "ConnectionName", "NodePreference", "TlsVerifyCert", *ESDB_INTEGER_OPTIONS)

AWS_REGION_SHAPE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")
"""A real AWS region name (``eu-west-1``, ``us-gov-west-1``)."""
BOTOCORE_REGION_NAME = re.compile(r"^(?![0-9]+$)(?!-)[a-zA-Z0-9-]{1,63}(?<!-)$")
"""What botocore accepts as a region (a host label): any such name works against a local endpoint."""
KINESIS_STREAM_NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
LAKE_CATALOG_KINDS = ("sqlite:", "postgres:", "duckdb:")
REMOTE_DATA_PATH_SCHEMES = ("s3", "gs", "r2", "https")
"""Object stores the lake's httpfs extension reaches (see ``lake.connection.needed_extensions``)."""

_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("cdr_settings_environ", default=None)
"""The environment one ``load_settings`` call reads instead of ``os.environ``, set and reset
around that call only, so a caller (a test, ``Settings.with_changes``) can pass its own without
touching the process environment."""
_SECRETS_RESOLVED: ContextVar[bool] = ContextVar("cdr_settings_secrets_resolved", default=False)
"""True inside ``Settings.with_changes``: the copy keeps the values already read from Secrets Manager."""


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names the ``CDR_*`` key and the reason."""


def redacted_uri(uri: str | SecretStr) -> str:
    """``uri`` with its password replaced by ``***``: what log lines and error messages may show."""
    raw = uri.get_secret_value() if isinstance(uri, SecretStr) else uri
    parts = urlsplit(raw)
    if "@" not in parts.netloc:
        return raw
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, has_password, _ = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=f"{username}:***@{hosts}" if has_password else parts.netloc))


class Settings(BaseSettings):
    """Everything the platform needs to find its endpoints and storage.

    Build it with ``load_settings()``; ``with_changes`` derives a validated copy (pydantic's
    ``model_copy(update=...)`` would skip validation, and leave a plain string where a secret goes).
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True
    )

    # Fields are validated in this order; later validators read earlier values (the salt reads
    # the environment, the region the Kinesis endpoint).
    environment: Literal["local", "production"] = "local"
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".data", description="Local state: devstack, lake, Dagster."
    )

    kinesis_endpoint_url: str | None = Field(
        default="http://127.0.0.1:4568",
        description="Kinesis endpoint; empty means real AWS via the default credential chain.",
    )
    aws_region: str = "us-east-1"
    usage_stream: str = "cdr-usage-events"
    usage_stream_shards: int = Field(default=2, ge=1, le=50)

    eventstore_uri: SecretStr = Field(
        default=SecretStr("esdb://127.0.0.1:2113?Tls=false"),
        description="EventStoreDB connection string; holds the password in production.",
    )
    eventstore_root_certificates: Path | None = None
    member_event_types: tuple[str, ...] = (
        "member_activated",
        "plan_changed",
        "port_out_requested",
        "member_deactivated",
    )

    reconcile_settle_seconds: int = Field(
        default=120,
        ge=0,
        description="Reconciliation ignores events recorded more recently (still in flight).",
    )

    reconcile_lookback_hours: int = Field(
        default=6,
        ge=1,
        le=24 * 31,
        description="Hours of event time every incremental reconciliation re-judges, besides the hours "
        "touched by new index entries and new raw rows since its last run.",
    )
    dedupe_window_hours: float = Field(
        default=6,
        gt=0,
        le=24 * 31,
        description="How far apart in occurred_at two sightings of one event_id may be and still land once. "
        "Relay redeliveries and replays carry EventStoreDB's stored bytes (0 apart); only a producer "
        "re-stamping a retried fact moves occurred_at, by its retry budget (seconds to minutes). "
        "Landing reads this slice of event time around each batch, so a wider window costs more.",
    )
    relay_max_lag_seconds: int = Field(
        default=300,
        ge=1,
        description="The relay_lag check fails when the oldest usage event in $all that the relay has not "
        "published to Kinesis was recorded longer ago than this (a dead or stuck relay).",
    )
    lake_snapshot_retention_hours: int = Field(
        default=168,
        ge=1,
        description="Lake maintenance expires snapshots older than this: time travel reaches this far back.",
    )

    lake_catalog: str = Field(
        default="",
        description="DuckLake catalog: 'sqlite:<path>' locally, 'postgres:<libpq dsn>' in production.",
    )
    lake_data_path: str = Field(default="", description="DuckLake data files: a folder or an s3:// prefix.")
    analyst_lake_catalog: str = Field(
        default="",
        description="The catalog analysts' `cdr-platform sql` sessions attach (production: a Postgres DSN "
        "as a role made by lake/catalog_roles.py, which reads the mart schemas only); empty: lake_catalog. "
        "Their S3 reads use the AWS default credential chain: give analysts read-only credentials.",
    )
    kinesis_shard_groups: int = Field(
        default=4,
        description="Concurrent Kinesis landing runs on a Postgres catalog, each owning the shards of one "
        "slice of the hash-key space (1, 2, 4 or 8: aligned with the lake's claim ranges). A SQLite "
        "catalog always lands with one run.",
    )

    pseudonymisation_salt: SecretStr = SecretStr(LOCAL_SALT)

    secrets_manager_secret_id: str | None = Field(
        default=None,
        description="AWS Secrets Manager secret (a JSON object) holding the pseudonymisation salt and the "
        "EventStoreDB URI; read once at start, in CDR_AWS_REGION, through the default credential chain.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword overrides, then ``CDR_*`` variables, then the ``CDR_CONFIG_FILE`` TOML file.

        pydantic-settings' own environment source ignores unknown prefixed variables and reads
        only ``os.environ``; ours rejects them and reads the environment ``load_settings`` got.
        """
        environ = _ENVIRON.get()
        environ = os.environ if environ is None else environ
        sources: list[PydanticBaseSettingsSource] = [init_settings, _EnvironSource(settings_cls, environ)]
        if config_file := environ.get(CONFIG_FILE_ENV):
            sources.append(_toml_source(settings_cls, Path(config_file)))
        if not _SECRETS_RESOLVED.get():
            sources.append(_SecretsManagerSource(settings_cls))
        return tuple(sources)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _data_dir_given(cls, value: Any) -> Any:
        if isinstance(value, str) and not value.strip():
            raise ValueError("must not be empty (that would mean the current directory); unset it for .data")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()  # the lake catalog records absolute data paths

    @field_validator("kinesis_endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_is_aws(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("kinesis_endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if (problem := _port_problem(parts)) is not None:
            raise ValueError(f"has an invalid port ({problem}), got {value!r}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be an http(s) URL with a host (e.g. http://127.0.0.1:4568), or empty for real AWS, "
                f"got {value!r}"
            )
        return value

    @field_validator("aws_region")
    @classmethod
    def _region_shape(cls, value: str, info: ValidationInfo) -> str:
        if not BOTOCORE_REGION_NAME.match(value):
            raise ValueError(f"must be a region name such as eu-west-1, got {value!r}")
        real_aws = info.data.get("kinesis_endpoint_url", "") is None  # "" when the endpoint itself failed
        if real_aws and not AWS_REGION_SHAPE.match(value):
            raise ValueError(
                f"must be an AWS region such as eu-west-1 when CDR_KINESIS_ENDPOINT_URL is empty "
                f"(real AWS), got {value!r}"
            )
        return value

    @field_validator("usage_stream")
    @classmethod
    def _kinesis_stream_name(cls, value: str) -> str:
        if not KINESIS_STREAM_NAME.match(value):
            raise ValueError(f"must be a Kinesis stream name (1-128 of a-z A-Z 0-9 _ . -), got {value!r}")
        return value

    @field_validator("eventstore_uri")
    @classmethod
    def _eventstore_uri_accepted_by_esdbclient(cls, value: SecretStr) -> SecretStr:
        _check_eventstore_uri(value.get_secret_value())
        return value

    @field_validator("eventstore_root_certificates", mode="before")
    @classmethod
    def _empty_certificates_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("eventstore_root_certificates")
    @classmethod
    def _certificates_exist(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        path = value.expanduser().resolve()
        if not path.is_file():
            raise ValueError(f"no such file {path} (the PEM file of the cluster's CA certificate)")
        return path

    @field_validator("member_event_types", mode="before")
    @classmethod
    def _split_types(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.split(",")  # the environment form: a comma-separated list
        return tuple(v.strip() for v in value if v.strip()) if isinstance(value, list | tuple) else value

    @field_validator("member_event_types")
    @classmethod
    def _known_member_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - MEMBER_EVENT_TYPES)
        if unknown or not value:
            known = ", ".join(sorted(MEMBER_EVENT_TYPES))
            raise ValueError(f"must be member lifecycle event types ({known}), got {unknown or 'none'}")
        return value

    @field_validator("kinesis_shard_groups")
    @classmethod
    def _aligned_groups(cls, value: int) -> int:
        if value not in (1, 2, 4, 8):
            raise ValueError(f"must be 1, 2, 4 or 8 (whole claim ranges of the lake), got {value}")
        return value

    @field_validator("lake_catalog")
    @classmethod
    def _catalog_shape(cls, value: str) -> str:
        if not value:
            return value  # derived from data_dir: see resolved_lake_catalog
        kind = next((kind for kind in LAKE_CATALOG_KINDS if value.startswith(kind)), None)
        if kind is None:
            raise ValueError(f"must start with 'sqlite:', 'postgres:' or 'duckdb:', got {value!r}")
        target = value.removeprefix(kind).strip()
        if not target:
            raise ValueError(f"names no database after {kind!r}")
        if kind == "postgres:":
            if re.search(r"(^|\s)password\s*=", target, re.IGNORECASE) or urlsplit(target).password:
                raise ValueError(
                    "must not hold a password (it would show in logs and the Dagster UI): "
                    "set PGPASSWORD or use a ~/.pgpass file"
                )
            return value
        return f"{kind}{Path(target).expanduser().resolve()}"  # every process opens the same file

    @field_validator("lake_data_path")
    @classmethod
    def _data_path_shape(cls, value: str) -> str:
        if not value:
            return value  # derived from data_dir: see resolved_lake_data_path
        if "://" not in value:
            return f"{Path(value).expanduser().resolve()}/"  # absolute: the catalog records it
        scheme, _, rest = value.partition("://")
        if scheme not in REMOTE_DATA_PATH_SCHEMES or not rest.strip("/"):
            schemes = ", ".join(f"{s}://<bucket>/" for s in REMOTE_DATA_PATH_SCHEMES)
            raise ValueError(f"must be a local folder or one of {schemes}, got {value!r}")
        return value

    @field_validator("secrets_manager_secret_id", mode="before")
    @classmethod
    def _empty_secret_id_is_none(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("pseudonymisation_salt")
    @classmethod
    def _real_salt_in_production(cls, value: SecretStr, info: ValidationInfo) -> SecretStr:
        salt = value.get_secret_value()
        if not salt:
            raise ValueError("must not be empty (pseudonyms would be plain hashes of the numbers)")
        if info.data.get("environment") == "production" and salt == LOCAL_SALT:
            raise ValueError("production needs its own salt from your secret store, not the local default")
        return value

    @property
    def resolved_lake_catalog(self) -> str:
        return self.lake_catalog or f"sqlite:{self.data_dir / 'lake' / 'catalog.sqlite'}"

    @property
    def concurrent_lake_writers(self) -> bool:
        """Whether the lake's catalog takes concurrent commits (Postgres); a SQLite one has one writer."""
        return self.resolved_lake_catalog.startswith("postgres:")

    @property
    def landing_shard_groups(self) -> int:
        """How many Kinesis landing runs may run at once: the setting on Postgres, 1 on SQLite."""
        return self.kinesis_shard_groups if self.concurrent_lake_writers else 1

    @property
    def resolved_lake_data_path(self) -> str:
        return self.lake_data_path or f"{self.data_dir / 'lake' / 'files'}/"

    @property
    def relay_checkpoint_path(self) -> Path:
        """Where ``cdr-platform relay`` keeps its checkpoint by default (its ``--checkpoint`` overrides)."""
        return self.relay_checkpoint_for(self.usage_stream)

    def relay_checkpoint_for(self, stream: str) -> Path:
        """The relay's default checkpoint when it publishes to ``stream``."""
        return self.data_dir / "relay" / f"{stream}.checkpoint.json"

    @property
    def devstack_dir(self) -> Path:
        return self.data_dir / "devstack"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"

    def with_changes(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and validated like any other source; raises ``SettingsError``.

        Values read from Secrets Manager are carried over, not read again.
        """
        token = _SECRETS_RESOLVED.set(True)
        try:
            return load_settings(environ={}, **{**self.model_dump(), **changes})
        finally:
            _SECRETS_RESOLVED.reset(token)


def _check_eventstore_uri(uri: str) -> None:
    """Raise ``ValueError`` for anything esdbclient 1.0.25 would refuse; messages never show the password."""
    shown = redacted_uri(uri)
    parts = urlsplit(uri)
    if parts.scheme not in ESDB_SCHEMES:
        raise ValueError(f"must start with esdb:// or esdb+discover://, got {shown!r}")
    hosts = parts.netloc.partition("@")[2] if "@" in parts.netloc else parts.netloc  # as esdbclient splits
    targets = [t.strip() for t in hosts.split(",") if t.strip()]
    if not targets:
        raise ValueError(f"names no host (esdb://host:2113), got {shown!r}")
    if parts.scheme == "esdb+discover" and len(targets) > 1:
        raise ValueError(f"esdb+discover:// takes one host (the cluster's DNS name), got {shown!r}")
    for target in targets:
        target_parts = urlsplit(f"//{target}")
        if (problem := _port_problem(target_parts)) is not None:
            raise ValueError(f"has an invalid port in {target!r} ({problem})")
        if not target_parts.hostname or "@" in target:
            raise ValueError(f"has an invalid host {target!r} (percent-encode '@' in the password as %40)")
    options = _esdb_options(parts.query)
    if options.get("Tls", "true").lower() == "true" and not (parts.username and parts.password):
        raise ValueError(
            f"Tls=true (the default) needs a username and password (esdb://user:password@host), got {shown!r}"
        )


def _port_problem(parts: SplitResult) -> str | None:
    """Why the URL's port is unusable (not a number, out of range), or None."""
    try:
        parts.port  # noqa: B018 - urllib checks the port when it is read
    except ValueError as exc:
        return str(exc)
    return None


def _esdb_options(query: str) -> dict[str, str]:
    """The query options by their canonical names, checked as esdbclient checks them (names ignore case)."""
    canonical = {name.upper(): name for name in ESDB_OPTIONS}
    options: dict[str, str] = {}
    for key, values in parse_qs(query, keep_blank_values=True).items():
        name = canonical.get(key.upper())
        if name is None:
            raise ValueError(f"has an unknown option {key!r} (known: {', '.join(ESDB_OPTIONS)})")
        value = values[0].strip()
        if not value:
            raise ValueError(f"option {name} has no value")
        if name in ESDB_BOOLEAN_OPTIONS and value.lower() not in ("true", "false"):
            raise ValueError(f"option {name} must be true or false, got {value!r}")
        if name == "NodePreference" and value.lower() not in ESDB_NODE_PREFERENCES:
            raise ValueError(f"option NodePreference must be one of {', '.join(ESDB_NODE_PREFERENCES)}")
        if name in ESDB_INTEGER_OPTIONS and not re.fullmatch(r"[+-]?\d+", value):
            raise ValueError(f"option {name} must be a whole number, got {value!r}")
        options[name] = value
    return options


class _EnvironSource(PydanticBaseSettingsSource):
    """The prefixed variables of one environment; an unknown prefixed name is an error, not ignored."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        prefix = self.config.get("env_prefix") or ""
        self.values: dict[str, str] = {}
        for key, raw in environ.items():
            if not key.startswith(prefix) or key == CONFIG_FILE_ENV:
                continue
            name = key[len(prefix) :].lower()
            if name not in settings_cls.model_fields:
                raise SettingsError(f"{key}: unknown setting (known: {_known_keys(settings_cls, prefix)})")
            self.values[name] = raw

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.values)


SECRET_KEYS = ("pseudonymisation_salt", "eventstore_uri")
"""The settings a Secrets Manager secret may hold (its JSON keys)."""


class _SecretsManagerSource(PydanticBaseSettingsSource):
    """The salt and EventStoreDB URI from ``CDR_SECRETS_MANAGER_SECRET_ID``, when the other sources name one.

    Lowest priority, but a key set both here and elsewhere is an error: production must not run on
    a stray variable while the secret says otherwise. boto3 finds credentials and the endpoint
    (``AWS_ENDPOINT_URL_SECRETS_MANAGER``) as every AWS client does.
    """

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        secret_id = self.current_state.get("secrets_manager_secret_id")
        if not secret_id:
            return {}
        values = _read_secret(str(secret_id), str(self.current_state.get("aws_region") or "us-east-1"))
        both = sorted(key for key in values if key in self.current_state)
        if both:
            raise SettingsError(
                f"{ENV_PREFIX}{both[0].upper()}: also set in the secret {secret_id!r} "
                f"({ENV_PREFIX}SECRETS_MANAGER_SECRET_ID); set it in one place only"
            )
        return values


def _read_secret(secret_id: str, region: str) -> dict[str, str]:
    """The secret's JSON object; errors name the secret and the problem, never a value."""
    import boto3
    import botocore.exceptions

    key = f"{ENV_PREFIX}SECRETS_MANAGER_SECRET_ID"
    try:
        client = boto3.client("secretsmanager", region_name=region)
        raw = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError) as exc:
        raise SettingsError(f"{key}: cannot read the secret {secret_id!r}: {exc}") from None
    try:
        values = json.loads(raw)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise SettingsError(f"{key}: the secret {secret_id!r} must be a JSON object of strings")
    unknown = sorted(set(values) - set(SECRET_KEYS))
    if unknown:
        raise SettingsError(
            f"{key}: the secret {secret_id!r} has unknown key {unknown[0]!r} "
            f"(known: {', '.join(SECRET_KEYS)})"
        )
    return values


def _toml_source(settings_cls: type[BaseSettings], path: Path) -> TomlConfigSettingsSource:
    """The TOML file's values; a missing or broken file, or an unknown key in it, is an error."""
    if not path.is_file():
        raise SettingsError(f"{CONFIG_FILE_ENV}: no such file {path}")
    try:
        source = TomlConfigSettingsSource(settings_cls, toml_file=path)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{CONFIG_FILE_ENV}: {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(source.toml_data) - set(settings_cls.model_fields))
    if unknown:
        raise SettingsError(
            f"{CONFIG_FILE_ENV}: unknown setting {unknown[0]!r} in {path} "
            f"(known: {', '.join(sorted(settings_cls.model_fields))})"
        )
    return source


def _known_keys(settings_cls: type[BaseSettings], prefix: str) -> str:
    return ", ".join(sorted(f"{prefix}{name.upper()}" for name in settings_cls.model_fields))


def _settings_error(exc: ValidationError) -> SettingsError:
    """Every invalid key with its reason, never the input value (it may be a secret)."""
    reasons = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False):
        key = f"{ENV_PREFIX}{str(error['loc'][0]).upper()}" if error["loc"] else CONFIG_FILE_ENV
        reason = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        reasons.append(f"{key}: {reason.removeprefix('Value error, ')}")
    return SettingsError("; ".join(reasons))


def load_settings(environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Settings from defaults, the optional TOML file, the environment, then ``overrides``.

    ``environ`` replaces ``os.environ`` for this call (also as the source of ``CDR_CONFIG_FILE``).
    Raises ``SettingsError`` naming the ``CDR_*`` key and the reason.
    """
    token = _ENVIRON.set(os.environ if environ is None else environ)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        # ``from None``: the ValidationError's own text repeats the input, which may be a secret.
        raise _settings_error(exc) from None
    finally:
        _ENVIRON.reset(token)
