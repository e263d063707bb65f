"""Run the dev EventStoreDB-compatible server in the foreground until SIGTERM or SIGINT.

    python -m cdr_platform.devstack.eventstore --host 127.0.0.1 --port 2113 \
        --db PATH [--memory] [--tls-dir DIR]

Prints exactly one line, ``listening on esdb://...``, to stdout once it accepts connections.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from cdr_platform.devstack.eventstore.server import EventStoreServer


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, serve, and stop cleanly on a signal."""
    parser = argparse.ArgumentParser(
        prog="python -m cdr_platform.devstack.eventstore",
        description="Local EventStoreDB-compatible gRPC server (local work and tests only).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2113, help="0 picks a free port")
    parser.add_argument("--db", type=Path, help="SQLite file for durable storage")
    parser.add_argument("--memory", action="store_true", help="keep everything in memory (overrides --db)")
    parser.add_argument("--tls-dir", type=Path, help="serve TLS with a self-signed certificate kept here")
    args = parser.parse_args(argv)
    if args.db is None and not args.memory:
        parser.error("give --db PATH for durable storage, or --memory")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = EventStoreServer(args.host, args.port, None if args.memory else args.db, args.tls_dir)
    server.start()
    print(f"listening on {server.uri}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
