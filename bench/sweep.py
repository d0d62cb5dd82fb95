"""One deadline sweep over 1,000,000 cases, of which 10,000 are due, beside a naive sweep.

Run from the project root (prints, never asserts):

    .venv/bin/python bench/sweep.py [--cases N] [--due D] [--engines sqlite,postgresql]

For each database the script bulk-inserts N cases (set-based, inside the database) with one
planned reminder each; D of them are due. It then measures, each in a transaction that is
rolled back so every repetition sees the same data:

* sweep:  ``workflow.cases.sweep.sweep`` (find the due reminders through the partial index, claim
  them, write their outbox rows set-based), median of 3, and its peak Python memory. On
  PostgreSQL the tables it writes are vacuumed (untimed) before each run: a rolled-back run
  leaves 10,000 dead reminder and outbox rows behind, which the next run would otherwise
  wade through (autovacuum may be off, as on the benchmark machine; a real sweep commits and
  autovacuum cleans up after it);
* naive:  what a sweep without the index and the set-based claim would do: load every case
  through the ORM and pick the due ones in Python (once; it is slow);
* scale:  the sweep again over N/10 cases with the same D due, to show that time and memory
  follow the due cases, not all cases.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/transitions.py would shadow the ``transitions`` library: keep bench/ off sys.path.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from sqlalchemy import Engine, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from config.settings import load_settings  # noqa: E402
from models import Case  # noqa: E402
from models.db import make_engine  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.cases.sweep import sweep  # noqa: E402

NOW = dt.datetime(2026, 11, 2, 9, 30, tzinfo=dt.UTC)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "recog_bench_sweep"


def seed(engine: Engine, n: int, due: int) -> None:
    """N cases with one reminder each; ``due`` of them due before NOW (set-based SQL)."""
    pg = engine.dialect.name == "postgresql"
    past, future = "2026-10-01 07:00:00", "2027-03-01 07:00:00"
    with engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO institutions (id, code, name, country, kind) VALUES "
                "(1, 'home.example', 'Home', 'DE', 'home'), "
                "(2, 'partner.example', 'Partner', 'FI', 'partner')"
            )
        )
        c.execute(
            text(
                "INSERT INTO students (id, institution_id, matriculation_number, name, "
                "email, preferred_language) VALUES (1, 1, '1', 'S', 's@example.org', "
                "'de')"
            )
        )
        c.execute(
            text(
                "INSERT INTO offerings (id, institution_id, code, term, title, ects, "
                "language, eqf_level, learning_outcomes, assessment_type, "
                "participation_mode, start_date, end_date, grading_scheme, status) "
                "VALUES (1, 2, 'C', 'T', 'Course', 5, 'en', 6, 'x', 'exam', 'online', "
                "'2026-01-01', '2026-03-01', 'fi', 'offered')"
            )
        )
        series = (
            "generate_series(1, :n) AS g(i)"
            if pg
            else "(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
            "WHERE i < :n) SELECT i FROM s) AS g"
        )
        ts = "::timestamptz" if pg else ""
        c.execute(
            text(
                f"INSERT INTO cases (id, institution_id, student_id, offering_id, state, version, "
                f"chain_head, due_at, due_kind, created_at, updated_at) "
                f"SELECT i, 1, 1, 1, 'in_review', 1, 'x', "
                f"CASE WHEN i <= :due THEN '{past}'{ts} ELSE '{future}'{ts} END, 'decision', "
                f"'{past}'{ts}, '{past}'{ts} FROM {series}"
            ),
            {"n": n, "due": due},
        )
        c.execute(
            text(
                f"INSERT INTO reminders (case_id, kind, due_at, action, recipient) "
                f"SELECT i, 'decision.remind80', "
                f"CASE WHEN i <= :due THEN '{past}'{ts} ELSE '{future}'{ts} END, 'notify', "
                f"'examiner' FROM {series}"
            ),
            {"n": n, "due": due},
        )
    if pg:
        # As a database that has been running: vacuumed (hint bits and visibility map set),
        # and the bulk load flushed now rather than while the sweeps are being timed.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
            c.execute(text("CHECKPOINT"))
    else:
        with engine.connect() as c:
            c.execute(text("ANALYZE"))
            c.commit()


def measure(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return elapsed, peak, out


def vacuum(engine: Engine) -> None:
    """Remove what the last rolled-back sweep left behind (PostgreSQL; untimed)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM reminders, outbox, cases"))


def one_sweep(engine: Engine, settings: Any, *, trace: bool) -> tuple[float, int, int]:
    """One sweep, rolled back. Time is taken without tracemalloc (it slows Python down
    several times); peak memory in a separate traced run."""
    vacuum(engine)
    with Session(engine) as s:
        s.begin()
        if trace:
            elapsed, peak, result = measure(lambda: sweep(s, now=NOW, settings=settings))
        else:
            gc.collect()
            t0 = time.perf_counter()
            result = sweep(s, now=NOW, settings=settings)
            elapsed, peak = time.perf_counter() - t0, 0
        s.rollback()
    return elapsed, peak, result.notifications


def naive_sweep(engine: Engine) -> tuple[float, int, int]:
    """Every case through the ORM, due ones picked in Python: time untraced, memory traced."""

    def run() -> int:
        with Session(engine) as s:
            return sum(1 for case in s.scalars(select(Case)) if case.due_at and case.due_at <= NOW)

    gc.collect()
    t0 = time.perf_counter()
    found = run()
    elapsed = time.perf_counter() - t0
    peak = measure(run)[1]
    return elapsed, peak, found


def fresh(kind: str, tmp: Path, tag: str) -> Engine:
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp / f'sweep-{tag}.sqlite3'}")
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}_{tag}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}_{tag}"')
    return make_engine(f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}_{tag}")


def drop(kind: str, engine: Engine, tag: str) -> None:
    engine.dispose()
    if kind == "postgresql":
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}_{tag}" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=1_000_000)
    ap.add_argument("--due", type=int, default=10_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    settings = load_settings(sweep_batch=max(args.due, 1))
    print(
        f"python {sys.version.split()[0]}, cores {os.cpu_count()}, load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"{args.cases:,} cases, {args.due:,} due"
    )
    print(
        f"{'engine':<11}{'cases':>11}{'sweep median':>15}{'peak KiB':>10}{'outbox':>8}"
        f"{'naive':>10}{'naive MiB':>11}{'speed-up':>10}"
    )
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for kind in args.engines.split(","):
            for n, naive in ((args.cases, not args.skip_naive), (args.cases // 10, False)):
                tag = f"{n}"
                engine = fresh(kind, tmp, tag)
                try:
                    upgrade(engine)
                    t0 = time.perf_counter()
                    seed(engine, n, args.due)
                    seeded = time.perf_counter() - t0
                    one_sweep(engine, settings, trace=False)  # warm the statement cache
                    runs = [one_sweep(engine, settings, trace=False) for _ in range(3)]
                    med = statistics.median(r[0] for r in runs)
                    peak = one_sweep(engine, settings, trace=True)[1] / 2**10
                    rows = runs[0][2]
                    line = f"{kind:<11}{n:>11,}{med * 1000:>12.1f} ms{peak:>10.0f}{rows:>8,}"
                    if naive:
                        nt, npeak, found = naive_sweep(engine)
                        assert found == args.due
                        line += f"{nt:>8.1f} s{npeak / 2**20:>11.0f}{nt / med:>9.0f}x"
                    print(line + f"   (seeded in {seeded:.1f} s)", flush=True)
                finally:
                    drop(kind, engine, tag)


if __name__ == "__main__":
    main()
