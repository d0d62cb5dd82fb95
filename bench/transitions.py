"""Transitions per second through ``workflow.cases.engine.fire``, beside the raw-SQL floor.

Run from the project root (prints, never asserts; about 2-3 minutes with the defaults):

    .venv/bin/python bench/transitions.py [--cases N] [--cycles K] [--engines sqlite,postgresql]
                                          [--quick] [--profile] [--pg-url URL]

What is measured, on SQLite (file, WAL, the engine's own pragmas) and on PostgreSQL, with 1 and
2 processes (each process owns a disjoint set of cases; one transaction and one commit per
transition, as a request would):

* engine: ``with transaction(factory) as s: fire(s, case_id, event, ...)``: the whole engine
  (session, lock, guards, static machine, deadlines, hash chain, audit row, outbox row).
* floor:  the same statements through a plain DB-API cursor (sqlite3 / psycopg): select the
  case row (FOR UPDATE on PostgreSQL), update the case (state, version, chain_head,
  due_at/due_kind, updated_at) as a compare-and-swap on the version, insert one case_events
  row, insert one outbox row, commit. No hashing, no guards: the cost of the database alone.
* naive:  the floor plus a ``transitions.Machine`` built per case per transition (the
  anti-pattern the design forbids), to show what the machine-per-row costs.

Every variant runs the same lifecycle on fresh cases that start in ``submitted`` with an
examiner assigned: start_review, then K times request_info/provide_info, then recognize
(2K+2 transitions per case), round-robin over the process's cases. Engine cases are made by the
real driver (``workflow.demo.create_case``) before the clock starts; floor and naive cases are
copies of those rows (their audit rows carry dummy hashes; the database is scratch). Each
configuration runs 3 repetitions, the variants interleaved; the table shows the median
throughput (total transitions / wall time from a barrier-synchronised start to the last
finish), p50/p99 latency of one transition in that repetition, and the ratio to the floor
(the median of the per-repetition ratios, each against the floor run right beside it).

The scratch databases (a temporary SQLite file; PostgreSQL database ``recog_bench``) are
dropped at the end. ``--profile`` adds a cProfile of the engine's fire path per database.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is called transitions.py: keep its folder off sys.path, or ``import transitions``
# would import this script instead of the library. The project root goes first instead.
_BENCH = Path(__file__).resolve().parent
_ROOT = _BENCH.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_ROOT))

import argparse  # noqa: E402
import atexit  # noqa: E402
import cProfile  # noqa: E402
import datetime as dt  # noqa: E402
import io  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402
from array import array  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Any  # noqa: E402

_SCRATCH = Path(tempfile.mkdtemp(prefix="recog-bench-"))
os.environ.setdefault("RECOG_DATA_DIR", str(_SCRATCH / "var"))  # never the checkout's var/
_OWNER = os.getpid()


@atexit.register
def _remove_scratch() -> None:
    if os.getpid() == _OWNER:  # not in forked workers
        shutil.rmtree(_SCRATCH, ignore_errors=True)


import psycopg  # noqa: E402
import sqlalchemy  # noqa: E402
from sqlalchemy import event as sa_event  # noqa: E402
from sqlalchemy import select, text  # noqa: E402
from transitions import Machine  # noqa: E402

from config.procedure import get_procedure  # noqa: E402
from models import Case, Module, Role, case_targets  # noqa: E402
from models.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, session_factory, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.cases.casefile import assign_examiner  # noqa: E402
from workflow.cases.engine import fire  # noqa: E402
from workflow.demo import Network, create_case, event_data, seed_network  # noqa: E402
from workflow.policy.actors import Actor  # noqa: E402

REPS = 3
VARIANTS = ("floor", "naive", "engine")
LABELS = {
    "floor": "raw-SQL floor (DB-API cursor)",
    "naive": "naive: floor + Machine per transition",
    "engine": "engine: fire() in a session",
}
GOALS = {"sqlite": 1 / 3, "postgresql": 1.0}
REFERENCE = {
    ("sqlite", 1): "~12,000",
    ("sqlite", 2): "n/a",
    ("postgresql", 1): "~1,200",
    ("postgresql", 2): "~2,600",
}
PG_DB = "recog_bench"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
UTC = dt.UTC

# Floor payloads: fixed strings of the engine's sizes (a SHA-256 hex digest is 64 characters).
DUMMY_HASH = "f" * 64
EVENT_JSON = '{"message":"Please send the syllabus with the weekly topics."}'
# The role that fires each lifecycle event and the recipient of its (one) floor outbox row.
EVENT_ROLE = {
    "start_review": "clerk",
    "request_info": "examiner",
    "provide_info": "student",
    "recognize": "examiner",
}
EVENT_RECIPIENT = {
    "start_review": "examiner",
    "request_info": "student",
    "provide_info": "examiner",
    "recognize": "student",
}


def lifecycle(cycles: int) -> list[str]:
    return ["start_review", *["request_info", "provide_info"] * cycles, "recognize"]


# --------------------------------------------------------------------------------------------
# Databases


@dataclass
class Target:
    kind: str  # "sqlite" | "postgresql"
    url: str  # SQLAlchemy URL
    raw: str  # sqlite file path or libpq URL for the floor
    label: str
    version: str = ""


def sqlite_target() -> Target:
    path = _SCRATCH / "recog_bench.sqlite3"
    return Target(
        "sqlite", f"sqlite:///{path}", str(path), "SQLite (file, WAL)", sqlite3.sqlite_version
    )


def pg_target(admin: str) -> Target:
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    raw = admin.rsplit("/", 1)[0] + f"/{PG_DB}"
    return Target(
        "postgresql", "postgresql+psycopg://" + raw.split("://", 1)[1], raw, "PostgreSQL", version
    )


def drop_pg(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


def raw_connect(target: Target) -> Any:
    """A DB-API connection tuned as models.db tunes the engine's (WAL, busy timeout, ...)."""
    if target.kind == "sqlite":
        conn = sqlite3.connect(
            target.raw, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        for pragma in (
            "journal_mode=WAL",
            f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
            "synchronous=NORMAL",
            "foreign_keys=ON",
        ):
            conn.execute(f"PRAGMA {pragma}")
        return conn
    return psycopg.connect(target.raw)  # autocommit off: a transaction per transition


# --------------------------------------------------------------------------------------------
# Preparation (not measured)


@dataclass
class Pools:
    net: Network
    # (variant, processes, repetition, slot) -> [(case_id, student actor, targets)]
    cases: dict[tuple[str, int, int, int], list[tuple[int, Actor, list[str]]]]
    seconds: float
    created: int
    copied: int


def prepare(target: Target, n_cases: int, *, extra_groups: int) -> Pools:
    t0 = time.perf_counter()
    engine = make_engine(target.url)
    upgrade(engine)
    factory = session_factory(engine)
    now = dt.datetime.now(UTC)
    with transaction(factory) as s:
        net = seed_network(s, today=now.date())
    groups = [(p, r, slot) for p in (1, 2) for r in range(REPS) for slot in range(p)]
    wanted = n_cases * (len(groups) + extra_groups) + 1  # + the statement-count probe case
    ids: list[int] = []
    batch = 10
    for start in range(0, wanted, batch):
        with transaction(factory) as s:
            for i in range(start, min(start + batch, wanted)):
                cid = create_case(
                    s,
                    net,
                    target="submitted",
                    term="past",
                    matriculation=f"{8_000_000 + i}",
                    name=f"Bench Student {i}",
                    email=f"bench.{i}@student.example",
                    language="en",
                    partner=i % 3,
                    course=i,
                )
                assign_examiner(
                    s,
                    cid,
                    net.examiner_username,
                    actor=net.clerk,
                    now=dt.datetime.now(UTC),
                    channel="bench",
                )
                ids.append(cid)
    # Floor and naive cases: copies of the prepared rows (two per engine case).
    columns = ", ".join(c.name for c in Case.__table__.columns if c.name != "id")
    engine_ids = ids[: n_cases * len(groups)]
    with engine.begin() as conn:
        top = conn.execute(text("SELECT max(id) FROM cases")).scalar_one()
        conn.execute(
            text(f"INSERT INTO cases ({columns}) SELECT {columns} FROM cases WHERE id = :tid"),
            [{"tid": t} for t in engine_ids * 2],
        )
        copies = list(
            conn.execute(
                text("SELECT id FROM cases WHERE id > :top ORDER BY id"), {"top": top}
            ).scalars()
        )
        rows = conn.execute(select(Case.id, Case.student_id, Case.institution_id)).all()
        targets: dict[int, list[str]] = {}
        for cid, code in conn.execute(
            select(case_targets.c.case_id, Module.code).join(
                Module, Module.id == case_targets.c.module_id
            )
        ):
            targets.setdefault(cid, []).append(code)
    students = {
        r.id: Actor(
            role=Role.STUDENT,
            id=r.student_id,
            institution_id=r.institution_id,
            label=f"student#{r.student_id}",
        )
        for r in rows
    }
    engine.dispose()
    # SQLite: fold the WAL back into the file; PostgreSQL: fresh planner statistics.
    raw = raw_connect(target)
    if target.kind == "sqlite":
        raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        raw.autocommit = True
        raw.execute("VACUUM ANALYZE")
    raw.close()

    def info(cid: int, template: int) -> tuple[int, Actor, list[str]]:
        return cid, students[cid], targets.get(template, [])

    pools: dict[tuple[str, int, int, int], list[tuple[int, Actor, list[str]]]] = {}
    engine_iter, copy_iter = iter(engine_ids), iter(zip(copies, engine_ids * 2, strict=True))
    for p, r, slot in groups:
        pools[("engine", p, r, slot)] = [
            info(c, c) for c in (next(engine_iter) for _ in range(n_cases))
        ]
        for variant in ("floor", "naive"):
            pools[(variant, p, r, slot)] = [
                info(c, t) for c, t in (next(copy_iter) for _ in range(n_cases))
            ]
    pools[("probe", 1, 0, 0)] = [info(ids[-1], ids[-1])]
    for g in range(extra_groups):
        pools[("profile", 1, g, 0)] = [
            info(c, c)
            for c in ids[len(engine_ids) + g * n_cases : len(engine_ids) + (g + 1) * n_cases]
        ]
    return Pools(net, pools, time.perf_counter() - t0, len(ids), len(copies))


# --------------------------------------------------------------------------------------------
# One transition, three ways


def machine_spec() -> dict[str, Any]:
    proc = get_procedure()
    return {
        "states": list(proc.states),
        "transitions": [
            {"trigger": ev.name, "source": list(ev.sources), "dest": ev.dest}
            for ev in proc.events.values()
        ],
        "auto_transitions": False,
        "send_event": False,
    }


class _Model:
    """A fresh object per transition for the naive variant (the Machine decorates it)."""

    state: str


class _Subject:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def _deadline(proc: Any, state: str, now: dt.datetime) -> tuple[dt.datetime | None, str | None]:
    kind = proc.states[state].deadline
    return (now + dt.timedelta(days=14), kind) if kind else (None, None)


class Floor:
    """The raw statements of one transition on one DB-API connection."""

    def __init__(self, target: Target, net: Network, naive: bool) -> None:
        self.conn = raw_connect(target)
        self.actor_ids = {"clerk": net.clerk.id, "examiner": net.examiner.id}
        self.sqlite = target.kind == "sqlite"
        self.naive = naive
        self.spec = machine_spec() if naive else {}
        self.proc = get_procedure()
        ph = "?" if self.sqlite else "%s"
        cols = (
            "id, institution_id, student_id, programme_id, examiner_id, state, version, "
            "chain_head, due_at, due_kind"
        )
        self.sel = f"SELECT {cols} FROM cases WHERE id = {ph}" + (
            "" if self.sqlite else " FOR UPDATE"
        )
        self.upd = (
            f"UPDATE cases SET state = {ph}, version = {ph}, chain_head = {ph}, "
            f"due_at = {ph}, due_kind = {ph}, updated_at = {ph} "
            f"WHERE id = {ph} AND version = {ph}"
        )
        self.ins_event = (
            "INSERT INTO case_events (case_id, seq, event, from_state, to_state, "
            "actor_role, actor_id, channel, at, data, data_digest, prev_hash, "
            f"hash) VALUES ({', '.join([ph] * 13)})"
        )
        self.ins_outbox = (
            "INSERT INTO outbox (dedup_key, case_id, event_seq, channel, "
            "recipient, template, payload, status, attempts, available_at, "
            f"created_at) VALUES ({', '.join([ph] * 11)})"
        )

    def _ts(self, value: dt.datetime | None) -> Any:
        if value is None or not self.sqlite:
            return value
        return value.replace(tzinfo=None).isoformat(" ")  # naive UTC, as UTCDateTime stores

    def __call__(self, case_id: int, event: str, actor_id: int | None) -> None:
        cur = self.conn.cursor()
        if self.sqlite:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(self.sel, (case_id,))
        row = cur.fetchone()
        from_state, version, prev = row[5], row[6], row[7]
        if self.naive:
            model = _Model()
            machine = Machine(model=model, initial=from_state, **self.spec)
            machine.events[event].trigger(model)
            to_state = model.state
        else:
            to_state = self.proc.events[event].dest
        now = dt.datetime.now(UTC)
        due_at, due_kind = _deadline(self.proc, to_state, now)
        seq = version + 1
        ts = self._ts(now)
        cur.execute(
            self.upd, (to_state, seq, DUMMY_HASH, self._ts(due_at), due_kind, ts, case_id, version)
        )
        if cur.rowcount != 1:
            raise RuntimeError(f"floor: case {case_id} changed under us")
        cur.execute(
            self.ins_event,
            (
                case_id,
                seq,
                event,
                from_state,
                to_state,
                EVENT_ROLE[event],
                actor_id,
                "bench",
                ts,
                EVENT_JSON,
                DUMMY_HASH,
                prev,
                DUMMY_HASH,
            ),
        )
        recipient = EVENT_RECIPIENT[event]
        cur.execute(
            self.ins_outbox,
            (
                f"case:{case_id}:{seq}:email:{recipient}",
                case_id,
                seq,
                "email",
                recipient,
                event,
                f'{{"case_id":{case_id},"seq":{seq},"event":"{event}","state":"{to_state}"}}',
                "pending",
                0,
                ts,
                ts,
            ),
        )
        if self.sqlite:
            cur.execute("COMMIT")
        else:
            self.conn.commit()

    def close(self) -> None:
        self.conn.close()


class EngineRunner:
    def __init__(self, target: Target, net: Network) -> None:
        self.engine = make_engine(target.url)
        self.factory = session_factory(self.engine)
        self.net = net
        self.proc = get_procedure()

    def plan(
        self,
        cases: list[tuple[int, Actor, list[str]]],
        events: list[str],
    ) -> dict[tuple[int, str], tuple[Actor, dict[str, Any]]]:
        actors = {
            "start_review": self.net.clerk,
            "request_info": self.net.examiner,
            "recognize": self.net.examiner,
        }
        return {
            (cid, ev): (
                actors.get(ev) or student,
                event_data(self.proc.events[ev], self.net, targets),
            )
            for cid, student, targets in cases
            for ev in set(events)
        }

    def __call__(self, case_id: int, event: str, actor: Actor, data: dict[str, Any]) -> None:
        with transaction(self.factory) as session:
            fire(
                session,
                case_id,
                event,
                actor=actor,
                now=dt.datetime.now(UTC),
                data=data,
                channel="bench",
            )

    def close(self) -> None:
        self.engine.dispose()


def run_variant(
    variant: str,
    runner: Any,
    cases: list[tuple[int, Actor, list[str]]],
    events: list[str],
    barrier: Any = None,
) -> tuple[float, float, array[float]]:
    """Run the lifecycle round-robin over ``cases``; (start, end, latencies in seconds)."""
    lat: array[float] = array("d")
    clock = time.perf_counter
    if variant == "engine":
        plan = runner.plan(cases, events)
        steps = [(cid, ev, *plan[cid, ev]) for ev in events for cid, _, _ in cases]
        if barrier is not None:
            barrier.wait()
        t0 = clock()
        for cid, ev, actor, data in steps:
            t = clock()
            runner(cid, ev, actor, data)
            lat.append(clock() - t)
    else:
        steps2 = [
            (cid, ev, runner.actor_ids.get(EVENT_ROLE[ev], student.id))
            for ev in events
            for cid, student, _ in cases
        ]
        if barrier is not None:
            barrier.wait()
        t0 = clock()
        for cid, ev, aid in steps2:
            t = clock()
            runner(cid, ev, aid)
            lat.append(clock() - t)
    return t0, clock(), lat


def _worker(pipe: Any, barrier: Any, target: Target, net: Network) -> None:
    runners: dict[str, Any] = {
        "engine": EngineRunner(target, net),
        "floor": Floor(target, net, naive=False),
        "naive": Floor(target, net, naive=True),
    }
    try:
        while True:
            task = pipe.recv()
            if task is None:
                break
            variant, cases, events = task
            try:
                t0, t1, lat = run_variant(variant, runners[variant], cases, events, barrier)
                pipe.send((t0, t1, lat.tobytes(), None))
            except Exception as exc:  # report, do not hang the parent on the barrier
                barrier.abort()
                pipe.send((0.0, 0.0, b"", f"{type(exc).__name__}: {exc}"))
    finally:
        for r in runners.values():
            r.close()


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass
class RepResult:
    tps: float
    p50_ms: float
    p99_ms: float


def summarise(results: list[tuple[float, float, bytes, str | None]]) -> RepResult:
    errors = [r[3] for r in results if r[3]]
    if errors:
        raise RuntimeError("; ".join(e for e in errors if e))
    lat: array[float] = array("d")
    for r in results:
        lat.frombytes(r[2])
    wall = max(r[1] for r in results) - min(r[0] for r in results)
    ordered = sorted(lat)
    return RepResult(
        len(lat) / wall,
        ordered[len(ordered) // 2] * 1e3,
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
    )


def median_rep(reps: list[RepResult]) -> RepResult:
    return sorted(reps, key=lambda r: r.tps)[len(reps) // 2]


def run_config(
    target: Target,
    pools: Pools,
    processes: int,
    events: list[str],
) -> dict[str, list[RepResult]]:
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(processes)
    workers = []
    for _slot in range(processes):
        parent_end, child_end = ctx.Pipe()
        proc = ctx.Process(
            target=_worker, args=(child_end, barrier, target, pools.net), daemon=True
        )
        proc.start()
        workers.append((proc, parent_end))
    out: dict[str, list[RepResult]] = {v: [] for v in VARIANTS}
    try:
        for rep in range(REPS):
            for variant in VARIANTS:  # interleaved, so drift hits every variant alike
                for slot, (_, pipe) in enumerate(workers):
                    pipe.send((variant, pools.cases[(variant, processes, rep, slot)], events))
                out[variant].append(summarise([pipe.recv() for _, pipe in workers]))
    finally:
        for _proc, pipe in workers:
            pipe.send(None)
        for proc, _ in workers:
            proc.join(30)
    return out


def print_table(
    target: Target, processes: int, n_cases: int, events: list[str], out: dict[str, list[RepResult]]
) -> None:
    def ratio(variant: str) -> float:
        # Per repetition, against the floor measured right next to it, then the median: on a
        # shared machine the load drifts between repetitions more than between neighbours.
        return statistics.median(
            v.tps / f.tps for v, f in zip(out[variant], out["floor"], strict=True)
        )

    per_run = n_cases * len(events)
    print(
        f"\n{target.label} {target.version}, {processes} process{'es' * (processes > 1)}: "
        f"{per_run} transitions per process per repetition ({n_cases} cases x "
        f"{len(events)} events)"
    )
    print(
        f"  {'variant':<40}{'trans/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'/floor':>8}"
        f"   repetitions (trans/s)"
    )
    for variant in VARIANTS:
        med = median_rep(out[variant])
        reps = " / ".join(f"{r.tps:,.0f}" for r in out[variant])
        print(
            f"  {LABELS[variant]:<40}{med.tps:>9,.0f}{med.p50_ms:>9.3f}{med.p99_ms:>9.3f}"
            f"{ratio(variant):>8.2f}   {reps}"
        )
    goal = GOALS[target.kind]
    print(
        f"  engine/floor = {ratio('engine'):.2f} (goal >= {goal:.2f}: "
        f"{'met' if ratio('engine') >= goal else 'NOT met'}); issue's reference floor: "
        f"{REFERENCE[(target.kind, processes)]} trans/s; load average now "
        f"{os.getloadavg()[0]:.2f}"
    )


# --------------------------------------------------------------------------------------------
# Pure machine cost


def machine_micro(quick: bool) -> None:
    proc = get_procedure()
    spec = machine_spec()
    request, provide = proc.machine.events["request_info"], proc.machine.events["provide_info"]
    subject = _Subject("in_review")

    def static_pair() -> None:
        request.trigger(subject)
        provide.trigger(subject)

    def per_case() -> None:
        model = _Model()
        machine = Machine(model=model, initial="in_review", **spec)
        machine.events["request_info"].trigger(model)

    n_static, n_naive = (2_000, 200) if quick else (20_000, 2_000)
    static_us = statistics.median(
        t / (2 * n_static) * 1e6 for t in timeit.repeat(static_pair, number=n_static, repeat=5)
    )
    naive_us = statistics.median(
        t / n_naive * 1e6 for t in timeit.repeat(per_case, number=n_naive, repeat=5)
    )
    print("\nPure machine cost per event (timeit, median of 5):")
    print(f"  static machine: machine.events[name].trigger(obj)   {static_us:8.1f} us")
    print(
        f"  Machine per case: construct + trigger               {naive_us:8.1f} us"
        f"   ({naive_us / static_us:.0f}x)"
    )


# --------------------------------------------------------------------------------------------
# Profile (--profile)


class StatementCounter:
    """Counts what the engine sends: statements through SQLAlchemy, by verb and table, and the
    pool's pre-ping queries (which do not pass through SQLAlchemy's execute events)."""

    def __init__(self, engine: sqlalchemy.Engine) -> None:
        self.kinds: Counter[str] = Counter()
        self.pings = 0
        sa_event.listen(engine, "before_cursor_execute", self._on_execute)
        ping = engine.dialect.do_ping

        def counting_ping(conn: Any) -> bool:
            self.pings += 1
            return ping(conn)

        engine.dialect.do_ping = counting_ping  # type: ignore[method-assign,assignment]

    def _on_execute(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        found = re.match(
            r"\s*(BEGIN \w+|INSERT INTO \w+|UPDATE \w+|DELETE FROM \w+|"
            r"SELECT\s.*?\sFROM\s+\w+|\w+)",
            statement,
            re.S,
        )
        kind = found.group(1) if found else statement[:20]
        if kind.startswith("SELECT") and kind != "SELECT":
            kind = "SELECT " + kind.split()[-1]
        self.kinds[kind.replace("INSERT INTO", "INSERT").replace("DELETE FROM", "DELETE")] += 1

    def reset(self) -> None:
        self.kinds.clear()
        self.pings = 0

    def summary(self, n: int) -> str:
        total = sum(self.kinds.values())
        parts = ", ".join(
            f"{k}" + (f" x{v / n:.2g}" if v != n else "") for k, v in self.kinds.items()
        )
        return (
            f"{total / n:.2f} statements per transition ({parts}) + COMMIT; "
            f"pool pre-ping queries per transition: {self.pings / n:.2f}"
        )


def count_statements(target: Target, pools: Pools, events: list[str]) -> None:
    runner = EngineRunner(target, pools.net)
    counter = StatementCounter(runner.engine)
    _, _, lat = run_variant("engine", runner, pools.cases[("probe", 1, 0, 0)], events)
    runner.close()
    floor = "BEGIN IMMEDIATE, " if target.kind == "sqlite" else "BEGIN, "
    print(f"  engine sends: {counter.summary(len(lat))}")
    print(
        f"  floor sends:  {floor}SELECT cases, UPDATE cases, INSERT case_events, "
        "INSERT outbox, COMMIT"
    )


def _cum(stats: pstats.Stats, file_end: str, *funcs: str, line: int | None = None) -> float:
    """Cumulative seconds of the functions ``funcs`` defined in a file ending ``file_end``."""
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    return float(
        sum(
            v[3]
            for (f, ln, fn), v in raw.items()
            if f.endswith(file_end) and fn in funcs and (line is None or ln == line)
        )
    )


def profile_engine(target: Target, pools: Pools, events: list[str]) -> None:
    """cProfile of the fire path in this process, with a breakdown and statement counts."""
    from workflow.cases.guards import GUARDS

    runner = EngineRunner(target, pools.net)
    counter = StatementCounter(runner.engine)
    warm, measured = pools.cases[("profile", 1, 0, 0)], pools.cases[("profile", 1, 1, 0)]
    run_variant("engine", runner, warm, events)  # warm the statement caches
    cpu0 = time.process_time()
    _, _, plain = run_variant("engine", runner, measured[: len(measured) // 2], events)
    cpu_plain = (time.process_time() - cpu0) / len(plain)
    counter.reset()
    # CPU time, not wall time: on a shared machine, time spent descheduled would otherwise be
    # charged to whatever function happened to run. Waiting for the server is not CPU time.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    _, _, lat = run_variant("engine", runner, measured[len(measured) // 2 :], events)
    profiler.disable()
    runner.close()
    n = len(lat)
    stats = pstats.Stats(profiler)
    total = _cum(stats, "bench/transitions.py", "__call__")
    sqlite = target.kind == "sqlite"
    driver = (
        _cum(
            stats,
            "~",
            "<method 'execute' of 'sqlite3.Cursor' objects>",
            "<method 'commit' of 'sqlite3.Connection' objects>",
        )
        if sqlite
        else _cum(stats, "psycopg/cursor.py", "execute")
        + _cum(stats, "psycopg/connection.py", "commit")
    )
    fire_t = _cum(stats, "workflow/cases/engine.py", "fire")
    rows = [
        ("whole transition (session, fire, commit)", total),
        ("  fire()", fire_t),
        ("    _load: build + run the SELECT", _cum(stats, "workflow/cases/engine.py", "_load")),
        ("    guards", _cum(stats, "workflow/cases/guards.py", *GUARDS)),
        (
            "    static machine trigger",
            _cum(stats, "transitions/core.py", "trigger", line=_event_trigger_line()),
        ),
        ("    next_clocks", _cum(stats, "workflow/cases/deadlines.py", "next_clocks")),
        (
            "    _append: hash + all writes",
            _cum(stats, "workflow/cases/engine.py", "_append"),
        ),
        (
            "      of which _replan (reminder rows)",
            _cum(stats, "workflow/cases/engine.py", "_replan"),
        ),
        (
            "      of which building .values() statements",
            _cum(stats, "sqlalchemy/sql/dml.py", "values"),
        ),
        ("  Session: begin/commit/close around fire", total - fire_t),
        ("all Session.execute calls", _cum(stats, "sqlalchemy/orm/session.py", "execute")),
        ("CPU inside the DB driver (execute+commit)", driver),
    ]
    print(
        f"\nProfile of the engine on {target.label}, 1 process (this one). Without the "
        f"profiler: {1e3 * sum(plain) / len(plain):.2f} ms wall, {1e3 * cpu_plain:.2f} ms CPU "
        f"per transition; then {n} transitions under cProfile (CPU time):"
    )
    print(f"  sent: {counter.summary(n)}")
    print(f"  {'where the CPU time goes (cumulative)':<48}{'ms/trans':>9}{'share':>7}")
    for label, seconds in rows:
        print(f"  {label:<48}{1e3 * seconds / n:>9.3f}{seconds / total:>7.0%}")
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(18)
    keep = [
        ln
        for ln in buf.getvalue().splitlines()
        if ln.strip() and not ln.startswith(("   Ordered", "   List reduced"))
    ]
    print("  top functions by own time:")
    print("\n".join("  " + ln for ln in keep[1:]))


def _event_trigger_line() -> int:
    from transitions.core import Event

    return Event.trigger.__code__.co_firstlineno


# --------------------------------------------------------------------------------------------


def machine_info(targets: list[Target]) -> None:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("Recog transition benchmark")
    print(
        f"  python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}, {cores} cores usable ({os.cpu_count()} "
        f"online), {cpu}"
    )
    print(
        f"  sqlite {sqlite3.sqlite_version}, transitions {version('transitions')}, "
        f"SQLAlchemy {sqlalchemy.__version__}, psycopg {psycopg.__version__}"
    )
    load = os.getloadavg()
    print(
        f"  load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (the machine may "
        "be shared; see the per-table load)"
    )
    for t in targets:
        if t.kind == "postgresql":
            print(f"  PostgreSQL {t.version} at {t.raw.split('@')[-1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cases",
        type=int,
        default=None,
        help="cases per process and repetition (default 20; --quick: 6)",
    )
    parser.add_argument(
        "--cycles",
        type=int,
        default=None,
        help="request_info/provide_info pairs per case (default 8; --quick: 3)",
    )
    parser.add_argument(
        "--engines", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql"
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also print a cProfile of the engine's fire path per database",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("RECOG_BENCH_PG_URL", DEFAULT_PG_ADMIN),
        help=f"libpq URL of a database to connect to for CREATE/DROP "
        f"DATABASE {PG_DB} (default {DEFAULT_PG_ADMIN})",
    )
    args = parser.parse_args()
    n_cases = args.cases or (6 if args.quick else 20)
    cycles = args.cycles if args.cycles is not None else (3 if args.quick else 8)
    kinds = [k.strip() for k in args.engines.split(",") if k.strip()]
    unknown = set(kinds) - {"sqlite", "postgresql"}
    if unknown:
        parser.error(f"unknown engine(s) {', '.join(sorted(unknown))}; use sqlite,postgresql")
    events = lifecycle(cycles)
    started = time.perf_counter()
    targets: list[Target] = []
    try:
        for kind in kinds:
            if kind == "sqlite":
                targets.append(sqlite_target())
                continue
            try:
                targets.append(pg_target(args.pg_url))
            except psycopg.OperationalError as exc:
                print(f"PostgreSQL not reachable at {args.pg_url} ({exc}); skipped")
        machine_info(targets)
        print(f"  command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(
            f"  lifecycle per case: start_review, {cycles} x (request_info, provide_info), "
            f"recognize = {len(events)} transitions; {REPS} repetitions, median shown"
        )
        machine_micro(args.quick)
        for target in targets:
            pools = prepare(target, n_cases, extra_groups=2 if args.profile else 0)
            print(
                f"\n[{target.label}: prepared {pools.created} cases through create_case and "
                f"{pools.copied} row copies in {pools.seconds:.0f} s (not measured)]"
            )
            count_statements(target, pools, events)
            for processes in (1, 2):
                out = run_config(target, pools, processes, events)
                print_table(target, processes, n_cases, events, out)
            if args.profile:
                profile_engine(target, pools, events)
    finally:
        for target in targets:
            if target.kind == "postgresql":
                try:
                    drop_pg(args.pg_url)
                except psycopg.Error as exc:
                    print(f"could not drop the scratch database {PG_DB}: {exc}")
    print(f"\ntotal time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
