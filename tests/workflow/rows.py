"""Rows as the database holds them, for tests that pin a fast write path to SQLAlchemy Core."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def case_rows(session: Session, case_id: int, tables: dict[str, str]) -> dict[str, list[Any]]:
    """Every row of the case in ``tables`` (name: ORDER BY), as the database holds it
    (SQLite: the stored text; PostgreSQL: the row's jsonb text), without surrogate ids."""
    raw, out = session.connection().connection.driver_connection, {}
    for table, order in tables.items():
        key = "id" if table == "cases" else "case_id"
        if session.get_bind().dialect.name == "sqlite":
            cur = raw.execute(
                f"SELECT * FROM {table} WHERE {key} = ? "  # noqa: S608
                f"ORDER BY {order}",
                (case_id,),
            )
            names = [d[0] for d in cur.description]
            out[table] = [
                {n: v for n, v in zip(names, row, strict=True) if n != "id"}
                for row in cur.fetchall()
            ]
        else:
            cur = raw.execute(
                f"SELECT (to_jsonb(t) - 'id')::text FROM {table} t "  # noqa: S608
                f"WHERE {key} = %s ORDER BY {order}",
                (case_id,),
            )
            out[table] = [row[0] for row in cur.fetchall()]
    return out
