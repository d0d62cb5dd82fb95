"""Case status reads through the API under concurrent load, beside the same read in SQL.

Run from the project root (prints, never asserts; needs PostgreSQL on 127.0.0.1 and wrk):

    .venv/bin/python bench/api.py [--cases 100000] [--connections 50] [--seconds 20]
                                  [--workers 2]

It seeds a PostgreSQL database with N cases (set-based, inside the database), starts the web
app as ``recog web`` does (uvicorn, the app factory) with W worker processes on 127.0.0.1,
and runs wrk: C connections for S seconds of ``GET /api/v1/cases/{random id}/status`` with an
API token (authentication, the scoped query and the JSON answer included). The floor is the
same scoped read through SQLAlchemy Core from one process, one connection, back to back.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# bench/transitions.py would shadow the ``transitions`` library: keep bench/ off sys.path.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from sqlalchemy import Engine, bindparam, select, text  # noqa: E402

from cli.webcmd import web_server_argv  # noqa: E402
from models import Case  # noqa: E402
from models.db import make_engine, session_factory, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.policy import auth  # noqa: E402

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_DB = "recog_bench_api"
NOW = dt.datetime.now(dt.UTC)

WRK_SCRIPT = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/api/v1/cases/" .. math.random(1, %d) .. "/status", {
    ["Authorization"] = "Bearer %s"})
end
"""
# Paced clients: each connection waits this long after an answer before its next poll.
WRK_DELAY = """
delay = function()
  return %d
end
"""


def fresh_database() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"


def seed(engine: Engine, n: int) -> str:
    """N cases of one home institution, a clerk and an API token (set-based SQL)."""
    past = "2026-10-01 07:00:00+00"
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
                "email, preferred_language) SELECT i, 1, i::text, 'S' || i, "
                "'s' || i || '@example.org', 'de' FROM generate_series(1, :n) i"
            ),
            {"n": n},
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
        c.execute(
            text(
                "INSERT INTO cases (id, institution_id, student_id, offering_id, state, version, "
                "chain_head, due_at, due_kind, created_at, updated_at) "
                "SELECT i, 1, i, 1, 'in_review', 1, 'x', "
                f"'{past}'::timestamptz + (i % 90) * interval '1 day', 'decision', "
                f"'{past}', '{past}' FROM generate_series(1, :n) i"
            ),
            {"n": n},
        )
        c.execute(
            text(
                "INSERT INTO users (id, institution_id, username, display_name, role, "
                "active, preferred_language) VALUES (1, 1, 'bench', 'Bench', 'clerk', "
                "true, 'en')"
            )
        )
        for table in ("institutions", "students", "offerings", "cases", "users"):
            c.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))"
                )
            )
        c.execute(text("ANALYZE"))
    with transaction(session_factory(engine)) as s:
        return auth.create_api_token(s, user_id=1, name="bench", now=NOW)[1]


def floor(engine: Engine, n: int, seconds: float) -> float:
    """Reads/s of the same scoped status read in SQLAlchemy Core, one process."""
    import random

    from models import Role
    from workflow.policy.actors import Actor, case_scope

    actor = Actor(role=Role.CLERK, id=1, institution_id=1)
    query = select(
        Case.id,
        Case.state,
        Case.version,
        Case.due_at,
        Case.due_kind,
        Case.appeal_ends_at,
        Case.updated_at,
    ).where(Case.id == bindparam("id"), case_scope(actor))
    rng = random.Random(1)
    done = 0
    with engine.connect() as conn:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            for _ in range(200):
                conn.execute(query, {"id": rng.randint(1, n)}).first()
            done += 200
            conn.rollback()
        elapsed = seconds + (time.perf_counter() - end)
    return done / elapsed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_wrk(url: str, token: str, n: int, connections: int, seconds: int, think_ms: int = 0) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % (n, token) + (WRK_DELAY % think_ms if think_ms else ""))
        script = fh.name
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(script)
    return out.stdout


def show(label: str, report: str) -> float:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", report).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", report)
    print(
        f"  {label}:\n    {rps:9,.0f} requests/s   p50 {latency_ms(report, '50'):6.2f} ms   "
        f"p99 {latency_ms(report, '99'):6.2f} ms"
        + (f"   non-2xx: {errors.group(1)}" if errors else "")
    )
    return rps


def latency_ms(report: str, pct: str) -> float:
    match = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", report, flags=re.M)
    if not match:
        return float("nan")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--rate",
        type=int,
        default=1000,
        help="paced run: the connections together poll at most this often "
        "per second (each waits connections/rate after an answer)",
    )
    args = parser.parse_args()

    url = fresh_database()
    engine = make_engine(url)
    upgrade(engine)
    t0 = time.perf_counter()
    token = seed(engine, args.cases)
    print(f"seeded {args.cases:,} cases on PostgreSQL in {time.perf_counter() - t0:.1f} s")

    floor_rps = floor(engine, args.cases, 5.0)

    port = free_port()
    env = {
        **os.environ,
        "RECOG_DATABASE_URL": url,
        "RECOG_DATA_DIR": tempfile.mkdtemp(),
        "RECOG_ENVIRONMENT": "production",
        # What production requires (config/settings.py): a strong key and the public address
        # (which also makes 127.0.0.1 the one host name the server answers to).
        "RECOG_SECRET_KEY": secrets.token_urlsafe(32),
        "RECOG_PUBLIC_URL": f"http://127.0.0.1:{port}",
    }
    server = subprocess.Popen(
        web_server_argv(port, workers=args.workers, extra=("--log-level", "warning")),
        env=env,
        cwd=_BENCH.parent,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("the server did not start") from None
                time.sleep(0.2)
        run_wrk(base, token, args.cases, args.connections, 3)  # warm up pools and caches
        report = run_wrk(base, token, args.cases, args.connections, args.seconds)
        think_ms = round(1000 * args.connections / args.rate)
        paced = run_wrk(base, token, args.cases, args.connections, args.seconds, think_ms)
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(
        f"\nGET /api/v1/cases/{{id}}/status, {args.connections} connections, "
        f"{args.seconds} s, uvicorn {args.workers} workers, wrk on the same 2 cores:"
    )
    rps = show("API, as fast as it answers", report)
    show(f"API, paced ({think_ms} ms between a client's polls)", paced)
    print(
        f"  floor  {floor_rps:9,.0f} reads/s      (the same scoped read, SQLAlchemy Core, "
        "1 process, 1 connection)"
    )
    print(f"  ratio  API / floor = {rps / floor_rps:.2f}")
    print("\nwrk reports:\n" + report + "\n" + paced)
    engine.dispose()


if __name__ == "__main__":
    main()
