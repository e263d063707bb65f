"""The main job, end to end on an embedded local stack: what ``make demo`` runs.

devstack up -> simulate a backfill with faults on -> relay to Kinesis -> sensors request landing runs,
which land everything -> reconciliation repairs what the relay dropped -> dbt builds the marts ->
print the executives' KPIs, a network and churn summary, and where to look next. Exits non-zero if
any asset check (reconciliation or a dbt test) failed. The demo uses its own ports and data folder
(``<data_dir>/demo``), so it never disturbs a running ``make dev``.

Stopping: run under ``shutdown.CleanStop`` (as ``cdr-platform demo`` is), SIGINT or SIGTERM at any step
ends the demo's stack and every subprocess (dbt included) and exits 130 or 143 within seconds. Dagster
code runs off the main thread (``off_main_thread``) so that the signal reaches the demo, not Dagster.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import (
    AbstractContextManager,
    ExitStack,
    closing,
    contextmanager,
    redirect_stderr,
    redirect_stdout,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from dagster import (
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    JobDefinition,
    SensorResult,
    build_sensor_context,
)

from cdr_platform.definitions import build_definitions
from cdr_platform.devtools.shutdown import StopRequested
from cdr_platform.settings import Settings
from cdr_platform.sources.eventstore_reader import connect_eventstore_from

if TYPE_CHECKING:
    import duckdb

DEMO_DAYS = 42
"""The demo's simulated period: 28 days of history for the churn model's longest feature window plus a
14-day label window after its cut-offs (the simulator's churn is a monthly hazard, so shorter periods
leave almost no churners to judge a model on)."""


@dataclass(frozen=True)
class DemoConfig:
    days: int = DEMO_DAYS
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


T = TypeVar("T")

DASHBOARD_PORT = 8050
"""``cdr-platform dashboard``'s default ``--port`` (devtools does not import the analytics package)."""

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
    return settings.with_changes(
        data_dir=data_dir,
        kinesis_endpoint_url=f"http://127.0.0.1:{free_port()}",
        eventstore_uri=f"esdb://127.0.0.1:{free_port()}?Tls=false",
        lake_catalog="",
        lake_data_path="",
        reconcile_settle_seconds=0,
    )


def period_end(now: datetime) -> datetime:
    """The latest 18:00 UTC at or before ``now``: the executives' "today so far" then spans a working day."""
    evening = now.replace(hour=18, minute=0, second=0, microsecond=0)
    return evening if evening <= now else evening - timedelta(days=1)


def simulate(settings: Settings, config: DemoConfig) -> Path:
    from cdr_platform.simulator.faults import FaultConfig
    from cdr_platform.simulator.ground_truth import GroundTruthWriter
    from cdr_platform.simulator.model import OperatorConfig, build_operator
    from cdr_platform.simulator.producers import EventStoreProducer
    from cdr_platform.simulator.simulation import Progress, Simulation

    start = period_end(datetime.now(UTC)) - timedelta(days=config.days)
    operator = build_operator(OperatorConfig(seed=config.seed, members=config.members), start, config.days)
    truth_dir = settings.data_dir / "truth"
    producer = EventStoreProducer(connect_eventstore_from(settings), workers=8)
    # On a stop, queued appends are abandoned rather than drained into an event store being stopped.
    with unless_stopped(closing(producer)), GroundTruthWriter(truth_dir) as truth:
        faults = FaultConfig(seed=config.seed, late_rate=config.late_rate)
        result = Simulation(operator, producer, faults, truth, Progress(sys.stderr)).run_backfill()
    _say(
        f"   {result.events:,} events appended to EventStoreDB ({config.members} members, {config.days} days)"
    )
    return truth_dir


def relay(settings: Settings, config: DemoConfig) -> None:
    from cdr_platform.simulator.faults import FaultConfig
    from cdr_platform.sources.kinesis_client import kinesis_client
    from cdr_platform.sources.relay import Relay, RelayConfig

    faults = FaultConfig(
        seed=config.seed,
        drop_rate=config.drop_rate,
        duplicate_rate=config.duplicate_rate,
        reorder_rate=config.reorder_rate,
        malformed_rate=config.malformed_rate,
    )
    esdb = connect_eventstore_from(settings)
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


