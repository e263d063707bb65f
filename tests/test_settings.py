"""Settings: defaults point at the local stack; anything unknown or invalid names its key and why."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from esdbclient import connection_spec

from cdr_platform import settings as settings_module
from cdr_platform.cli import main
from cdr_platform.settings import LOCAL_SALT, SettingsError, load_settings, redacted_uri

pytestmark = pytest.mark.unit


@pytest.fixture
def no_cdr_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The process environment without any CDR_* variable (for code that reads os.environ)."""
    for key in [key for key in os.environ if key.startswith("CDR_")]:
        monkeypatch.delenv(key)
    return monkeypatch


def test_defaults_point_at_the_embedded_local_stack() -> None:
    settings = load_settings(environ={})
    assert settings.kinesis_endpoint_url == "http://127.0.0.1:4568"
    assert settings.eventstore_uri.get_secret_value() == "esdb://127.0.0.1:2113?Tls=false"
    assert settings.resolved_lake_catalog.startswith("sqlite:")
    assert settings.pseudonymisation_salt.get_secret_value() == LOCAL_SALT


def test_no_secrets_manager_secret_by_default_and_an_empty_id_means_none() -> None:
    assert load_settings(environ={}).secrets_manager_secret_id is None
    assert load_settings(environ={"CDR_SECRETS_MANAGER_SECRET_ID": ""}).secrets_manager_secret_id is None


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


def test_the_given_environment_replaces_the_process_environment(
    no_cdr_environment: pytest.MonkeyPatch,
) -> None:
    no_cdr_environment.setenv("CDR_USAGE_STREAM", "from-the-process")
    assert load_settings(environ={}).usage_stream == "cdr-usage-events"
    assert load_settings().usage_stream == "from-the-process"
    no_cdr_environment.setenv("CDR_USAGE_STREEM", "typo")
    assert load_settings(environ={}).usage_stream == "cdr-usage-events"  # the process typo is not read


def test_unknown_environment_variable_is_named() -> None:
    with pytest.raises(SettingsError, match="CDR_KINESIS_STREM: unknown setting"):
        load_settings(environ={"CDR_KINESIS_STREM": "x"})


