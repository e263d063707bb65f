"""The main job, end to end on an embedded local stack: what ``make demo`` runs.

devstack up -> simulate a backfill with faults on -> relay to Kinesis -> sensors request landing runs,
which land everything -> reconciliation repairs what the relay dropped -> dbt builds the marts ->
print the executives' KPIs, a network and churn summary, and where to look next. Exits non-zero if
any asset check (reconciliation or a dbt test) failed. The demo uses its own ports and data folder
(``<data_dir>/demo``), so it never disturbs a running ``make dev``.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context
from esdbclient import EventStoreDBClient

from cdr_platform.definitions import build_definitions
from cdr_platform.settings import Settings


@dataclass(frozen=True)
class DemoConfig:
    days: int = 8
    members: int = 300
    seed: int = 42
    drop_rate: float = 0.01
    duplicate_rate: float = 0.01
    reorder_rate: float = 0.02
    malformed_rate: float = 0.002
    late_rate: float = 0.01


@dataclass
class DemoOutcome:
    failed_checks: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
"""Run config for in-process runs: the demo prints its own summary lines."""


def _say(message: str) -> None:
    print(message, flush=True)


class _Step:
    def __init__(self, outcome: DemoOutcome, name: str) -> None:
        self.outcome, self.name = outcome, name

    def __enter__(self) -> None:
        self.started = time.monotonic()
        _say(f"\n== {self.name}")

    def __exit__(self, *exc: object) -> None:
        self.outcome.timings[self.name] = time.monotonic() - self.started
        _say(f"   ({self.outcome.timings[self.name]:.1f}s)")


def demo_settings(settings: Settings) -> Settings:
    """The demo's own stack: free ports and a fresh folder under the data dir."""
    from cdr_platform.devstack.ports import free_port

    data_dir = settings.data_dir / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "kinesis_endpoint_url": f"http://127.0.0.1:{free_port()}",
            "eventstore_uri": f"esdb://127.0.0.1:{free_port()}?Tls=false",
            "lake_catalog": "",
            "lake_data_path": "",
            "reconcile_settle_seconds": 0,
        }
    )


def simulate(settings: Settings, config: DemoConfig) -> tuple[datetime, Path]:
    from cdr_platform.simulator.faults import FaultConfig
    from cdr_platform.simulator.ground_truth import GroundTruthWriter
    from cdr_platform.simulator.model import OperatorConfig, build_operator
    from cdr_platform.simulator.producers import EventStoreProducer
    from cdr_platform.simulator.simulation import Progress, Simulation, default_start

    start = default_start(config.days)
    operator = build_operator(OperatorConfig(seed=config.seed, members=config.members), start, config.days)
    truth_dir = settings.data_dir / "truth"
    producer = EventStoreProducer(EventStoreDBClient(settings.eventstore_uri), workers=8)
    try:
        with GroundTruthWriter(truth_dir) as truth:
            faults = FaultConfig(seed=config.seed, late_rate=config.late_rate)
            result = Simulation(operator, producer, faults, truth, Progress(sys.stderr)).run_backfill()
    finally:
        producer.close()
    _say(
        f"   {result.events:,} events appended to EventStoreDB ({config.members} members, {config.days} days)"
    )
    return start, truth_dir


def relay(settings: Settings, config: DemoConfig) -> None:
    from cdr_platform.simulator.faults import FaultConfig
    from cdr_platform.simulator.relay import Relay, RelayConfig
    from cdr_platform.sources.kinesis_client import kinesis_client

    faults = FaultConfig(
        seed=config.seed,
        drop_rate=config.drop_rate,
        duplicate_rate=config.duplicate_rate,
        reorder_rate=config.reorder_rate,
        malformed_rate=config.malformed_rate,
    )
    esdb = EventStoreDBClient(settings.eventstore_uri)
    try:
        relay_config = RelayConfig(
            settings.usage_stream, settings.data_dir / "relay" / "checkpoint.json", faults=faults
        )
        result = Relay(
            esdb, kinesis_client(settings.aws_region, settings.kinesis_endpoint_url), relay_config
        ).run(until_caught_up=True)
    finally:
        esdb.close()
    _say(
        f"   {result.events_read:,} usage events relayed in {result.records_put:,} Kinesis records; "
        f"{result.faults} faults injected (drops, duplicates, reordering, malformed records)"
    )


