"""The ``cdr-platform`` command line: one subcommand per capability, each with ``--help``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from cdr_platform.analytics.commands import add_analytics_commands
from cdr_platform.errors import PlatformError
from cdr_platform.settings import SettingsError, load_settings
from cdr_platform.simulator.commands import add_simulator_commands

if TYPE_CHECKING:
    from cdr_platform.devtools.stack import Devstack

Handler = Callable[[argparse.Namespace], int]


def _devstack(args: argparse.Namespace) -> int:
    from cdr_platform.devtools.stack import devstack_for

    stack = devstack_for(load_settings(), persistent=not args.ephemeral, tls=args.tls, profile=args.profile)
    if args.action == "up" and args.foreground:
        return _serve_devstack(stack, args.tls)
    if args.action == "up":
        _print_endpoints(stack, stack.up(), args.tls)
        print("stop it with: cdr-platform devstack down")
    elif args.action == "down":
        stopped = stack.down()
        print(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    else:
        live = stack.status()
        if args.json:
            print(json.dumps(live))
        elif not live:
            print("the devstack is not running (start it with: cdr-platform devstack up)")
        else:
            for name, endpoint in live.items():
                print(f"{name:<11} {endpoint}")
        return 0 if live or args.json else 1
    return 0


def _serve_devstack(stack: Devstack, tls: bool) -> int:
    """``devstack up --foreground``: serve until a signal or a service's exit, then stop what it started."""
    try:
        _print_endpoints(stack, stack.up(), tls)
        if not stack.started:
            print(
                "error: the devstack is already running (cdr-platform devstack down stops it)",
                file=sys.stderr,
            )
            return 1
        print("serving in the foreground: Ctrl-C or SIGTERM stops it", flush=True)
        stack.wait_while_serving()
    finally:
        stack.stop_started()


def _print_endpoints(stack: Devstack, endpoints: dict[str, str], tls: bool) -> None:
    for name, endpoint in endpoints.items():
        print(f"{name:<11} {endpoint}")
    if tls:
        certificate = stack.tls_dir / "server.crt"
        print(f"TLS: use the URI above with CDR_EVENTSTORE_ROOT_CERTIFICATES={certificate}")
    if stack.config.profile == "production":
        print(f"production profile: `source {stack.env_file}` points the platform at Postgres and S3")


def _demo(args: argparse.Namespace) -> int:
    from cdr_platform.devtools.demo import DemoConfig, run_demo

    sizes = {"days": args.days, "members": args.members}
    return run_demo(load_settings(), DemoConfig(**{k: v for k, v in sizes.items() if v is not None}))


def _streams(args: argparse.Namespace) -> int:
    from cdr_platform.lake.checkpoints import checkpoint_store
    from cdr_platform.lake.connection import connect_lake
    from cdr_platform.lake.schema import ensure_schema
    from cdr_platform.sources.eventstore_reader import connect_eventstore_from
    from cdr_platform.sources.history_export import build_filter, export_history, stream_consumer
    from cdr_platform.sources.kinesis_client import kinesis_client

    settings = load_settings()
    history_filter = build_filter(
        args.event_types, args.member_ids, args.categories, args.occurred_from, args.occurred_to
    )
    esdb = connect_eventstore_from(settings)
    con = connect_lake(settings.resolved_lake_catalog, settings.resolved_lake_data_path)
    try:
        ensure_schema(con)
        load, save = checkpoint_store(con, stream_consumer(args.target))
        report = export_history(
            esdb,
            kinesis_client(settings.aws_region, settings.kinesis_endpoint_url),
            args.target,
            history_filter,
            shards=args.shards,
            load_checkpoint=load,
            save_checkpoint=save,
            log=lambda line: print(line, file=sys.stderr),
        )
    finally:
        con.close()
        esdb.close()
    print(
        f"{report.target_stream}: {report.published} events published "
        f"({'created' if report.created_stream else 'existing stream'}), position {report.position}"
    )
    return 0


