"""What an analyst's SQL may do: read the marts, nothing else.

Two layers hold the line. DuckDB itself (set up by ``sql_shell.open_marts_session``) attaches the
lake read-only, disables external access (no local or remote files, no COPY TO, no extension
install or load) and locks the configuration so a statement cannot undo it. This module checks
each statement before it runs, for what DuckDB alone allows: only queries run (no ATTACH, SET,
CREATE of temporary objects, PRAGMA, CALL); every table or view named must be in ``lake.marts``
(raw, meta, staging, intermediate and DuckLake's own catalog tables are refused); and no table
function runs except the few that read no data (``range``, ``generate_series``, ``unnest``), so
``query('select * from raw.x')`` or ``ducklake_*`` functions cannot reach behind the marts.

The check reads the statement, not the plan, so a mart view that itself reads the raw layer
(the exec marts do) still answers: the analyst named only the view.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import duckdb

from cdr_platform.errors import PlatformError
from cdr_platform.lake.connection import LAKE_ALIAS

ANALYST_SCHEMA = "marts"
DATA_FREE_TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})


class AnalystRefusal(PlatformError):
    """A statement outside what an analyst session may run; the message names what and why."""


def check_analyst_sql(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    """Raise ``AnalystRefusal`` unless every statement in ``sql`` only reads ``lake.marts``.

    ``con`` is the analyst's session (its catalog resolves unqualified names). Invalid SQL passes
    through, so DuckDB reports the syntax error itself.
    """
    try:
        statements = con.extract_statements(sql)
    except duckdb.ParserException:
        return
    for statement in statements:
        if statement.type != duckdb.StatementType.SELECT:
            kind = statement.type.name.replace("_", " ")
            raise AnalystRefusal(
                f"analyst sessions run queries only: {kind} statements are refused "
                "(the data platform team has `cdr-platform sql --role platform`)"
            )
    allowed = ", ".join(sorted(DATA_FREE_TABLE_FUNCTIONS))
    for function in _table_functions(con, sql):
        if function.lower() not in DATA_FREE_TABLE_FUNCTIONS:
            raise AnalystRefusal(
                f"analyst sessions read the marts only: the table function {function}() is refused "
                f"(query the mart tables and views by name; allowed: {allowed})"
            )
    for name in sorted(_named_tables(sql)):
        _check_table(con, name)


def _named_tables(sql: str) -> set[str]:
    """The tables and views ``sql`` names, as written. Asked of an empty connection: on the
    session's own, DuckDB would replace each view by the tables it reads."""
    with duckdb.connect(config={"enable_external_access": False}) as parser:
        return parser.get_table_names(sql, qualified=True)


def _check_table(con: duckdb.DuckDBPyConnection, name: str) -> None:
    parts = [part.lower() for part in split_qualified_name(name)]
    if len(parts) == 3 and parts[0] == LAKE_ALIAS and parts[1] == ANALYST_SCHEMA:
        return
    if len(parts) == 2 and parts[0] == ANALYST_SCHEMA:
        return
    if len(parts) == 1:
        found = _schemas_holding(con, parts[0])
        if (LAKE_ALIAS, ANALYST_SCHEMA) in found or (found and found[0][0] == "system"):
            return  # a mart, or one of DuckDB's views describing the catalog (duckdb_tables)
        if not found:  # DuckDB would try the name as a file path (a replacement scan)
            raise AnalystRefusal(
                f"analyst sessions read the marts only: {name} is not a table or view of the marts "
                "(`show tables` lists them)"
            )
        where = f"schema {found[0][1]}"
    elif parts[0] != LAKE_ALIAS and (
        parts[0].startswith("__ducklake_metadata_") or parts[0] in _catalogs(con)
    ):
        where = f"catalog {parts[0]}"  # DuckLake's own metadata, system, temp
    else:
        where = f"schema {parts[-2]}"
    raise AnalystRefusal(
        f"analyst sessions read the marts only: {name} is in {where} "
        f"(query {ANALYST_SCHEMA} tables and views; the data platform team has `--role platform`)"
    )


def _schemas_holding(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    """(catalog, schema) of each table or view called ``name`` where an unqualified name can
    resolve, in that order: the lake (``marts`` first, then ``main``), then DuckDB's ``system``
    catalog, whose views describe the catalog (names, no data)."""
    rows = con.execute(
        """
        SELECT DISTINCT database_name, schema_name FROM (
            SELECT database_name, schema_name, table_name AS name FROM duckdb_tables()
            UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views()
        ) WHERE lower(name) = ? AND database_name IN (?, 'system')
        ORDER BY database_name = ? DESC, schema_name = ? DESC
        """,
        [name, LAKE_ALIAS, LAKE_ALIAS, ANALYST_SCHEMA],
    ).fetchall()
    return [(row[0], row[1]) for row in rows]


def _catalogs(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0].lower() for row in con.execute("SELECT database_name FROM duckdb_databases()").fetchall()}


def split_qualified_name(name: str) -> list[str]:
    """``lake."my schema".t`` -> ``['lake', 'my schema', 't']`` (DuckDB's quoting, ``""`` escapes)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(name):
        char = name[i]
        if quoted and char == '"' and name[i + 1 : i + 2] == '"':
            current.append('"')
            i += 1
        elif char == '"':
            quoted = not quoted
        elif char == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def _table_functions(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """Names of the table functions in ``sql``'s syntax tree (DuckDB's ``json_serialize_sql``)."""
    row = con.execute("SELECT json_serialize_sql(?)", [sql]).fetchone()
    tree = json.loads(row[0]) if row else {"error": True}
    if tree.get("error"):
        raise AnalystRefusal(
            "analyst sessions run plain queries only: this statement cannot be checked "
            f"({tree.get('error_message', 'no syntax tree')}); write it as a SELECT (PIVOT as GROUP BY)"
        )
    return [node["function"]["function_name"] for node in _walk(tree) if node.get("type") == "TABLE_FUNCTION"]


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
