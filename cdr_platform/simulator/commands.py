"""``simulate`` and ``relay`` subcommands; ``add_simulator_commands`` registers them on a CLI.

Endpoint defaults come from ``load_settings()`` (the devstack unless configured otherwise), read when the
command runs, so ``--help`` works even with a broken configuration.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cdr_platform.simulator.faults import FaultConfig
from cdr_platform.simulator.live_state import STATE_FILE
from cdr_platform.simulator.model import OperatorConfig

EXPLICIT_OPERATOR_FLAGS = {"seed", "members"}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--start must be an ISO date or datetime, got {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _add_dataclass_flags(group: Any, cls: type, skip: set[str], dest_prefix: str) -> None:
    for spec in dataclasses.fields(cls):
        if spec.name in skip or spec.default is dataclasses.MISSING or spec.default is None:
            continue
        kind = type(spec.default)
        group.add_argument(
            _flag(spec.name),
            dest=f"{dest_prefix}{spec.name}",
            type=kind,
            default=spec.default,
            metavar=kind.__name__.upper(),
            help=f"(default: {spec.default})",
        )


def _picked(args: argparse.Namespace, prefix: str) -> dict[str, Any]:
    return {key[len(prefix) :]: value for key, value in vars(args).items() if key.startswith(prefix)}


def _with_uri(settings: Any, args: argparse.Namespace) -> Any:
    """The settings, with ``--eventstore-uri`` in place of the configured URI when given."""
    return settings.with_changes(eventstore_uri=args.eventstore_uri) if args.eventstore_uri else settings


def add_simulator_commands(subparsers: Any) -> None:
    """Register ``simulate`` and ``relay`` on an argparse subparsers object (handlers return exit codes)."""
    simulate = subparsers.add_parser(
        "simulate",
        help="generate an operator's traffic and append it to EventStoreDB",
        description=(
            "Seeded, deterministic operator model appended to EventStoreDB (streams call-, sms-, data-, "
            "balance-, member-<id>), with ground-truth CSV files. Backfill runs a period as fast as "
            "possible; live runs at wall-clock pace (times --speed). Re-running the same seed, --start, "
            "--days and model options is idempotent (they decide every id and the content behind it); a "
            "live run with --resume continues where its previous run stopped."
        ),
    )
    simulate.add_argument("--mode", choices=["backfill", "live"], default="backfill")
    simulate.add_argument("--days", type=float, default=1.0, help="simulated period length (default: 1)")
    simulate.add_argument("--members", type=int, default=2000, help="number of members (default: 2000)")
    simulate.add_argument("--seed", type=int, default=42, help="model and fault seed (default: 42)")
    simulate.add_argument(
        "--start",
        type=_start,
        default=None,
        help="period start, ISO date/datetime in UTC (default: backfill ends at today's 00:00 UTC; live "
        "starts now). Pass it explicitly for ids that do not change from one day to the next.",
    )
    simulate.add_argument("--speed", type=float, default=1.0, help="live: simulated seconds per second")
    simulate.add_argument(
        "--history-days",
        type=float,
        default=0.0,
        help="live: begin the period at 00:00 UTC this many days before today and append everything up to "
        "now first, as fast as a backfill; --days more follow live (default: 0)",
    )
    simulate.add_argument(
        "--resume",
        action="store_true",
        help=f"live: continue the run recorded in <out>/{STATE_FILE} from the clock it reached (its period "
        "and start win over --start, --days and --history-days); without one, start it and record it",
    )
    simulate.add_argument(
        "--out",
        type=Path,
        default=None,
        help="ground-truth folder (default: <data_dir>/simulator/seed-<seed>)",
    )
    simulate.add_argument("--eventstore-uri", default=None, help="default: CDR_EVENTSTORE_URI (the devstack)")
    simulate.add_argument("--workers", type=int, default=8, help="concurrent appends (default: 8)")
    simulate.add_argument("--dry-run", action="store_true", help="generate and encode only; append nothing")
    simulate.add_argument("--quiet", action="store_true", help="no progress line")
    model = simulate.add_argument_group("operator model")
    _add_dataclass_flags(model, OperatorConfig, EXPLICIT_OPERATOR_FLAGS, "op_")
    late = simulate.add_argument_group("producer faults")
    for name in ("late_rate", "late_min_hours", "late_max_hours"):
        late.add_argument(_flag(name), dest=f"fault_{name}", type=float, default=getattr(FaultConfig(), name))
    simulate.set_defaults(handler=run_simulate)

    relay = subparsers.add_parser(
        "relay",
        help="publish usage events from EventStoreDB $all to Kinesis (checkpointed, at-least-once)",
        description=(
            "Subscribes to $all filtered to usage event types, publishes them to Kinesis with partition key "
            "= member id in KPL aggregates, and checkpoints the commit position after Kinesis acknowledged."
        ),
    )
    relay.add_argument("--until-caught-up", action="store_true", help="stop once $all is caught up")
    relay.add_argument("--stream", default=None, help="Kinesis stream (default: CDR_USAGE_STREAM)")
    relay.add_argument("--eventstore-uri", default=None, help="default: CDR_EVENTSTORE_URI")
    relay.add_argument("--kinesis-endpoint-url", default=None, help="default: CDR_KINESIS_ENDPOINT_URL")
    relay.add_argument(
        "--checkpoint", type=Path, default=None, help="default: <data_dir>/relay/<stream>.checkpoint.json"
    )
    relay.add_argument(
        "--fault-log", type=Path, default=None, help="default: relay_faults.jsonl beside the checkpoint"
    )
    relay.add_argument("--batch-events", type=int, default=5000, help="events per checkpoint at most")
    relay.add_argument(
        "--stop-after-events", type=int, default=None, help="testing: exit as if crashed after N events"
    )
    relay.add_argument("--quiet", action="store_true", help="no progress line")
    relay.add_argument(
        "--retry-base-s", type=float, default=0.5, help="first wait after an endpoint error (default: 0.5)"
    )
    relay.add_argument(
        "--retry-cap-s", type=float, default=30.0, help="longest wait between retries (default: 30)"
    )
    relay.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=1.0,
        help="least time between two heartbeats on every shard (the executives' as-of time; 0: none)",
    )
    relay_faults = relay.add_argument_group("relay faults")
    relay_faults.add_argument("--fault-seed", dest="rfault_seed", type=int, default=0)
    for name in ("drop_rate", "duplicate_rate", "reorder_rate", "malformed_rate"):
        relay_faults.add_argument(_flag(name), dest=f"rfault_{name}", type=float, default=0.0)
    relay_faults.add_argument("--reorder-window", dest="rfault_reorder_window", type=int, default=20)
    relay_faults.add_argument(
        "--reshard-after-events", dest="rfault_reshard_after_events", type=int, default=None,
        help="reshard the stream (UpdateShardCount) once this many events are published",
    )  # fmt: skip
    relay_faults.add_argument(
        "--reshard-to-shards", dest="rfault_reshard_to_shards", type=int, default=None,
        help="target shard count of that reshard (default: double)",
    )  # fmt: skip
    relay.set_defaults(handler=run_relay)


def run_simulate(args: argparse.Namespace) -> int:
    from cdr_platform.settings import load_settings
    from cdr_platform.simulator.ground_truth import GroundTruthWriter
    from cdr_platform.simulator.live_state import save_live_state
    from cdr_platform.simulator.model import build_operator
    from cdr_platform.simulator.producers import DiscardingSink, EventSink, EventStoreProducer, ProducerClock
    from cdr_platform.simulator.simulation import Progress, Simulation, default_start
    from cdr_platform.sources.eventstore_reader import connect_eventstore_from

    settings = load_settings()
    config = OperatorConfig(seed=args.seed, members=args.members, **_picked(args, "op_"))
    faults = FaultConfig(seed=args.seed, **_picked(args, "fault_"))
    out = args.out or settings.data_dir / "simulator" / f"seed-{args.seed}"
    if args.mode == "live":
        state = _live_state(args, config, out / STATE_FILE)
        start, days, live_from = state.start, state.days, state.live_from
    else:
        start, days, live_from, state = args.start or default_start(args.days), args.days, None, None
    operator = build_operator(config, start, days)
    sink: EventSink
    clock: ProducerClock | None = None
    if args.dry_run:
        sink = DiscardingSink()
    else:
        client = connect_eventstore_from(_with_uri(settings, args))
        sink = EventStoreProducer(client, workers=args.workers)
        clock = ProducerClock(client) if args.mode == "live" else None  # the relay's heartbeats follow it
    progress = None if args.quiet else Progress()
    print(
        f"simulating {args.members} members from {start:%Y-%m-%d %H:%M}Z for {days:g} days -> {out}",
        file=sys.stderr,
    )
    resume_from = None
    save: Callable[[datetime], None] | None = None
    if state is not None and args.resume:
        path = out / STATE_FILE
        resume_from = state.clock if state.clock > start else None
        if resume_from is not None:
            print(f"resuming at {resume_from:%Y-%m-%d %H:%M:%S}Z ({path})", file=sys.stderr, flush=True)

        def save(acknowledged: datetime) -> None:
            save_live_state(path, state.at(acknowledged))

    def on_appended(acknowledged: datetime) -> None:
        if save is not None:
            save(acknowledged)
        if clock is not None:
            clock.tick(acknowledged)

    try:
        with GroundTruthWriter(out) as truth:
            simulation = Simulation(operator, sink, faults, truth, progress, resume_from, on_appended)
            if args.mode == "live":
                result = simulation.run_live(speed=args.speed, live_from=live_from)
            else:
                result = simulation.run_backfill()
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        sink.close()
    print(
        f"{result.events:,} events in {result.streams_appended:,} appends, {result.late_transactions} late "
        f"transactions, {result.elapsed_s:.1f}s ({result.events_per_s:,.0f} events/s); ground truth in {out}"
    )
    return 0


def _live_state(args: argparse.Namespace, config: OperatorConfig, path: Path) -> Any:
    """The live run's period and progress: resumed from ``path`` with ``--resume``, else new.

    A new period starts now, or with ``--history-days`` at 00:00 UTC that many days before today
    (so today so far and the same span last week are both in it); ``--start`` overrides either.
    """
    from cdr_platform.simulator.live_state import LiveState, load_live_state, save_live_state

    if args.resume and (state := load_live_state(path)) is not None:
        state.check_same_operator(config, path)
        return state
    now = datetime.now(UTC).replace(microsecond=0)
    if args.start is not None:
        start = args.start
    elif args.history_days:
        start = now.replace(hour=0, minute=0, second=0) - timedelta(days=args.history_days)
    else:
        start = now
    live_from = max(start, now) if args.history_days else start
    days = (live_from - start) / timedelta(days=1) + args.days
    state = LiveState.new(config, start, days, live_from)
    if args.resume:
        save_live_state(path, state)
    return state


def _connect_eventstore(settings: Any, config: Any) -> Any:
    """The EventStoreDB client, retried like any outage: an esdb+discover:// URI reads the cluster's
    gossip when connecting, which fails while the cluster is down (an esdb:// URI connects lazily)."""
    import logging

    from cdr_platform.sources.backoff import Backoff
    from cdr_platform.sources.eventstore_reader import EventStoreReadError, connect_eventstore_from
    from cdr_platform.sources.relay import RelayConfigError, describe_failure, is_configuration_error

    backoff = Backoff(config.retry_base_s, config.retry_cap_s)
    while True:
        try:
            return connect_eventstore_from(settings)
        except EventStoreReadError as exc:
            reason = describe_failure(exc.__cause__ or exc)  # the cause names hosts, never the password
            if is_configuration_error(exc):
                raise RelayConfigError(reason) from exc
            delay = backoff.next_delay()
            logging.getLogger(__name__).warning("relay: %s; connecting again in %.2fs", reason, delay)
            time.sleep(delay)  # a backoff, not a wait for a condition; Ctrl-C interrupts it


def run_relay(args: argparse.Namespace) -> int:
    """Relay until stopped (or caught up): endpoint outages are logged and retried, never fatal; a
    configuration error ends it with one line and exit code 2."""
    import logging

    from cdr_platform.settings import load_settings
    from cdr_platform.sources.kinesis_client import kinesis_client
    from cdr_platform.sources.relay import Relay, RelayConfig, RelayConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    settings = load_settings()
    stream = args.stream or settings.usage_stream
    checkpoint = args.checkpoint or settings.relay_checkpoint_for(stream)
    faults = FaultConfig(**_picked(args, "rfault_"))
    try:
        config = RelayConfig(
            stream_name=stream,
            checkpoint_path=checkpoint,
            fault_log_path=args.fault_log,
            batch_events=args.batch_events,
            retry_base_s=args.retry_base_s,
            retry_cap_s=args.retry_cap_s,
            heartbeat_interval_s=args.heartbeat_seconds,
            faults=faults,
        )
        eventstore = _connect_eventstore(_with_uri(settings, args), config)
        endpoint = args.kinesis_endpoint_url or settings.kinesis_endpoint_url
        kinesis = kinesis_client(settings.aws_region, endpoint)
        relay = Relay(eventstore, kinesis, config)
    except (RelayConfigError, ValueError) as exc:
        print(f"relay configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped before EventStoreDB answered; nothing was relayed", file=sys.stderr)
        return 130
    started = time.monotonic()
    first = relay.state.events_published
    tty = sys.stderr.isatty()

    def show(state: Any) -> None:
        if args.quiet:
            return
        rate = (state.events_published - first) / max(time.monotonic() - started, 1e-9)
        published = state.events_published
        line = f"relayed {published:>10,} records  {rate:>9,.0f}/s  position {state.commit_position}"
        print(line, end="\r" if tty else "\n", file=sys.stderr, flush=True)

    stop = threading.Event()
    try:
        result = relay.run(
            until_caught_up=args.until_caught_up,
            stop=stop,
            stop_after_events=args.stop_after_events,
            on_batch=show,
        )
    except RelayConfigError as exc:
        print(f"relay configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        stop.set()
        print("\nstopped; the checkpoint holds the last acknowledged position", file=sys.stderr)
        return 130
    if tty and not args.quiet:
        print(file=sys.stderr)
    print(
        f"read {result.events_read:,} events, {result.records_put:,} Kinesis records put, checkpoint "
        f"{result.commit_position} ({checkpoint}), {result.faults} faults logged, "
        f"{result.retries} endpoint errors retried, {result.heartbeats} heartbeats sent"
    )
    return 0
