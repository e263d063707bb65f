"""The dbt builds: everything passes, and incremental runs end where a full refresh does."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.transform.conftest import MART_KEYS, BuiltLake

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_model_test_and_unit_test_passed(built_lake: BuiltLake) -> None:
    for results in built_lake.run_results:
        statuses = {r["unique_id"]: r["status"] for r in results["results"]}
        failed = {k: v for k, v in statuses.items() if v not in ("success", "pass", "no-op")}
        assert not failed
        assert any(k.startswith("unit_test.") for k in statuses)
        assert any(k.startswith("test.") for k in statuses)
    assert built_lake.dagster_result is not None and built_lake.dagster_result.success


def test_second_build_was_incremental(built_lake: BuiltLake) -> None:
    second = {r["unique_id"]: r for r in built_lake.run_results[1]["results"]}
    response = second["model.cdr_platform.fct_calls"]["adapter_response"]
    assert response.get("_message", "").upper().startswith(("OK", "MERGE", "INSERT"))
    calls = built_lake.incremental["fct_calls"]
    assert len(calls) > 0


@pytest.mark.parametrize("mart", sorted(MART_KEYS))
def test_incremental_build_equals_full_refresh(built_lake: BuiltLake, mart: str) -> None:
    incremental, full = built_lake.incremental[mart], built_lake.full_refresh[mart]
    assert len(full) > 0
    pd.testing.assert_frame_equal(incremental, full, check_exact=False, rtol=1e-9)