@contextmanager
def unless_stopped(manager: AbstractContextManager[T]) -> Iterator[T]:
    """Enter ``manager`` and exit it when the block ends, except when a stop signal ends the block.

    After a stop, an abandoned Dagster run (``execute``) or producer thread may still use the resource
    until the process exits a moment later: closing it under them only makes them print errors.
    """
    with ExitStack() as stack:
        value = stack.enter_context(manager)
        try:
            yield value
        except StopRequested:
            stack.pop_all()  # never exited: the process is leaving
            raise


def off_main_thread(call: Callable[[], T], name: str) -> T:
    """Run ``call`` in a worker thread and return its result, or raise its exception.

    Dagster code run from the main thread (a sensor tick, ``execute_in_process``) installs its own
    SIGINT/SIGTERM handlers and raises its interrupt inside whatever runs: the demo's stop then comes
    as Dagster's exception, and in dagster-dbt's thread pool it can leave a lock held and hang the run
    (seen here). From a worker thread Dagster installs none, so a stop signal reaches the demo's
    handler at once; the worker is then abandoned, and its subprocesses ended with the rest.
    """
    finished: list[T | BaseException] = []

    def run() -> None:
        try:
            finished.append(call())
        except BaseException as exc:  # handed to the caller below
            finished.append(exc)

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    worker.join()  # a signal interrupts this wait
    if isinstance(finished[0], BaseException):
        raise finished[0]
    return finished[0]


def execute(job: JobDefinition, defs: Definitions, instance: DagsterInstance) -> ExecuteInProcessResult:
    """Run ``job`` in this process (off the main thread) and return its result."""
    resources = defs.resources or {}
    return off_main_thread(
        lambda: job.execute_in_process(
            run_config=QUIET, instance=instance, resources=resources, raise_on_error=False
        ),
        f"run of {job.name}",
    )


def land_through_sensors(defs: Definitions, instance: DagsterInstance, outcome: DemoOutcome) -> None:
    """Tick each landing sensor and run what it requests, until no sensor asks for more."""
    resources = defs.resources or {}
    for _round in range(50):
        requested = False
        for sensor_name in ("kinesis_usage_sensor", "eventstore_member_sensor"):
            sensor = defs.resolve_sensor_def(sensor_name)
            context = build_sensor_context(instance=instance, resources=resources)
            result = off_main_thread(partial(sensor, context), f"tick of {sensor_name}")
            if isinstance(result, SensorResult) and result.run_requests:
                requested = True
                run = execute(defs.resolve_job_def(sensor.job_name), defs, instance)
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
    run = execute(defs.resolve_job_def("reconcile_usage_events"), defs, instance)
    for evaluation in run.get_asset_check_evaluations():
        meta = evaluation.metadata
        _say(
            f"   reconciliation: {meta['missing'].value} missing events found over "
            f"{meta['hours_checked'].value} hours, {meta['repaired'].value} repaired from EventStoreDB; "
            f"surplus {meta['surplus'].value}"
        )
        # A repair warns (severity WARN): the demo's injected drops are expected, only an error fails it.
        if not evaluation.passed and evaluation.severity != AssetCheckSeverity.WARN:
            outcome.failed_checks.append(str(evaluation.asset_check_key.to_user_string()))
    if not run.success:
        outcome.failed_checks.append("reconciliation run")


