"""CLI subcommands for analysts, executives and owners: ``owners``, ``sql`` and ``dashboard``.

``cdr_platform/cli.py`` registers them with ``add_analytics_commands(commands)``.
"""

from __future__ import annotations

import argparse
import json
import sys

import duckdb

from cdr_platform.settings import load_settings


def _owners(args: argparse.Namespace) -> int:
    from cdr_platform.analytics.owners import format_owners_table, owners_report, unowned
    from cdr_platform.definitions import defs

    rows = owners_report(defs)
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
    else:
        print(format_owners_table(rows))
    missing = unowned(rows)
    if missing:
        print(f"{len(missing)} asset(s) without an owner: {', '.join(missing)}", file=sys.stderr)
        return 1
    return 0


def _sql(args: argparse.Namespace) -> int:
    from cdr_platform.analytics.sql_shell import (
        Role,
        analyst_attach_sql,
        interactive,
        open_marts_session,
        write_csv,
    )

    settings = load_settings()
    if args.print_attach:
        print(analyst_attach_sql(settings))
        return 0
    role = Role(args.role)
    con = open_marts_session(settings, role)
    try:
        if args.command_text is not None:
            write_csv(con, args.command_text, sys.stdout, role)
            return 0
        return interactive(con, role=role)
    except duckdb.Error as exc:  # the query's own error (syntax, permission, read-only), no traceback
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        con.close()


def _grant_analysts(args: argparse.Namespace) -> int:
    from cdr_platform.lake.catalog_roles import grant_marts_reader

    catalog = load_settings().resolved_lake_catalog
    if not catalog.startswith("postgres:"):
        print(
            "error: analysts' catalog roles need a Postgres catalog (CDR_LAKE_CATALOG=postgres:...)",
            file=sys.stderr,
        )
        return 1
    owner = catalog.removeprefix("postgres:")
    grant_marts_reader(owner, args.role, ["main", "marts"])
    analyst = (
        " ".join(p for p in owner.split() if not p.startswith(("user=", "password="))) + f" user={args.role}"
    )
    print(f"CDR_ANALYST_LAKE_CATALOG='postgres:{analyst}'")
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from cdr_platform.analytics.dashboard import serve

    return serve(
        load_settings(), host=args.host, port=args.port, refresh_s=args.refresh_seconds, wait=args.wait
    )


def add_analytics_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``owners``, ``sql``, ``grant-analysts`` and ``dashboard`` on ``cdr-platform``'s subparsers."""
    owners = commands.add_parser(
        "owners",
        help="list every asset with its owners, group, upstream and downstream",
        description="Exits 1 if any asset has no owner.",
    )
    owners.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    owners.set_defaults(handler=_owners)

    sql = commands.add_parser(
        "sql",
        help="read-only SQL on the marts (interactive, or -c QUERY for CSV)",
        description="Marts resolve without a schema (select * from fct_calls). Analysts run queries on "
        "the marts only: no other schema, write, COPY, file read, ATTACH or extension. The platform "
        "role reads every layer (raw.x, meta.x, staging.x) read-only. Safe while pipelines write.",
    )
    sql.add_argument(
        "--role",
        choices=["analyst", "platform"],
        default="analyst",
        help="analyst (default): marts only; platform: every layer, for the data platform team",
    )
    sql.add_argument("-c", dest="command_text", metavar="QUERY", help="run QUERY and print CSV to stdout")
    sql.add_argument(
        "--print-attach",
        action="store_true",
        help="print the ATTACH statement for the DuckDB CLI or notebooks",
    )
    sql.set_defaults(handler=_sql)

    grant = commands.add_parser(
        "grant-analysts",
        help="create or update the Postgres catalog role analysts' sql sessions use (marts only)",
        description="Run as the catalog's owner (CDR_LAKE_CATALOG). Prints the CDR_ANALYST_LAKE_CATALOG "
        "for analysts' sessions; give them S3 credentials that read the marts' prefix only.",
    )
    grant.add_argument("--role", default="cdr_analyst", help="the Postgres role (default cdr_analyst)")
    grant.set_defaults(handler=_grant_analysts)

    from cdr_platform.analytics.dashboard import DEFAULT_PORT, DEFAULT_REFRESH_S

    dashboard = commands.add_parser(
        "dashboard",
        help="serve the executives' read-only dashboard (KPIs vs last week, hourly chart, worst cells)",
        description="Reads the marts only; the page refreshes by itself. Safe while pipelines write.",
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    dashboard.add_argument(
        "--refresh-seconds",
        type=float,
        default=DEFAULT_REFRESH_S,
        help=f"how often the page re-reads the marts (default {DEFAULT_REFRESH_S:g})",
    )
    dashboard.add_argument(
        "--wait",
        action="store_true",
        help="serve before the marts are built: the page says what it waits for until they are",
    )
    dashboard.set_defaults(handler=_dashboard)
