"""Lake writer pools by catalog: one writer on SQLite; shard groups, dbt and maintenance apart on Postgres."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cdr_platform.defs.concurrency import LAKE_WRITER_POOL, lake_pools
from cdr_platform.settings import PROJECT_ROOT, load_settings

pytestmark = pytest.mark.unit

POSTGRES = "postgres:dbname=lake host=127.0.0.1 port=5432 user=cdr"


def test_sqlite_keeps_one_writer_and_postgres_separates_the_writers() -> None:
    sqlite = lake_pools(load_settings({}, lake_catalog="sqlite:/tmp/catalog.sqlite"))
    assert {sqlite.shard_landing, sqlite.raw_writers, sqlite.transform, sqlite.maintenance} == {
        LAKE_WRITER_POOL
    }
    postgres = lake_pools(load_settings({}, lake_catalog=POSTGRES))
    assert postgres.shard_landing is None
    assert len({postgres.raw_writers, postgres.transform, postgres.maintenance}) == 3
    assert (
        load_settings(
            {}, lake_catalog="sqlite:/tmp/catalog.sqlite", kinesis_shard_groups=4
        ).landing_shard_groups
        == 1
    )
    assert load_settings({}, lake_catalog=POSTGRES, kinesis_shard_groups=4).landing_shard_groups == 4


@pytest.mark.slow  # loads the code location twice (about 20 s each on a loaded 2-core machine)
def test_the_code_location_takes_its_pools_from_the_catalog() -> None:
    """The assets' pools as the code location loads them, in a process of its own per catalog."""
    probe = (
        "import json; from cdr_platform.definitions import defs; g = defs.resolve_asset_graph();"
        "print(json.dumps({k.to_user_string(): sorted(g.get(k).pools) for k in g.get_all_asset_keys()"
        " if g.get(k).is_executable and k.path[0] in ('raw', 'marts')}))"
    )
    pools = {}
    for name, catalog in (("sqlite", ""), ("postgres", POSTGRES)):
        env = {**os.environ, "CDR_LAKE_CATALOG": catalog}
        out = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        pools[name] = json.loads(out.strip().splitlines()[-1])
    assert pools["sqlite"]["raw/usage_events"] == ["lake_writer"]
    assert pools["sqlite"]["marts/fct_calls"] == ["lake_writer"]
    assert pools["postgres"]["raw/usage_events"] == []
    assert pools["postgres"]["raw/member_events"] == ["lake_writer"]
    assert pools["postgres"]["marts/fct_calls"] == ["lake_transform"]
