"""A Postgres role that reads the marts of a DuckLake catalog and nothing else of it.

DuckLake keeps every schema's metadata in shared catalog tables (``ducklake_table``,
``ducklake_data_file`` and the rest), so a plain ``GRANT SELECT`` would show an analyst where raw
data lives, and the rows DuckLake inlined in the catalog (``ducklake_inlined_data_<table>_<version>``,
recent raw events among them) would be one query away. ``grant_marts_reader`` therefore:

- grants ``SELECT`` on the shared catalog tables and turns on row-level security on every one that
  names a schema or a table: the role sees only the rows of the mart schemas, of their tables and
  views, and of those tables' columns, files, statistics and partitions;
- grants ``SELECT`` on the inlined-data tables of mart tables only, now and, through a trigger that
  fires when the writer's transaction commits, on each one DuckLake creates later (dbt makes new
  tables on every build);
- grants nothing else: no write, no other inlined data, not the list of files awaiting deletion.

What the role still sees: the lake's settings (``ducklake_metadata``: the data path), snapshot ids
and times, and the change log's table ids (``ducklake_snapshot_changes``), none of them data. Views
in the mart schemas that read raw or meta tables (the live exec reports) do not resolve for it.
Writers connect as the catalog's owner, to which row-level security does not apply.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg2
from psycopg2 import sql

NOT_GRANTED = {"ducklake_files_scheduled_for_deletion"}
"""Paths of files awaiting deletion, of any schema: readers never need them."""


def _catalog_tables(cur: psycopg2.extensions.cursor) -> dict[str, set[str]]:
    """DuckLake's shared catalog tables (not the inlined data), with their column names."""
    cur.execute(
        """
        SELECT c.table_name, array_agg(c.column_name::text)
        FROM information_schema.columns c
        WHERE c.table_schema = 'public' AND c.table_name LIKE 'ducklake\\_%'
          AND c.table_name NOT LIKE 'ducklake\\_inlined\\_data\\_%\\_%'
        GROUP BY c.table_name
        """
    )
    return {name: set(columns) for name, columns in cur.fetchall() if name not in NOT_GRANTED}


GRANT_FUNCTION = """
CREATE OR REPLACE FUNCTION cdr_grant_marts_inlined_data() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
DECLARE reader text;
BEGIN
  FOR reader IN SELECT unnest(string_to_array(TG_ARGV[0], ',')) LOOP
    IF EXISTS (
      SELECT 1 FROM ducklake_table t JOIN ducklake_schema s USING (schema_id)
      WHERE t.table_id = NEW.table_id AND s.schema_name = ANY (string_to_array(TG_ARGV[1], ','))
    ) THEN
      EXECUTE format('GRANT SELECT ON %I TO %I', NEW.table_name, reader);
    END IF;
  END LOOP;
  RETURN NULL;
END $$
"""


def grant_marts_reader(dsn: str, role: str, schemas: Sequence[str]) -> None:
    """Create (or update) ``role`` as a login that reads only ``schemas`` of the catalog at ``dsn``.

    ``dsn`` connects as the catalog's owner. Idempotent; run it after the lake has its schema.
    """
    con = psycopg2.connect(dsn)
    try:
        con.autocommit = False
        with con.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            if not cur.fetchone():
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            cur.execute("SELECT current_database()")
            database = cur.fetchone()[0]
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(database), sql.Identifier(role)
                )
            )
            cur.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
            visible_schemas = sql.SQL(
                "SELECT schema_id FROM ducklake_schema WHERE schema_name = ANY ({})"
            ).format(sql.Literal(list(schemas)))
            for table, columns in _catalog_tables(cur).items():
                cur.execute(
                    sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(table), sql.Identifier(role))
                )
                if table == "ducklake_schema":
                    condition = sql.SQL("schema_name = ANY ({})").format(sql.Literal(list(schemas)))
                elif "schema_id" in columns:
                    condition = sql.SQL("schema_id IN ({})").format(visible_schemas)
                elif "table_id" in columns:
                    condition = sql.SQL("table_id IN (SELECT table_id FROM ducklake_table)")  # RLS'd
                else:
                    continue
                policy = sql.Identifier(f"{role}_reads_marts")
                cur.execute(sql.SQL("ALTER TABLE {} ENABLE ROW LEVEL SECURITY").format(sql.Identifier(table)))
                cur.execute(sql.SQL("DROP POLICY IF EXISTS {} ON {}").format(policy, sql.Identifier(table)))
                cur.execute(
                    sql.SQL("CREATE POLICY {} ON {} FOR SELECT TO {} USING ({})").format(
                        policy, sql.Identifier(table), sql.Identifier(role), condition
                    )
                )
            cur.execute(
                sql.SQL(
                    """
                    SELECT i.table_name FROM ducklake_inlined_data_tables i
                    JOIN ducklake_table t USING (table_id) JOIN ducklake_schema s USING (schema_id)
                    WHERE s.schema_name = ANY ({})
                    """
                ).format(sql.Literal(list(schemas)))
            )
            for (inlined,) in cur.fetchall():
                cur.execute(
                    sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(inlined), sql.Identifier(role))
                )
            cur.execute(GRANT_FUNCTION)
            trigger = sql.Identifier(f"{role}_grant_marts_inlined_data")
            cur.execute(sql.SQL("DROP TRIGGER IF EXISTS {} ON ducklake_inlined_data_tables").format(trigger))
            cur.execute(
                sql.SQL(
                    "CREATE CONSTRAINT TRIGGER {} AFTER INSERT ON ducklake_inlined_data_tables "
                    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                    "EXECUTE FUNCTION cdr_grant_marts_inlined_data({}, {})"
                ).format(trigger, sql.Literal(role), sql.Literal(",".join(schemas)))
            )
        con.commit()
    finally:
        con.close()