def test_unknown_override_is_named() -> None:
    with pytest.raises(SettingsError, match="CDR_USAGE_STREEM: unknown setting"):
        load_settings(environ={}, usage_streem="x")


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("CDR_USAGE_STREAM_SHARDS", "zero", "valid integer"),
        ("CDR_USAGE_STREAM_SHARDS", "0", "greater than or equal to 1"),
        ("CDR_RECONCILE_SETTLE_SECONDS", "-1", "greater than or equal to 0"),
        ("CDR_ENVIRONMENT", "staging", "'local' or 'production'"),
        # an empty CDR_DATA_DIR would otherwise be the current directory
        ("CDR_DATA_DIR", "", "must not be empty"),
        ("CDR_DATA_DIR", "  ", "must not be empty"),
        ("CDR_KINESIS_ENDPOINT_URL", "ftp://x", "http"),
        ("CDR_KINESIS_ENDPOINT_URL", "http://", "with a host"),
        ("CDR_KINESIS_ENDPOINT_URL", "127.0.0.1:4568", "http(s) URL"),
        ("CDR_KINESIS_ENDPOINT_URL", "http://127.0.0.1:99999", "invalid port"),
        ("CDR_AWS_REGION", "", "region"),
        ("CDR_AWS_REGION", "eu west 1", "region"),
        ("CDR_USAGE_STREAM", "", "Kinesis stream name"),
        ("CDR_USAGE_STREAM", "usage events", "Kinesis stream name"),
        # the relay would raise ValueError for these, long after start
        ("CDR_EVENTSTORE_URI", "esdb://127.0.0.1:2113?Tls=flase", "Tls must be true or false, got 'flase'"),
        ("CDR_EVENTSTORE_URI", "esdb://127.0.0.1:2113?Tsl=false", "unknown option 'Tsl'"),
        ("CDR_EVENTSTORE_URI", "esdb://h:2113?Tls=false&NodePreference=any", "NodePreference must be one of"),
        ("CDR_EVENTSTORE_URI", "esdb://h:2113?Tls=false&GossipTimeout=soon", "GossipTimeout must be a whole"),
        ("CDR_EVENTSTORE_URI", "esdb://h:2113?Tls=", "option Tls has no value"),
        ("CDR_EVENTSTORE_URI", "http://x:2113", "esdb://"),
        ("CDR_EVENTSTORE_URI", "kurrentdb://x:2113?Tls=false", "esdb://"),
        ("CDR_EVENTSTORE_URI", "esdb://?Tls=false", "names no host"),
        ("CDR_EVENTSTORE_URI", "esdb://:2113?Tls=false", "invalid host"),
        ("CDR_EVENTSTORE_URI", "esdb://h:21x3?Tls=false", "invalid port"),
        ("CDR_EVENTSTORE_URI", "esdb://h:2113", "needs a username and password"),
        ("CDR_EVENTSTORE_URI", "esdb+discover://u:p@a:2113,b:2113?Tls=true", "takes one host"),
        ("CDR_EVENTSTORE_ROOT_CERTIFICATES", "/nonexistent/ca.pem", "no such file"),
        ("CDR_MEMBER_EVENT_TYPES", "", "got none"),
        ("CDR_LAKE_CATALOG", "mysql:db", "sqlite:"),
        ("CDR_LAKE_CATALOG", "sqlite:", "names no database"),
        ("CDR_LAKE_CATALOG", "postgres:dbname=lake password=hunter2", "must not hold a password"),
        ("CDR_LAKE_CATALOG", "postgres:postgresql://lake:hunter2@pg/lake", "must not hold a password"),
        ("CDR_LAKE_DATA_PATH", "ftp://bucket/lake/", "local folder or one of s3://"),
        ("CDR_LAKE_DATA_PATH", "s3://", "local folder or one of s3://"),
        ("CDR_PSEUDONYMISATION_SALT", "", "must not be empty"),
    ],
)
def test_invalid_value_names_key_and_reason(key: str, value: str, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={key: value})
    assert str(info.value).startswith(f"{key}: ")
    assert reason in str(info.value)
    assert "hunter2" not in str(info.value)


def test_every_invalid_key_is_reported_at_once() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"CDR_AWS_REGION": "", "CDR_USAGE_STREAM_SHARDS": "0"})
    assert "CDR_AWS_REGION: " in str(info.value)
    assert "CDR_USAGE_STREAM_SHARDS: " in str(info.value)


@pytest.mark.parametrize(
    "uri",
    [
        "esdb://127.0.0.1:2113?Tls=false",
        "esdb://127.0.0.1?tls=FALSE",  # option names and boolean values ignore case, as in esdbclient
        "esdb://admin:changeit@127.0.0.1:2113",
        "esdb://admin:changeit@a:2113,b:2113,c:2113?Tls=true&NodePreference=follower&TlsVerifyCert=false",
        "esdb+discover://admin:changeit@cluster.internal:2113?Tls=true&GossipTimeout=5&ConnectionName=relay",
        "esdb://h:2113?Tls=false&MaxDiscoverAttempts=3&DiscoveryInterval=100&DefaultDeadline=10",
        "esdb://h:2113?Tls=false&KeepAliveInterval=10000&KeepAliveTimeout=10000",
    ],
)
def test_eventstore_uris_that_esdbclient_accepts_are_accepted(uri: str) -> None:
    connection_spec.ConnectionSpec(uri)  # esdbclient accepts it ...
    assert load_settings(environ={"CDR_EVENTSTORE_URI": uri}).eventstore_uri.get_secret_value() == uri