def _csv(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def _dev(args: argparse.Namespace) -> int:
    from cdr_platform.devtools.devloop import run_dev

    return run_dev(
        load_settings(),
        members=args.members,
        speed=args.speed,
        port=args.port,
        dashboard_port=args.dashboard_port,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdr-platform",
        description="Event-sourced call records: EventStoreDB -> Kinesis -> Dagster -> DuckLake -> dbt.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    devstack = commands.add_parser(
        "devstack",
        help="start, inspect or stop the local Kinesis and EventStoreDB endpoints",
        description="The embedded local stack: kinesis-local and the EventStoreDB-compatible server.",
    )
    devstack.add_argument("action", choices=["up", "down", "status"])
    devstack.add_argument("--json", action="store_true", help="status: print the endpoints as JSON")
    devstack.add_argument(
        "--ephemeral",
        action="store_true",
        help="up: keep data in memory only (default: persist under data_dir)",
    )
    devstack.add_argument(
        "--tls",
        action="store_true",
        help="up: serve EventStoreDB over TLS with a generated self-signed certificate",
    )
    devstack.add_argument(
        "--profile",
        choices=["embedded", "production"],
        default="embedded",
        help="up: 'production' adds PostgreSQL (lake catalog, Dagster storage) and a local S3 endpoint",
    )
    devstack.add_argument(
        "--foreground",
        action="store_true",
        help="up: serve until Ctrl-C or SIGTERM, then stop what it started",
    )
    devstack.set_defaults(handler=_devstack)

    streams = commands.add_parser(
        "streams",
        help="new-consumer streams built from EventStoreDB history",
        description="Publish filtered EventStoreDB history to a Kinesis stream for a new consumer.",
    )
    stream_actions = streams.add_subparsers(dest="action", required=True, metavar="ACTION")
    request = stream_actions.add_parser(
        "request",
        help="create (if needed) and fill a Kinesis stream from history; resumable",
        description="Records use the relay's format (KPL aggregates, partition key = member id). Re-running "
        "the same request resumes from its checkpoint.",
    )
    request.add_argument("--target", required=True, help="target Kinesis stream name")
    request.add_argument("--shards", type=int, default=1, help="shard count when the stream is created")
    request.add_argument("--event-types", type=_csv, help="comma-separated event types (default: all)")
    request.add_argument("--member-ids", type=_csv, help="comma-separated member ids (default: all)")
    request.add_argument(
        "--categories", type=_csv, help="comma-separated stream categories, e.g. call,member"
    )
    request.add_argument("--from", dest="occurred_from", help="event-time start, ISO 8601 (inclusive)")
    request.add_argument("--to", dest="occurred_to", help="event-time end, ISO 8601 (exclusive)")
    request.set_defaults(handler=_streams)

    add_simulator_commands(commands)
    add_analytics_commands(commands)

    dev = commands.add_parser(
        "dev",
        help="local stack + live traffic + relay + the Dagster UI (what `make dev` runs)",
        description="Starts the devstack, a live simulation (a week of history seeded on its first run, "
        "resumed where it stopped on the next) and the relay, both supervised, then `dagster dev`.",
    )
    dev.add_argument("--members", type=int, default=500, help="members in the live simulation (default: 500)")
    dev.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second (default: 60)")
    dev.add_argument("--port", type=int, default=3000, help="Dagster UI port (default: 3000)")
    dev.add_argument(
        "--dashboard-port", type=int, default=8050, help="executives' dashboard port (default: 8050)"
    )
    dev.set_defaults(handler=_dev)

    demo = commands.add_parser(
        "demo", help="run the main job end to end on the local stack", description="What `make demo` runs."
    )
    demo.add_argument("--days", type=int, help="days of simulated traffic (default: 42)")
    demo.add_argument("--members", type=int, help="simulated members (default: 300)")
    demo.set_defaults(handler=_demo)
    return parser


PROCESS_COMMANDS = ("devstack", "demo", "dev")
"""Commands that start processes: SIGINT, SIGTERM or an error ends all of them (``devtools.shutdown``)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        if args.command not in PROCESS_COMMANDS:
            return handler(args)
        from cdr_platform.devtools.shutdown import CleanStop

        with CleanStop(f"cdr-platform {args.command}"):  # on a signal, exits 128 + its number in here
            return handler(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