def run_demo(settings: Settings, config: DemoConfig | None = None) -> int:
    """Run the whole platform once on an embedded stack; returns the process exit code."""
    from cdr_platform.devtools.stack import devstack_for

    config = config or DemoConfig()
    settings = demo_settings(settings)
    outcome = DemoOutcome()
    started = time.monotonic()
    with devstack_for(settings, persistent=False) as endpoints:
        _say(f"devstack: {endpoints}")
        with _Step(outcome, f"simulate {config.days} days of traffic into EventStoreDB"):
            simulate(settings, config)
        with _Step(outcome, "relay usage events to Kinesis (with faults)"):
            relay(settings, config)
        defs = build_definitions(settings)
        with unless_stopped(DagsterInstance.ephemeral()) as instance:
            with _Step(outcome, "sensors request landing runs; runs land the raw layer"):
                land_through_sensors(defs, instance, outcome)
            with _Step(outcome, "reconcile with EventStoreDB and repair gaps"):
                reconcile(defs, instance, outcome)
            with _Step(outcome, "dbt builds the marts"):
                marts_built = build_marts(defs, instance, outcome, settings.data_dir)
        if marts_built:
            with _Step(outcome, "report"):
                report(settings)
        else:
            _say("\n== report skipped: the dbt build run failed, so the marts it would read are incomplete")
    total = time.monotonic() - started
    _say(f"\ndemo finished in {total:.0f}s")
    if outcome.failed_checks:
        _say(f"FAILED checks: {', '.join(outcome.failed_checks)}")
        return 1
    _say(
        "next: `make dev` for the Dagster UI at http://127.0.0.1:3000 with live traffic; query this run's "
        f"marts with `CDR_DATA_DIR={settings.data_dir} .venv/bin/cdr-platform sql`"
    )
    _say(
        f"executives' dashboard of this run: `CDR_DATA_DIR={settings.data_dir} .venv/bin/cdr-platform "
        f"dashboard`, then open http://127.0.0.1:{DASHBOARD_PORT}"
    )
    return 0


def build_marts(defs: Definitions, instance: DagsterInstance, outcome: DemoOutcome, log_dir: Path) -> bool:
    """The daily full build: every model and every dbt test (tests are asset checks).

    Returns whether the run succeeded (failed dbt tests alone leave the marts readable); what
    failed, checks or models, is named in ``outcome`` and printed.
    """
    job = defs.resolve_job_def("dbt_daily_build")
    log = log_dir / "dbt_build.log"
    with (
        unless_stopped(log.open("w")) as handle,
        unless_stopped(redirect_stdout(handle)),
        unless_stopped(redirect_stderr(handle)),
    ):
        run = execute(job, defs, instance)
    built = len(run.get_asset_materialization_events())
    checks = run.get_asset_check_evaluations()
    failed = [c.asset_check_key.to_user_string() for c in checks if not c.passed]
    _say(
        f"   {built} models built, {len(checks) - len(failed)} of {len(checks)} dbt tests passed (log: {log})"
    )
    outcome.failed_checks += failed
    if not run.success:
        failed_steps = [event.step_key for event in run.get_step_failure_events() if event.step_key]
        outcome.failed_checks.append(f"dbt build run ({', '.join(failed_steps) or 'see ' + str(log)})")
        _say(f"   the dbt build run failed: {', '.join(failed_steps) or 'no step ran'}; see {log}")
    return run.success


def report(settings: Settings) -> None:
    """Executives' KPIs, a network and churn summary, and the exec chart as an SVG file."""
    from cdr_platform.lake.connection import connect_lake

    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path, read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        usage, members, dead = (
            con.execute(f"SELECT count(*) FROM raw.{t}").fetchone()[0]
            for t in ("usage_events", "member_events", "dead_letter")
        )
        _say(f"   raw layer: {usage:,} usage events, {members:,} member events, {dead:,} dead letters")
        kpis = con.execute(
            "SELECT kpi_label, unit, value_today, value_same_time_last_week, change_ratio, "
            "strftime(as_of, '%Y-%m-%d %H:%M:%S') FROM marts.rpt_exec_kpis_intraday ORDER BY kpi_order"
        ).fetchall()
        latest_event = con.execute(
            "SELECT strftime(max(occurred_at), '%Y-%m-%d %H:%M:%S') FROM raw.usage_events"
        ).fetchone()[0]
        cells = con.execute(
            """
            SELECT cell_id, sum(dropped_calls) AS dropped, sum(answered_calls) AS answered,
                   sum(dropped_calls) / nullif(sum(answered_calls), 0) AS drop_rate,
                   sum(congestion_failures) / nullif(sum(seizures), 0) AS blocking
            FROM marts.fct_cell_kpis_hourly GROUP BY 1 HAVING sum(answered_calls) >= 20
            ORDER BY drop_rate DESC LIMIT 5
            """
        ).fetchall()
        backtest = con.execute(
            "SELECT strftime(cutoff_date, '%Y-%m-%d'), horizon_days, members, churners, base_rate, auc, k, "
            "precision_at_k FROM marts.rpt_churn_model_backtest ORDER BY cutoff_date"
        ).fetchall()
        hourly = con.execute(
            "SELECT hour_of_day, calls_today, calls_same_time_last_week FROM marts.rpt_exec_kpis_hourly "
            "ORDER BY hour_of_day"
        ).fetchall()
        operator = operator_lines(con)
    finally:
        con.close()

    as_of = kpis[0][5] if kpis else "n/a"
    _say(f"\n   executive KPIs, today so far (as of {as_of} UTC) vs exactly the same span last week")
    _say(
        f"   (as of = what every Kinesis shard has landed, minus what may be in flight; the latest event "
        f"time, {latest_event} UTC, is a completion past it and no longer sets the cut-off)"
    )
    for label, unit, today, last_week, change, _ in kpis:
        change_text = "n/a" if change is None else f"{change:+.1%}"
        _say(f"   {label:<32} {_fmt(today, unit):>14} {_fmt(last_week, unit):>14} {change_text:>9}")
    _say(
        "\n   network: cells with the highest dropped-call rate (dropped / answered, both counted at the "
        "attempt cell)"
    )
    for cell_id, dropped, answered, drop_rate, blocking in cells:
        _say(
            f"   {cell_id:<22} {dropped:>5} of {answered:>6} answered calls dropped ({drop_rate:.1%}), "
            f"blocking {blocking:.1%}"
        )
    for line in operator:
        _say(line)
    for line in backtest_lines(backtest):
        _say(line)
    chart = settings.data_dir / "exec_kpis.svg"
    chart.write_text(calls_chart_svg(hourly))
    _say(f"   exec chart written to {chart}")