@pytest.mark.parametrize(
    "uri",
    [
        "esdb://127.0.0.1:2113?Tls=flase",
        "esdb://127.0.0.1:2113?Tsl=false",
        "esdb://h:2113?Tls=false&NodePreference=any",
        "esdb://h:2113?Tls=false&GossipTimeout=soon",
        "esdb://h:2113",
        "esdb://?Tls=false",
        "esdb+discover://u:p@a:2113,b:2113?Tls=true",
        "kurrentdb://h:2113?Tls=false",
    ],
)
def test_eventstore_uris_that_esdbclient_refuses_are_refused_at_start(uri: str) -> None:
    with pytest.raises(ValueError):
        connection_spec.ConnectionSpec(uri)  # what the relay would raise, later
    with pytest.raises(SettingsError, match=r"^CDR_EVENTSTORE_URI: "):
        load_settings(environ={"CDR_EVENTSTORE_URI": uri})


def test_eventstore_uri_rules_match_esdbclient() -> None:
    """The settings mirror esdbclient's lists: an esdbclient upgrade that changes them fails here."""
    assert tuple(connection_spec.VALID_URI_SCHEMES) == settings_module.ESDB_SCHEMES
    assert set(settings_module.ESDB_OPTIONS) == set(connection_spec.VALID_CONNECTION_QUERY_STRING_FIELDS)
    assert tuple(connection_spec.VALID_NODE_PREFERENCES) == settings_module.ESDB_NODE_PREFERENCES


def test_a_local_endpoint_takes_any_region_botocore_accepts_real_aws_a_real_one() -> None:
    assert load_settings(environ={"CDR_AWS_REGION": "local"}).aws_region == "local"
    assert load_settings(environ={"CDR_KINESIS_ENDPOINT_URL": "", "CDR_AWS_REGION": "us-gov-west-1"})
    with pytest.raises(SettingsError, match=r"^CDR_AWS_REGION: must be an AWS region"):
        load_settings(environ={"CDR_KINESIS_ENDPOINT_URL": "", "CDR_AWS_REGION": "local"})


def test_production_refuses_the_local_salt_naming_its_key() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"CDR_ENVIRONMENT": "production"})
    assert str(info.value).startswith("CDR_PSEUDONYMISATION_SALT: production needs its own salt")
    settings = load_settings(environ={"CDR_ENVIRONMENT": "production", "CDR_PSEUDONYMISATION_SALT": "s3cr3t"})
    assert settings.pseudonymisation_salt.get_secret_value() == "s3cr3t"


def test_toml_file_is_read_environment_wins_and_overrides_win_over_both(tmp_path: Path) -> None:
    config = tmp_path / "cdr.toml"
    config.write_text(
        'usage_stream = "from-file"\naws_region = "eu-west-1"\nusage_stream_shards = 3\n'
        'member_event_types = ["member_activated"]\n'
    )
    environ = {
        "CDR_CONFIG_FILE": str(config),
        "CDR_AWS_REGION": "eu-central-1",
        "CDR_USAGE_STREAM_SHARDS": "4",
    }
    settings = load_settings(environ=environ, usage_stream_shards=5)
    assert settings.usage_stream == "from-file"
    assert settings.member_event_types == ("member_activated",)
    assert settings.aws_region == "eu-central-1"
    assert settings.usage_stream_shards == 5


def test_unknown_key_in_toml_file_is_named(tmp_path: Path) -> None:
    config = tmp_path / "cdr.toml"
    config.write_text('usage_streem = "typo"\n')
    with pytest.raises(SettingsError, match=r"^CDR_CONFIG_FILE: unknown setting 'usage_streem'"):
        load_settings(environ={"CDR_CONFIG_FILE": str(config)})


def test_invalid_value_in_toml_file_names_its_key(tmp_path: Path) -> None:
    config = tmp_path / "cdr.toml"
    config.write_text('eventstore_uri = "esdb://127.0.0.1:2113?Tls=flase"\n')
    with pytest.raises(SettingsError, match=r"^CDR_EVENTSTORE_URI: option Tls must be true or false"):
        load_settings(environ={"CDR_CONFIG_FILE": str(config)})


