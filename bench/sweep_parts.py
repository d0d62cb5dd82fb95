"""Where the time of a PostgreSQL deadline sweep goes: its parts, each timed alone.

Run from the project root (prints, never asserts; needs PostgreSQL on 127.0.0.1):

    .venv/bin/python bench/sweep_parts.py [--cases N] [--due D]

It seeds the database of ``bench/sweep.py`` (N cases, one reminder each, D due) and times,
median of 7, each statement in a transaction that is rolled back (the tables it wrote
vacuumed, untimed, before each run):

* the sweep itself (``workflow.cases.sweep``'s statement);
* finding and locking the due reminders (``FOR UPDATE SKIP LOCKED``) and nothing else;
* claiming them as the sweep does (an UPDATE that sets ``done_at``), and by a DELETE instead;
* writing D outbox rows, with the outbox's constraints added one by one to a copy of its
  columns: heap only, primary key, the unique dedup key, the relay's partial index, the
  foreign key to ``cases``.

The last rows show what one notification row per due reminder costs by itself, whatever the
sweep around it does.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import psycopg  # noqa: E402

from models.migrate import upgrade  # noqa: E402


def _bench_sweep() -> Any:
    spec = importlib.util.spec_from_file_location("bench_sweep", _BENCH / "sweep.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DUE = (
    "SELECT {col} FROM reminders WHERE done_at IS NULL AND due_at <= %(now)s "
    "ORDER BY due_at, id LIMIT %(n)s FOR UPDATE SKIP LOCKED"
)
ROWS = (
    "SELECT 'reminder:' || i || ':email:examiner', i, NULL, 'email', 'examiner', "
    "'decision.remind80', '{}'::jsonb, 'pending', 0, now(), now() "
    "FROM generate_series(1, %(n)s) AS g(i)"
)
COLUMNS = (
    "(dedup_key, case_id, event_seq, channel, recipient, template, payload, status, "
    "attempts, available_at, created_at)"
)
CONSTRAINTS = (
    ("+ primary key", "ALTER TABLE parts_outbox ADD PRIMARY KEY (id)"),
    ("+ unique dedup key", "ALTER TABLE parts_outbox ADD UNIQUE (dedup_key)"),
    (
        "+ relay's partial index",
        "CREATE INDEX ON parts_outbox (available_at, id) WHERE status = 'pending'",
    ),
    (
        "+ foreign key to cases",
        "ALTER TABLE parts_outbox ADD FOREIGN KEY (case_id) "
        "REFERENCES cases (id) ON DELETE CASCADE",
    ),
)


def timed(
    conn: psycopg.Connection[Any], sql: str, params: dict[str, Any], tables: str, runs: int = 7
) -> float:
    times = []
    for _ in range(runs):
        conn.execute(f"VACUUM {tables}")
        with conn.transaction(force_rollback=True):
            t0 = time.perf_counter()
            conn.execute(sql, params)
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=10_000)
    args = ap.parse_args()
    bench = _bench_sweep()
    engine = bench.fresh("postgresql", Path(tempfile.gettempdir()), "parts")
    try:
        upgrade(engine)
        bench.seed(engine, args.cases, args.due)
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        params = {"now": bench.NOW, "n": args.due}
        with psycopg.connect(url, autocommit=True) as conn:
            print(f"{args.cases:,} cases, {args.due:,} due; median of 7, ms")
            print(f"{'the sweep (workflow.cases.sweep)':<38}{_sweep_ms(bench, engine):8.1f}")
            claim = "{verb} WHERE ctid = ANY(ARRAY(SELECT ctid FROM d))"
            due_ctid = f"WITH d AS ({DUE.format(col='ctid')}) "
            parts = {
                "find and lock the due reminders": (
                    f"SELECT count(*) FROM ({DUE.format(col='id')}) d"
                ),
                "... and claim them: UPDATE done_at": due_ctid
                + claim.format(verb="UPDATE reminders SET done_at = %(now)s"),
                "... or claim them: DELETE": due_ctid + claim.format(verb="DELETE FROM reminders"),
            }
            for label, sql in parts.items():
                print(f"{label:<38}{timed(conn, sql, params, 'reminders'):8.1f}", flush=True)
            print(f"write {args.due:,} outbox rows:")
            conn.execute("DROP TABLE IF EXISTS parts_outbox")
            conn.execute("CREATE TABLE parts_outbox (LIKE outbox INCLUDING DEFAULTS)")
            insert = f"INSERT INTO parts_outbox {COLUMNS} {ROWS}"
            print(f"{'  heap only':<38}{timed(conn, insert, params, 'parts_outbox'):8.1f}")
            for label, ddl in CONSTRAINTS:
                conn.execute(ddl)
                print(
                    f"{'  ' + label:<38}{timed(conn, insert, params, 'parts_outbox'):8.1f}",
                    flush=True,
                )
            ms = timed(conn, insert + " ON CONFLICT DO NOTHING", params, "parts_outbox")
            print(f"{'  + ON CONFLICT DO NOTHING':<38}{ms:8.1f}")
    finally:
        bench.drop("postgresql", engine, "parts")


def _sweep_ms(bench: Any, engine: Any) -> float:
    from config.settings import load_settings

    settings = load_settings(sweep_batch=10_000_000)
    bench.one_sweep(engine, settings, trace=False)  # warm
    return (
        statistics.median(bench.one_sweep(engine, settings, trace=False)[0] for _ in range(7))
        * 1000
    )


if __name__ == "__main__":
    main()
