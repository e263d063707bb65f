"""``python -m cdr_platform.simulator simulate|relay ...``: the same commands without the main CLI."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cdr_platform.errors import PlatformError
from cdr_platform.settings import SettingsError
from cdr_platform.simulator.commands import add_simulator_commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cdr_platform.simulator")
    add_simulator_commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