def land_through_sensors(defs: Definitions, instance: DagsterInstance, outcome: DemoOutcome) -> None:
    """Tick each landing sensor and run what it requests, until no sensor asks for more."""
    resources = defs.resources or {}
    for _round in range(50):
        requested = False
        for sensor_name in ("kinesis_usage_sensor", "eventstore_member_sensor"):
            sensor = defs.resolve_sensor_def(sensor_name)
            result = sensor(build_sensor_context(instance=instance, resources=resources))
            if isinstance(result, SensorResult) and result.run_requests:
                requested = True
                job = defs.resolve_job_def(sensor.job_name)
                run = job.execute_in_process(
                    run_config=QUIET, instance=instance, resources=resources, raise_on_error=False
                )
                if not run.success:
                    outcome.failed_checks.append(f"landing run of {sensor.job_name}")
                for materialization in run.get_asset_materialization_events():
                    meta = materialization.materialization.metadata
                    _say(
                        f"   {sensor_name} -> {sensor.job_name}: {meta['landed'].value:,} landed, "
                        f"{meta['duplicates'].value:,} duplicates, "
                        f"{meta['dead_lettered'].value:,} dead-lettered"
                    )
        if not requested:
            return


def reconcile(defs: Definitions, instance: DagsterInstance, outcome: DemoOutcome) -> None:
    job = defs.resolve_job_def("reconcile_usage_events")
    run = job.execute_in_process(
        run_config=QUIET, instance=instance, resources=defs.resources or {}, raise_on_error=False
    )
    for evaluation in run.get_asset_check_evaluations():
        meta = evaluation.metadata
        _say(
            f"   reconciliation: {meta['missing'].value} missing events found over "
            f"{meta['hours_checked'].value} hours, {meta['repaired'].value} repaired from EventStoreDB; "
            f"surplus {meta['surplus'].value}"
        )
        if not evaluation.passed:
            outcome.failed_checks.append(str(evaluation.asset_check_key.to_user_string()))
    if not run.success:
        outcome.failed_checks.append("reconciliation run")


def run_demo(settings: Settings, config: DemoConfig | None = None) -> int:
    """Run the whole platform once on an embedded stack; returns the process exit code."""
    from cdr_platform.devstack.stack import Devstack  # the demo runs the devstack; product code does not

    config = config or DemoConfig()
    settings = demo_settings(settings)
    outcome = DemoOutcome()
    started = time.monotonic()
    with Devstack(settings, persistent=False) as endpoints:
        _say(f"devstack: {endpoints}")
        with _Step(outcome, f"simulate {config.days} days of traffic into EventStoreDB"):
            period_start, truth_dir = simulate(settings, config)
        with _Step(outcome, "relay usage events to Kinesis (with faults)"):
            relay(settings, config)
        defs = build_definitions(settings)
        with DagsterInstance.ephemeral() as instance:
            with _Step(outcome, "sensors request landing runs; runs land the raw layer"):
                land_through_sensors(defs, instance, outcome)
            with _Step(outcome, "reconcile with EventStoreDB and repair gaps"):
                reconcile(defs, instance, outcome)
            with _Step(outcome, "dbt builds the marts"):
                build_marts(defs, instance, outcome)
        with _Step(outcome, "report"):
            report(settings, period_start + timedelta(days=config.days), truth_dir)
    total = time.monotonic() - started
    _say(f"\ndemo finished in {total:.0f}s")
    if outcome.failed_checks:
        _say(f"FAILED checks: {', '.join(outcome.failed_checks)}")
        return 1
    _say(
        "next: `make dev` for the Dagster UI at http://127.0.0.1:3000 with live traffic, "
        "`.venv/bin/cdr-platform sql` to query the marts"
    )
    return 0


def build_marts(defs: Definitions, instance: DagsterInstance, outcome: DemoOutcome) -> None:
    """Placeholder until the dbt wiring lands: no marts yet."""
    _say("   (dbt marts not wired yet)")


def report(settings: Settings, period_end: datetime, truth_dir: Path) -> None:
    from cdr_platform.lake.connection import connect_lake

    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path, read_only=True)
    try:
        usage, members, dead = (
            con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            for t in ("usage_events", "member_events", "dead_letter")
        )
    finally:
        con.close()
    _say(f"   raw layer: {usage:,} usage events, {members:,} member events, {dead:,} dead letters")
    _ = (period_end, truth_dir, UTC)