OPERATOR_SQL = {
    "network": """
        SELECT sum(answered_calls) / nullif(sum(seizures), 0),
               sum(answered_calls + user_busy_failures + no_answer_failures + subscriber_absent_failures
                   + rejected_failures) / nullif(sum(seizures), 0),
               sum(dropped_calls) / nullif(sum(answered_calls), 0),
               sum(congestion_failures) / nullif(sum(seizures), 0),
               sum(answered_duration_s) / nullif(sum(released_answered_calls), 0)
        FROM marts.fct_cell_kpis_hourly
    """,
    # The last 30 whole days: revenue over the average subscriber base (ARPU), and its split.
    "revenue": """
        WITH days AS (
            SELECT * FROM marts.fct_revenue_daily
            WHERE revenue_date > (SELECT max(revenue_date) FROM marts.fct_revenue_daily) - 31
              AND revenue_date < (SELECT max(revenue_date) FROM marts.fct_revenue_daily)
        )
        SELECT sum(revenue_micros) / 1e6 / nullif(avg(average_subscribers), 0),
               sum(plan_fee_revenue_micros) / nullif(sum(revenue_micros), 0),
               sum(data_revenue_micros) / nullif(sum(revenue_micros), 0),
               sum(voice_revenue_micros) / nullif(sum(revenue_micros), 0),
               sum(sms_revenue_micros) / nullif(sum(revenue_micros), 0),
               count(*)
        FROM days
    """,
    # Churn (port-out request or deactivation) per 30 member-days at risk, by plan type.
    "churn": """
        WITH period AS (
            SELECT min(revenue_date)::timestamptz AS starts,
                   max(revenue_date)::timestamptz + INTERVAL 1 DAY AS ends
            FROM marts.fct_revenue_daily
        ), members AS (
            SELECT plan_type, greatest(activated_at, starts) AS at_risk_from,
                   least(port_out_requested_at, deactivated_at) AS churned_at, starts, ends
            FROM marts.dim_members, period WHERE activated_at IS NOT NULL
        )
        SELECT plan_type,
               count(*) FILTER (WHERE churned_at >= starts AND churned_at < ends) AS churners,
               sum(greatest(epoch(least(coalesce(churned_at, ends), ends) - at_risk_from), 0)) / 86400 AS days
        FROM members GROUP BY plan_type ORDER BY plan_type
    """,
}