def test_missing_or_broken_toml_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"^CDR_CONFIG_FILE: no such file"):
        load_settings(environ={"CDR_CONFIG_FILE": str(tmp_path / "absent.toml")})
    broken = tmp_path / "broken.toml"
    broken.write_text("usage_stream = \n")
    with pytest.raises(SettingsError, match=r"^CDR_CONFIG_FILE: .* is not valid TOML"):
        load_settings(environ={"CDR_CONFIG_FILE": str(broken)})


def test_secrets_never_show_in_repr_str_or_json() -> None:
    uri = "esdb+discover://admin:pa55word@esdb.internal:2113?Tls=true"
    settings = load_settings(environ={"CDR_PSEUDONYMISATION_SALT": "very-secret", "CDR_EVENTSTORE_URI": uri})
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "very-secret" not in shown
        assert "pa55word" not in shown
    assert settings.eventstore_uri.get_secret_value() == uri


def test_an_invalid_secret_uri_is_reported_without_its_password() -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={"CDR_EVENTSTORE_URI": "esdb://admin:pa55word@h:2113?Tls=ture"})
    assert "pa55word" not in str(info.value)
    assert (
        info.value.__cause__ is None and info.value.__suppress_context__
    )  # no ValidationError with the input


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("esdb://127.0.0.1:2113?Tls=false", "esdb://127.0.0.1:2113?Tls=false"),
        ("esdb+discover://admin:pa55@h:2113?Tls=true", "esdb+discover://admin:***@h:2113?Tls=true"),
        ("esdb://admin:p@ss:w@a:2113,b:2113", "esdb://admin:***@a:2113,b:2113"),
        ("esdb://admin@h:2113", "esdb://admin@h:2113"),
    ],
)
def test_redacted_uri_hides_the_password_only(uri: str, shown: str) -> None:
    assert redacted_uri(uri) == shown


def test_member_event_types_are_trimmed_and_checked() -> None:
    settings = load_settings(environ={"CDR_MEMBER_EVENT_TYPES": "member_activated, plan_changed"})
    assert settings.member_event_types == ("member_activated", "plan_changed")
    with pytest.raises(SettingsError, match=r"CDR_MEMBER_EVENT_TYPES: .*call_ended"):
        load_settings(environ={"CDR_MEMBER_EVENT_TYPES": "member_activated,call_ended"})


def test_local_paths_are_made_absolute(tmp_path: Path) -> None:
    settings = load_settings(
        environ={
            "CDR_DATA_DIR": "relative/dir",
            "CDR_LAKE_CATALOG": "sqlite:lake.sqlite",
            "CDR_LAKE_DATA_PATH": "f",
        }
    )
    assert settings.data_dir.is_absolute()
    assert Path(settings.lake_catalog.removeprefix("sqlite:")).is_absolute()
    assert settings.lake_data_path.startswith("/") and settings.lake_data_path.endswith("/")
    certificate = tmp_path / "ca.pem"
    certificate.write_text("-----BEGIN CERTIFICATE-----\n")
    assert load_settings(
        environ={"CDR_EVENTSTORE_ROOT_CERTIFICATES": str(certificate)}
    ).eventstore_root_certificates
    assert (
        load_settings(environ={"CDR_EVENTSTORE_ROOT_CERTIFICATES": ""}).eventstore_root_certificates is None
    )


def test_with_changes_validates_and_keeps_secrets_secret(tmp_path: Path) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path)
    changed = settings.with_changes(eventstore_uri="esdb://127.0.0.1:2999?Tls=false", usage_stream="other")
    assert changed.eventstore_uri.get_secret_value() == "esdb://127.0.0.1:2999?Tls=false"
    assert (changed.usage_stream, changed.data_dir) == ("other", settings.data_dir)
    with pytest.raises(SettingsError, match=r"^CDR_EVENTSTORE_URI: option Tls must be true or false"):
        settings.with_changes(eventstore_uri="esdb://127.0.0.1:2999?Tls=flase")


def test_the_cli_prints_one_configuration_line(
    no_cdr_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    no_cdr_environment.setenv("CDR_DATA_DIR", "")
    assert main(["sql", "--print-attach"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("configuration error: CDR_DATA_DIR: must not be empty")
    assert err.count("\n") == 1
