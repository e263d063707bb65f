"""Subscriber identifiers never reach the intermediate layer or a mart; pseudonyms are salted."""

from __future__ import annotations

import hashlib

import pytest

from tests.transform.conftest import BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _raw_identifiers(built: BuiltLake) -> set[str]:
    keys = ("calling_party_number", "called_party_number", "served_imsi", "served_imei", "served_msisdn")
    out = set()
    for event in built.events:
        payload = event.payload.model_dump()
        out |= {str(payload[k]) for k in keys if payload.get(k)}
    return out


def test_no_raw_identifier_in_any_mart_or_intermediate_table(built_lake: BuiltLake) -> None:
    identifiers = _raw_identifiers(built_lake)
    columns = built_lake.query(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns "
        "WHERE table_catalog = 'lake' AND table_schema IN ('marts', 'intermediate') AND data_type = 'VARCHAR'"
    )
    assert len(columns) > 20
    for schema, table, column in columns.itertuples(index=False):
        values = set(
            built_lake.query(f'SELECT DISTINCT "{column}" FROM {schema}.{table}').iloc[:, 0].dropna()
        )
        assert not values & identifiers, f"{schema}.{table}.{column} holds raw identifiers"


def test_pseudonyms_are_salted_sha256(built_lake: BuiltLake) -> None:
    salt = built_lake.settings.pseudonymisation_salt.get_secret_value()
    member = built_lake.query("SELECT msisdn_pseudonym FROM marts.dim_members WHERE member_id = 'M000001'")
    (activation,) = [
        e for e in built_lake.events if e.event_type == "member_activated" and e.member_id == "M000001"
    ]
    msisdn = activation.payload.served_msisdn  # type: ignore[attr-defined]
    assert member.iloc[0, 0] == hashlib.sha256(f"{salt}:{msisdn}".encode()).hexdigest()
    assert member.iloc[0, 0] != hashlib.sha256(msisdn.encode()).hexdigest()
