"""The ``cdr-platform`` command line: one subcommand per capability, each with ``--help``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from cdr_platform.errors import PlatformError
from cdr_platform.settings import SettingsError, load_settings

Handler = Callable[[argparse.Namespace], int]


def _devstack(args: argparse.Namespace) -> int:
    from cdr_platform.devstack.stack import Devstack

    stack = Devstack(load_settings(), persistent=not args.ephemeral if args.action == "up" else True)
    if args.action == "up":
        endpoints = stack.up()
        for name, endpoint in endpoints.items():
            print(f"{name:<11} {endpoint}")
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


def _demo(args: argparse.Namespace) -> int:
    from cdr_platform.demo import run_demo

    return run_demo(load_settings())


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
    devstack.set_defaults(handler=_devstack)

    demo = commands.add_parser(
        "demo", help="run the main job end to end on the local stack", description="What `make demo` runs."
    )
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
