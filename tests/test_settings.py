"""Settings: defaults point at the local stack; anything unknown or invalid names its key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cdr_platform.settings import LOCAL_SALT, SettingsError, load_settings


def test_defaults_point_at_the_embedded_local_stack() -> None:
    settings = load_settings(environ={})
    assert settings.kinesis_endpoint_url == "http://127.0.0.1:4568"
    assert settings.eventstore_uri == "esdb://127.0.0.1:2113?Tls=false"
    assert settings.resolved_lake_catalog.startswith("sqlite:")
    assert settings.pseudonymisation_salt.get_secret_value() == LOCAL_SALT


def test_environment_variables_override_defaults() -> None:
    settings = load_settings(
        environ={
            "CDR_USAGE_STREAM": "usage-x",
            "CDR_USAGE_STREAM_SHARDS": "4",
            "CDR_KINESIS_ENDPOINT_URL": "",
        }
    )
    assert settings.usage_stream == "usage-x"
    assert settings.usage_stream_shards == 4
    assert settings.kinesis_endpoint_url is None  # empty means real AWS, default credential chain


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(SettingsError, match="CDR_KINESIS_STREM: unknown setting"):
        load_settings(environ={"CDR_KINESIS_STREM": "x"})


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("CDR_USAGE_STREAM_SHARDS", "zero", "valid integer"),
        ("CDR_USAGE_STREAM_SHARDS", "0", "greater than or equal to 1"),
        ("CDR_EVENTSTORE_URI", "http://x:2113", "esdb://"),
        ("CDR_KINESIS_ENDPOINT_URL", "ftp://x", "http"),
        ("CDR_LAKE_CATALOG", "mysql:db", "sqlite:"),
        ("CDR_ENVIRONMENT", "staging", "'local' or 'production'"),
    ],
)
def test_invalid_value_names_key_and_reason(key: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={key: value})
    assert str(info.value).startswith(f"{key}:")
    assert reason in str(info.value)


def test_production_refuses_the_local_salt() -> None:
    with pytest.raises(SettingsError, match="pseudonymisation_salt"):
        load_settings(environ={"CDR_ENVIRONMENT": "production"})
    settings = load_settings(environ={"CDR_ENVIRONMENT": "production", "CDR_PSEUDONYMISATION_SALT": "s3cr3t"})
    assert settings.pseudonymisation_salt.get_secret_value() == "s3cr3t"


def test_toml_file_is_read_and_environment_wins(tmp_path: Path) -> None:
    config = tmp_path / "cdr.toml"
    config.write_text('usage_stream = "from-file"\naws_region = "eu-west-1"\n')
    settings = load_settings(environ={"CDR_CONFIG_FILE": str(config), "CDR_AWS_REGION": "eu-central-1"})
    assert settings.usage_stream == "from-file"
    assert settings.aws_region == "eu-central-1"


def test_unknown_key_in_toml_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "cdr.toml"
    config.write_text('usage_streem = "typo"\n')
    with pytest.raises(SettingsError, match="unknown setting 'usage_streem'"):
        load_settings(environ={"CDR_CONFIG_FILE": str(config)})


def test_secret_is_not_printed() -> None:
    settings = load_settings(environ={"CDR_PSEUDONYMISATION_SALT": "very-secret"})
    assert "very-secret" not in repr(settings)


def test_member_event_types_are_trimmed_and_checked() -> None:
    settings = load_settings(environ={"CDR_MEMBER_EVENT_TYPES": "member_activated, plan_changed"})
    assert settings.member_event_types == ("member_activated", "plan_changed")
    with pytest.raises(SettingsError, match=r"CDR_MEMBER_EVENT_TYPES: .*call_ended"):
        load_settings(environ={"CDR_MEMBER_EVENT_TYPES": "member_activated,call_ended"})


def test_data_dir_is_made_absolute() -> None:
    assert load_settings(environ={"CDR_DATA_DIR": "relative/dir"}).data_dir.is_absolute()
