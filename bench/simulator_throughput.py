"""Simulator throughput: generation alone, backfill into EventStoreDB, relay to Kinesis, end to end.

Runnable alone (``.venv/bin/python bench/simulator_throughput.py [--members N] [--days D]``): it starts
kinesis-local and the EventStoreDB-compatible server itself, on free ports, in memory, and stops them.
Baselines from the same run: generation alone (events built and encoded, nothing sent) is the ceiling of
every other line, and raw put_records of the same events (KPL-aggregated, no EventStoreDB) is the ceiling
of the relay on this Kinesis endpoint; the backfill is also run the old way, one stream per append call
(``--streams-per-call 1``), into a second, fresh event store. The last lines are the headlines: end-to-end
backfill (EventStoreDB then Kinesis), and the backfill into EventStoreDB in events/s against generation
alone and against one stream per call (target: >= 10k events/s).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from esdbclient import EventStoreDBClient

from cdr_platform.devstack.kinesis_local import (
    kill_process,
    local_kinesis_client,
    start_kinesis_local,
    wait_until_serving,
)
from cdr_platform.devstack.ports import free_port, wait_for_port
from cdr_platform.devtools.shutdown import CleanStop
from cdr_platform.events import USAGE_EVENT_TYPES
from cdr_platform.events.framing import UserRecord
from cdr_platform.simulator.builders import produce
from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.ground_truth import GroundTruthWriter
from cdr_platform.simulator.model import OperatorConfig, build_operator
from cdr_platform.simulator.producers import STREAMS_PER_CALL, DiscardingSink, EventStoreProducer
from cdr_platform.simulator.simulation import Simulation
from cdr_platform.simulator.traffic import day_count, operator_day
from cdr_platform.sources.kinesis_publisher import KinesisPublisher
from cdr_platform.sources.relay import Relay, RelayConfig

START = datetime(2025, 3, 3, tzinfo=UTC)


def _timed(action: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    count = action()
    return count, time.perf_counter() - started


def _best_of(runs: int, action: Callable[[], int]) -> tuple[int, float]:
    """Fastest of a few runs, for the in-memory stages that take a second (noise on a shared machine)."""
    return min((_timed(action) for _ in range(runs)), key=lambda timed: timed[1])


@contextmanager
def event_store(log: Path) -> Iterator[str]:
    """An in-memory EventStoreDB-compatible server in its own process; yields its URI."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "cdr_platform.devstack.eventstore", "--port", str(port), "--memory"],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        if not wait_for_port("127.0.0.1", port, 60):
            raise SystemExit(f"the event store did not start; see {log}")
        yield f"esdb://127.0.0.1:{port}?Tls=false"
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=3000)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--streams-per-call", type=int, default=STREAMS_PER_CALL)
    args = parser.parse_args()
    config = OperatorConfig(seed=7, members=args.members)
    operator = build_operator(config, START, args.days)
    rows: list[tuple[str, int, float]] = []

    def generate() -> int:
        return Simulation(operator, DiscardingSink()).run_backfill().events

    rows.append(("generation alone (built + encoded)", *_best_of(3, generate)))
    work = Path(tempfile.mkdtemp(prefix="simbench-"))

    def generate_with_truth() -> int:
        with GroundTruthWriter(work / "truth-only") as truth:
            return Simulation(operator, DiscardingSink(), ground_truth=truth).run_backfill().events

    rows.append(("generation + ground-truth CSV", *_best_of(3, generate_with_truth)))

    def backfill_into(uri: str, streams_per_call: int, truth_dir: Path) -> int:
        producer = EventStoreProducer(
            EventStoreDBClient(uri), workers=args.workers, streams_per_call=streams_per_call
        )
        try:
            with GroundTruthWriter(truth_dir) as truth:
                return Simulation(operator, producer, FaultConfig(), truth).run_backfill().events
        finally:
            producer.close()

    with event_store(work / "eventstore-one-per-call.log") as uri:
        one_per_call = _timed(lambda: backfill_into(uri, 1, work / "truth-one-per-call"))
    rows.append(("backfill, one stream per call (+ truth)", *one_per_call))
    with ExitStack() as stack:
        uri = stack.enter_context(event_store(work / "eventstore.log"))
        batched = _timed(lambda: backfill_into(uri, args.streams_per_call, work / "truth"))
        rows.append((f"backfill, {args.streams_per_call} streams per call (+ truth)", *batched))
        kinesis_port = free_port()  # started after the backfills, so they do not share the CPU with it
        kinesis_process = start_kinesis_local(kinesis_port, work / "kinesis.log")
        stack.callback(kill_process, kinesis_process.pid)
        endpoint = f"http://127.0.0.1:{kinesis_port}"
        wait_until_serving(endpoint, kinesis_process, 60)
        kinesis = local_kinesis_client(endpoint)
        kinesis.create_stream(StreamName="bench", ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(StreamName="bench", WaiterConfig={"Delay": 0.2})

        def relay() -> int:
            config = RelayConfig("bench", work / "relay" / "checkpoint.json")
            result = Relay(EventStoreDBClient(uri), kinesis, config).run(until_caught_up=True)
            return result.events_read

        relayed, relay_s = _timed(relay)
        rows.append(("relay EventStoreDB -> Kinesis", relayed, relay_s))

        kinesis.create_stream(StreamName="bench-raw", ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(StreamName="bench-raw", WaiterConfig={"Delay": 0.2})
        usage = [
            UserRecord(e.member_id, e.data)
            for day in range(day_count(operator))
            for e in produce(operator_day(operator, day))
            if e.event_type in USAGE_EVENT_TYPES
        ]

        def raw_put() -> int:
            KinesisPublisher(kinesis, "bench-raw").put(usage)
            return len(usage)

        rows.append(("put_records alone (Kinesis ceiling)", *_timed(raw_put)))

    ceiling = rows[0][1] / rows[0][2]
    print(f"{'stage':<40} {'events':>10} {'seconds':>9} {'events/s':>10} {'vs generation':>14}")
    for name, count, seconds in rows:
        rate = count / seconds
        print(f"{name:<40} {count:>10,} {seconds:>9.2f} {rate:>10,.0f} {rate / ceiling:>13.3f}x")
    backfill_count, backfill_s = batched
    end_to_end = backfill_count / (backfill_s + relay_s)
    print(f"{'end to end (backfill, then relay)':<40} {backfill_count:>10,} {backfill_s + relay_s:>9.2f} "
          f"{end_to_end:>10,.0f} {end_to_end / ceiling:>13.3f}x")  # fmt: skip
    print(f"headline: end-to-end backfill runs at {end_to_end / ceiling:.3f}x generation alone "
          f"({end_to_end:,.0f} vs {ceiling:,.0f} events/s)")  # fmt: skip
    rate, before = backfill_count / backfill_s, one_per_call[0] / one_per_call[1]
    print(f"headline: backfill into EventStoreDB at {rate:,.0f} events/s, {rate / ceiling:.3f}x generation "
          f"alone ({ceiling:,.0f} events/s), {rate / before:.1f}x one stream per call "
          f"({before:,.0f} events/s)")  # fmt: skip


if __name__ == "__main__":
    with CleanStop("bench/simulator_throughput.py"):  # Ctrl-C or SIGTERM ends every process it started
        main()
