"""Benchmark: one incremental dbt run after a small new slice, at a small and a 10x larger history.

For each history size, in a fresh DuckLake warehouse: land the history, build everything once,
then land a one-hour slice of new events and time ``dbt run`` (every model; the incremental ones
merge only their lookback window). Baseline in the same run: a full refresh of the large history,
which is what a non-incremental project would pay on every run. dbt's own start-up (~5 s) is
part of every figure, as it is in production.

Run: ``.venv/bin/python bench/dbt_incremental.py [--days 6] [--members 40]``. Prints a table and,
last, the headline ratio incremental(10x history) / incremental(1x history) (target <= 1.5).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cdr_platform.defs.transform.project import dbt_cli, dbt_project
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.lake.connection import connect_lake
from cdr_platform.lake.schema import ensure_schema
from tests.transform.dataset import AS_OF, generate_events, land_events

SLICE = timedelta(hours=1)


def dbt_seconds(root: Path, *args: str) -> float:
    """Wall time of one dbt invocation (a subprocess, as DbtCliResource runs it in Dagster)."""
    started = time.perf_counter()
    target = root / f"target-{time.monotonic_ns()}"
    invocation = dbt_cli(dbt_project()).cli(list(args), target_path=target, raise_on_error=False).wait()
    if not invocation.is_successful():
        raise SystemExit(f"dbt {' '.join(args)} failed; see {target / 'dbt.log'}")
    return time.perf_counter() - started


def measure(days: int, members: int, full_refresh_baseline: bool) -> dict[str, float]:
    events = generate_events(days=days, members=members, calls_per_member_day=4)
    history = [e for e in events if e.occurred_at < AS_OF - 2 * SLICE]
    slices = [
        [e for e in events if AS_OF - 2 * SLICE <= e.occurred_at < AS_OF - SLICE],
        [e for e in events if e.occurred_at >= AS_OF - SLICE],
    ]
    with tempfile.TemporaryDirectory(prefix="bench-dbt-") as tmp:
        root = Path(tmp)
        os.environ["CDR_LAKE_CATALOG"] = f"sqlite:{root / 'catalog.sqlite'}"
        os.environ["CDR_LAKE_DATA_PATH"] = f"{root / 'files'}/"
        con = connect_lake(os.environ["CDR_LAKE_CATALOG"], os.environ["CDR_LAKE_DATA_PATH"])
        ensure_schema(con)
        land_events(con, history)
        first = dbt_seconds(root, "run")
        incremental = []
        for new_events in slices:  # two samples; the best one is reported
            land_events(con, new_events)
            incremental.append(dbt_seconds(root, "run"))
        con.close()
        result = {"events": len(events), "first_build_s": first, "incremental_s": min(incremental)}
        if full_refresh_baseline:
            result["full_refresh_s"] = dbt_seconds(root, "run", "--full-refresh")
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=6, help="days of history at 1x (10x uses ten times more)")
    parser.add_argument("--members", type=int, default=40)
    args = parser.parse_args()
    small = measure(args.days, args.members, full_refresh_baseline=False)
    large = measure(args.days * 10, args.members, full_refresh_baseline=True)
    print(f"{'history':<10} {'events':>8} {'first build s':>14} {'incremental s':>14} {'full refresh s':>15}")
    for name, row in (("1x", small), ("10x", large)):
        full = f"{row['full_refresh_s']:>15.1f}" if "full_refresh_s" in row else f"{'-':>15}"
        events, first, incremental = row["events"], row["first_build_s"], row["incremental_s"]
        print(f"{name:<10} {events:>8.0f} {first:>14.1f} {incremental:>14.1f} {full}")
    versus_full = large["incremental_s"] / large["full_refresh_s"]
    print(f"incremental at 10x history / full refresh at 10x: {versus_full:.2f}")
    print(
        f"incremental at 10x history / at 1x history: {large['incremental_s'] / small['incremental_s']:.2f}"
    )


if __name__ == "__main__":
    with CleanStop("bench/dbt_incremental.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
