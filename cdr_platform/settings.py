"""One typed settings object for every endpoint, stream, storage path and secret.

Values come from, in increasing priority: the defaults below (the embedded local stack), a TOML
file named by ``CDR_CONFIG_FILE`` (keys without the prefix), and ``CDR_*`` environment variables.
Anything unknown or invalid fails at start with the offending key and the reason, so a typo in a
production deployment never silently falls back to a local default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from cdr_platform.events.catalog import MEMBER_EVENT_TYPES

ENV_PREFIX = "CDR_"
CONFIG_FILE_ENV = "CDR_CONFIG_FILE"
LOCAL_SALT = "local-dev-salt-not-for-production"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting is unknown or invalid; the message names the key and the reason."""


class Settings(BaseModel):
    """Everything the platform needs to find its endpoints and storage."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: Literal["local", "production"] = "local"
    data_dir: Path = Field(
        default=PROJECT_ROOT / ".data", description="Local state: devstack, lake, Dagster."
    )

    aws_region: str = "us-east-1"
    kinesis_endpoint_url: str | None = Field(
        default="http://127.0.0.1:4568",
        description="Kinesis endpoint; empty means real AWS via the default credential chain.",
    )
    usage_stream: str = "cdr-usage-events"
    usage_stream_shards: int = Field(default=2, ge=1, le=50)

    eventstore_uri: str = "esdb://127.0.0.1:2113?Tls=false"
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

    lake_catalog: str = Field(
        default="",
        description="DuckLake catalog: 'sqlite:<path>' locally, 'postgres:<libpq dsn>' in production.",
    )
    lake_data_path: str = Field(default="", description="DuckLake data files: a folder or an s3:// prefix.")

    pseudonymisation_salt: SecretStr = SecretStr(LOCAL_SALT)

    @field_validator("kinesis_endpoint_url", mode="before")
    @classmethod
    def _empty_endpoint_is_aws(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("kinesis_endpoint_url")
    @classmethod
    def _endpoint_is_url(cls, value: str | None) -> str | None:
        if value is not None and urlparse(value).scheme not in ("http", "https"):
            raise ValueError(f"must be an http(s) URL or empty for real AWS, got {value!r}")
        return value

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, value: Path) -> Path:
        return value.expanduser().resolve()  # the lake catalog records absolute data paths

    @field_validator("member_event_types", mode="before")
    @classmethod
    def _strip_types(cls, value: Any) -> Any:
        return tuple(v.strip() for v in value if v.strip()) if isinstance(value, list | tuple) else value

    @field_validator("member_event_types")
    @classmethod
    def _known_member_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - MEMBER_EVENT_TYPES)
        if unknown or not value:
            known = ", ".join(sorted(MEMBER_EVENT_TYPES))
            raise ValueError(f"must be member lifecycle event types ({known}), got {unknown or 'none'}")
        return value

    @field_validator("eventstore_uri")
    @classmethod
    def _eventstore_uri_scheme(cls, value: str) -> str:
        if urlparse(value).scheme not in ("esdb", "esdb+discover", "kurrentdb", "kurrentdb+discover"):
            raise ValueError(f"must start with esdb:// or esdb+discover://, got {value!r}")
        return value

    @field_validator("lake_catalog")
    @classmethod
    def _catalog_kind(cls, value: str) -> str:
        if value and not value.startswith(("sqlite:", "postgres:", "duckdb:")):
            raise ValueError(f"must start with 'sqlite:', 'postgres:' or 'duckdb:', got {value!r}")
        return value

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production" and self.pseudonymisation_salt.get_secret_value() == LOCAL_SALT:
            raise ValueError("pseudonymisation_salt: production needs its own salt, not the local default")
        return self

    @property
    def resolved_lake_catalog(self) -> str:
        return self.lake_catalog or f"sqlite:{self.data_dir / 'lake' / 'catalog.sqlite'}"

    @property
    def resolved_lake_data_path(self) -> str:
        return self.lake_data_path or f"{self.data_dir / 'lake' / 'files'}/"

    @property
    def devstack_dir(self) -> Path:
        return self.data_dir / "devstack"

    @property
    def dagster_home(self) -> Path:
        return self.data_dir / "dagster"


_FIELDS = set(Settings.model_fields)


def _env_values(environ: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in environ.items():
        if not key.startswith(ENV_PREFIX) or key == CONFIG_FILE_ENV:
            continue
        name = key[len(ENV_PREFIX) :].lower()
        if name not in _FIELDS:
            raise SettingsError(f"{key}: unknown setting (known: {', '.join(sorted(_FIELDS))})")
        values[name] = raw.split(",") if name == "member_event_types" else raw
    return values


def _file_values(path: Path) -> dict[str, Any]:
    try:
        values = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise SettingsError(f"{CONFIG_FILE_ENV}: no such file {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{CONFIG_FILE_ENV}: {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise SettingsError(f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_FIELDS))})")
    return values


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from defaults, the optional TOML file, the environment, then overrides."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    if config_file := environ.get(CONFIG_FILE_ENV):
        values.update(_file_values(Path(config_file)))
    values.update(_env_values(environ))
    values.update(overrides)
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "settings"
        env_key = f"{ENV_PREFIX}{key.split('.')[0].upper()}"
        raise SettingsError(f"{env_key}: {first['msg']}") from exc