def operator_lines(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The operator's headline figures, to read against the published ones in the simulator's README."""
    asr, ner, drop, blocking, acd = con.execute(OPERATOR_SQL["network"]).fetchone()
    arpu, fees, data, voice, sms, days = con.execute(OPERATOR_SQL["revenue"]).fetchone()
    churn = con.execute(OPERATOR_SQL["churn"]).fetchall()
    lines = ["\n   operator figures (compare with cdr_platform/simulator/README.md, Calibration)"]
    if asr is not None:
        lines.append(
            f"   calls: ASR {asr:.1%}, NER {ner:.1%}, dropped {drop:.2%} of answered, "
            f"blocking {blocking:.2%}, ACD {acd:.0f} s"
        )
    if arpu is not None:
        lines.append(
            f"   ARPU {arpu:.2f} over the last {days} whole days (revenue / average subscriber base); "
            f"plan fees {fees:.0%}, data {data:.0%}, voice {voice:.0%}, SMS {sms:.0%}"
        )
    for plan_type, churners, member_days in churn:
        if member_days:
            lines.append(
                f"   churn, {plan_type}: {churners} in {member_days:,.0f} member-days at risk = "
                f"{churners / member_days * 30:.1%} a month"
            )
    return lines


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "ratio":
        return f"{value:.2%}"
    return f"{value:,.2f}" if unit == "currency" else f"{value:,.0f}"


def backtest_lines(rows: list[tuple]) -> list[str]:
    """The churn model's backtest: per cut-off AUC and precision@k beside the base rate, then the mean.

    ``rows``: (cut-off, horizon days, members, churners, base rate, AUC, k, precision@k) per cut-off.
    """
    if not rows:
        return [
            "\n   churn model backtest: no cut-off yet (the data is shorter than the model's minimum "
            "history plus its label horizon; see the churn_model doc)"
        ]
    horizon = rows[0][1]
    lines = [
        f"\n   churn model backtest: the score from events before each cut-off, label = churn within "
        f"{horizon} days after it",
        f"   {'cut-off':<12}{'members':>8}{'churners':>9}{'base rate':>11}{'AUC':>7}{'precision@k':>15}",
    ]
    for cutoff, _, members, churners, base_rate, auc, k, precision in rows:
        auc_text = "n/a" if auc is None else f"{auc:.2f}"
        lines.append(
            f"   {cutoff:<12}{members:>8}{churners:>9}{base_rate:>11.1%}{auc_text:>7}"
            f"{f'{precision:.1%} @{k}':>15}"
        )
    judged = [row for row in rows if row[5] is not None]  # a cut-off without churners judges nothing
    if not judged:
        return [*lines, "   no cut-off has both churners and stayers yet: nothing to judge the score by"]
    mean_auc = sum(row[5] for row in judged) / len(judged)
    mean_precision = sum(row[7] for row in judged) / len(judged)
    mean_base = sum(row[4] for row in judged) / len(judged)
    lines.append(
        f"   mean over the {len(judged)} cut-offs with churners: AUC {mean_auc:.2f} (0.50 = chance), "
        f"precision@k {mean_precision:.1%} against a base rate of {mean_base:.1%} (a random pick's precision)"
    )
    return lines


def calls_chart_svg(hourly: list[tuple[int, int, int]], width: int = 720, height: int = 260) -> str:
    """Calls per hour today beside the same hour last week, as a small SVG bar chart."""
    top = max([max(today or 0, week or 0) for _, today, week in hourly] + [1])
    slot = (width - 60) / 24
    bars = []
    for hour, today, week in hourly:
        x = 40 + hour * slot
        for offset, value, colour in ((0.1, week or 0, "#b0b7c3"), (0.5, today or 0, "#2f6fdf")):
            bar_height = (height - 60) * value / top
            bars.append(
                f'<rect x="{x + offset * slot:.1f}" y="{height - 30 - bar_height:.1f}" '
                f'width="{slot * 0.38:.1f}" height="{bar_height:.1f}" fill="{colour}"/>'
            )
        if hour % 3 == 0:
            bars.append(f'<text x="{x:.1f}" y="{height - 12}" font-size="11">{hour:02d}h</text>')
    legend = (
        '<text x="40" y="18" font-size="13">Calls per hour: today (blue) vs same day last week (grey)</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif">'
        f'<rect width="100%" height="100%" fill="white"/>{legend}{"".join(bars)}</svg>\n'
    )
