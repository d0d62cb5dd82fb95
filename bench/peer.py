"""The engine beside SpiffWorkflow 3.2 and bare ``transitions`` on the same nine-event lifecycle.

Method (../shared/reference/peer/README.md): nine external events per case (enrol,
pass_course, receive_transcript, submit, start_review, request_info, provide_info, recognize,
close), each one database transaction with commit: load the case (row lock on PostgreSQL),
apply the event, save, commit.

* spiff: SpiffWorkflow's documented default, the serialized workflow (spec and task tree) in a
  JSON column per case, ``BpmnWorkflowSerializer``; the READY user task named after the
  current state is completed with the event's data, then ``do_engine_steps``;
* recog: ``with transaction(factory) as s: fire(s, case_id, event, ...)``, the whole engine;
* bare: one static ``transitions.Machine``, a state column plus one audit row per event, on a
  plain DB-API connection: the floor of any engine on the same database.

Variants run interleaved in one process, their order rotated per round; events round-robin
over the round's cases. Per round: events/s and p50/p99 of one event; ratios are computed
within each round; the table shows medians (and ranges) over rounds. "CPU ms" is this
process's CPU time per event (without the database server's): on a shared machine it moves
less than wall time. Preparation (cases
opened, the transcript attached, the examiner assigned) is timed apart.

    .venv/bin/python bench/peer.py                          # 300 cases x 9 events, 5 rounds
    .venv/bin/python bench/peer.py --cases 100 --rounds 3   # a shorter run
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/transitions.py shares its name with the library: keep this folder off sys.path.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sqlite3  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from importlib.metadata import version  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
from SpiffWorkflow.bpmn import BpmnWorkflow  # noqa: E402
from SpiffWorkflow.bpmn.parser import BpmnParser  # noqa: E402
from SpiffWorkflow.bpmn.serializer import BpmnWorkflowSerializer  # noqa: E402
from SpiffWorkflow.util.task import TaskState  # noqa: E402
from transitions import Machine  # noqa: E402

from models.db import SQLITE_BUSY_TIMEOUT_MS, make_engine, session_factory, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.cases.casefile import assign_examiner, attach_document  # noqa: E402
from workflow.cases.documents import MemoryStore  # noqa: E402
from workflow.cases.engine import fire  # noqa: E402
from workflow.demo import MINIMAL_PDF, Network, create_case, seed_network  # noqa: E402

UTC = dt.UTC
BPMN = Path(
    os.environ.get(
        "RECOG_PEER_BPMN",
        _BENCH.parent.parent / "shared" / "reference" / "peer" / "recognition.bpmn",
    )
)
PG_DB = "recog_peer"
DEFAULT_PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
VARIANTS = ("spiff", "recog", "bare")
LABELS = {
    "spiff": "SpiffWorkflow 3.2 (serializer)",
    "recog": "Recog fire()",
    "bare": "bare transitions",
}
# event -> (state it starts from, state it leads to, the decision the BPMN gateway reads)
LIFECYCLE = (
    ("enrol", "planned", "enrolled"),
    ("pass_course", "enrolled", "course_passed"),
    ("receive_transcript", "course_passed", "transcript_received"),
    ("submit", "transcript_received", "submitted"),
    ("start_review", "submitted", "in_review"),
    ("request_info", "in_review", "info_requested"),
    ("provide_info", "info_requested", "in_review"),
    ("recognize", "in_review", "recognized"),
    ("close", "recognized", "closed"),
)
ROLE = {
    "enrol": "clerk",
    "pass_course": "clerk",
    "receive_transcript": "clerk",
    "submit": "student",
    "start_review": "clerk",
    "request_info": "examiner",
    "provide_info": "student",
    "recognize": "examiner",
    "close": "clerk",
}


def event_data(event: str, net: Network) -> dict[str, Any]:
    """The same payload for every variant (what Recog's guards ask for)."""
    return {
        "pass_course": {"grade": "27", "scheme": "it", "ects": "5.0"},
        "request_info": {"message": "Please send the syllabus with the weekly topics."},
        "provide_info": {"message": "The syllabus is attached."},
        "recognize": {"modules": net.modules[:1], "grade": "1.7"},
    }.get(event, {})


# --------------------------------------------------------------------------------------------
# Databases


class Target:
    def __init__(self, kind: str, url: str, raw: str, label: str) -> None:
        self.kind, self.url, self.raw, self.label = kind, url, raw, label

    def connect(self) -> Any:
        """A DB-API connection tuned as ``models.db`` tunes the engine's."""
        if self.kind == "sqlite":
            conn = sqlite3.connect(
                self.raw, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None
            )
            for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON"):
                conn.execute(f"PRAGMA {pragma}")
            return conn
        return psycopg.connect(self.raw)

    def begin(self, conn: Any) -> None:
        if self.kind == "sqlite":
            conn.execute("BEGIN IMMEDIATE")  # as the engine's sessions do

    def sql(self, text: str) -> str:
        """qmark text for sqlite3; psycopg's %s; FOR UPDATE only on PostgreSQL."""
        if self.kind == "sqlite":
            return text.replace(" FOR UPDATE", "")
        return text.replace("?", "%s")


def make_target(kind: str, scratch: Path, admin: str) -> Target:
    if kind == "sqlite":
        path = scratch / "peer.sqlite3"
        return Target("sqlite", f"sqlite:///{path}", str(path), f"SQLite {sqlite3.sqlite_version}")
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {PG_DB}")
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    raw = admin.rsplit("/", 1)[0] + f"/{PG_DB}"
    url = "postgresql+psycopg://" + raw.split("://", 1)[1]
    return Target("postgresql", url, raw, f"PostgreSQL {server.split()[0]}")


def drop_pg(admin: str) -> None:
    with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")


PEER_TABLES = (
    "CREATE TABLE peer_spiff (id integer PRIMARY KEY, state varchar(40) NOT NULL, "
    "workflow {json} NOT NULL)",
    "CREATE TABLE peer_bare (id integer PRIMARY KEY, state varchar(40) NOT NULL, "
    "version integer NOT NULL)",
    "CREATE TABLE peer_bare_events (case_id integer NOT NULL REFERENCES peer_bare (id), "
    "seq integer NOT NULL, event varchar(40) NOT NULL, from_state varchar(40) NOT NULL, "
    "to_state varchar(40) NOT NULL, at {instant} NOT NULL, data {json} NOT NULL, "
    "PRIMARY KEY (case_id, seq))",
)


# --------------------------------------------------------------------------------------------
# Preparation (timed apart)


def prepare(target: Target, cases: int, rounds: int) -> tuple[Network, dict[Any, list[int]]]:
    """Recog cases at ``planned`` with the transcript attached and the examiner assigned;
    SpiffWorkflow workflows and bare rows at ``planned``; one pool per (variant, round)."""
    engine = make_engine(target.url)
    upgrade(engine)
    factory = session_factory(engine)
    now = dt.datetime.now(UTC)
    with transaction(factory) as s:
        net = seed_network(s, today=now.date())
    store = MemoryStore()
    pools: dict[Any, list[int]] = {}
    for r in range(rounds):
        ids = []
        for start in range(0, cases, 20):
            with transaction(factory) as s:
                for i in range(start, min(start + 20, cases)):
                    n = r * cases + i
                    cid = create_case(
                        s,
                        net,
                        target="planned",
                        term="past",
                        matriculation=f"{7_000_000 + n}",
                        name=f"Peer Student {n}",
                        email=f"peer.{n}@student.example",
                        language="en",
                        partner=n % 3,
                        course=n,
                        store=store,
                    )
                    attach_document(
                        s,
                        cid,
                        content=MINIMAL_PDF,
                        filename="tor.pdf",
                        media_type="application/pdf",
                        kind="transcript",
                        store=store,
                        actor=net.clerk,
                        now=now,
                        channel="bench",
                    )
                    assign_examiner(
                        s, cid, net.examiner_username, actor=net.clerk, now=now, channel="bench"
                    )
                    ids.append(cid)
        pools[("recog", r)] = ids
    engine.dispose()

    parser = BpmnParser()
    parser.add_bpmn_file(str(BPMN))
    workflow = BpmnWorkflow(parser.get_spec("recognition"))
    workflow.do_engine_steps()
    fresh = BpmnWorkflowSerializer().serialize_json(workflow)
    conn = target.connect()
    kinds = (
        {"json": "text", "instant": "text"}
        if target.kind == "sqlite"
        else {"json": "jsonb", "instant": "timestamptz"}
    )
    target.begin(conn)
    for ddl in PEER_TABLES:
        conn.execute(ddl.format(**kinds))
    n = 0
    for r in range(rounds):
        for variant in ("spiff", "bare"):
            pools[(variant, r)] = list(range(n + 1, n + cases + 1))
            n += cases
        ins = "INSERT INTO peer_spiff (id, state, workflow) VALUES (?, 'planned', ?)"
        conn.cursor().executemany(target.sql(ins), [(i, fresh) for i in pools[("spiff", r)]])
        ins = "INSERT INTO peer_bare (id, state, version) VALUES (?, 'planned', 0)"
        conn.cursor().executemany(target.sql(ins), [(i,) for i in pools[("bare", r)]])
    conn.commit()
    if target.kind == "sqlite":
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    conn.close()
    return net, pools


# --------------------------------------------------------------------------------------------
# One event, three ways


class Refused(Exception):
    pass


class Spiff:
    def __init__(self, target: Target, net: Network) -> None:
        self.target, self.net = target, net
        self.conn = target.connect()
        self.serializer = BpmnWorkflowSerializer()
        self.load = target.sql("SELECT state, workflow FROM peer_spiff WHERE id = ? FOR UPDATE")
        self.save = target.sql("UPDATE peer_spiff SET state = ?, workflow = ? WHERE id = ?")

    def __call__(self, case_id: int, event: str, source: str, data: dict[str, Any]) -> None:
        conn, cur = self.conn, self.conn.cursor()
        self.target.begin(conn)
        try:
            cur.execute(self.load, (case_id,))
            state, stored = cur.fetchone()
            if state != source:
                raise Refused(f"{event} on {case_id}: it is {state}")
            if not isinstance(stored, str):  # jsonb comes back parsed
                stored = json.dumps(stored)
            workflow = self.serializer.deserialize_json(stored)
            task = next(
                t
                for t in workflow.get_tasks(state=TaskState.READY, manual=True)
                if t.task_spec.name == state
            )
            task.data.update(data, decision=event)
            task.run()
            workflow.do_engine_steps()
            ready = workflow.get_tasks(state=TaskState.READY, manual=True)
            new_state = ready[0].task_spec.name if ready else "closed"
            cur.execute(self.save, (new_state, self.serializer.serialize_json(workflow), case_id))
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()


class Bare:
    def __init__(self, target: Target, net: Network) -> None:
        self.target = target
        self.conn = target.connect()
        self.machine = Machine(
            model=None,
            states=sorted({s for _, a, b in LIFECYCLE for s in (a, b)}),
            transitions=[{"trigger": e, "source": a, "dest": b} for e, a, b in LIFECYCLE],
            initial="planned",
            auto_transitions=False,
        )
        self.load = target.sql("SELECT state, version FROM peer_bare WHERE id = ? FOR UPDATE")
        self.save = target.sql(
            "UPDATE peer_bare SET state = ?, version = ? WHERE id = ? AND version = ?"
        )
        self.audit = target.sql(
            "INSERT INTO peer_bare_events (case_id, seq, event, from_state, to_state, at, "
            "data) VALUES (?, ?, ?, ?, ?, ?, ?)"
        )

    def __call__(self, case_id: int, event: str, source: str, data: dict[str, Any]) -> None:
        conn, cur = self.conn, self.conn.cursor()
        self.target.begin(conn)
        try:
            cur.execute(self.load, (case_id,))
            state, ver = cur.fetchone()
            subject = _Subject(state)
            if not self.machine.events[event].trigger(subject):
                raise Refused(f"{event} on {case_id}: it is {state}")
            now = dt.datetime.now(UTC)
            at = now.isoformat() if self.target.kind == "sqlite" else now
            cur.execute(self.save, (subject.state, ver + 1, case_id, ver))
            cur.execute(
                self.audit,
                (case_id, ver + 1, event, state, subject.state, at, json.dumps(data)),
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise

    def close(self) -> None:
        self.conn.close()


class _Subject:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


class Recog:
    def __init__(self, target: Target, net: Network) -> None:
        self.engine = make_engine(target.url)
        self.factory = session_factory(self.engine)
        self.actors = {"clerk": net.clerk, "examiner": net.examiner}
        self.students: dict[int, Any] = {}
        self.net = net

    def student(self, case_id: int) -> Any:
        from models import Case, Role
        from workflow.policy.actors import Actor

        found = self.students.get(case_id)
        if found is None:
            with transaction(self.factory) as s:
                row = s.get(Case, case_id)
                assert row is not None
                found = self.students[case_id] = Actor(
                    role=Role.STUDENT,
                    id=row.student_id,
                    institution_id=row.institution_id,
                    label=f"student#{row.student_id}",
                )
        return found

    def __call__(self, case_id: int, event: str, source: str, data: dict[str, Any]) -> None:
        role = ROLE[event]
        if event == "close":
            # Recog closes a decision only when it is final: after the appeal window or the
            # student's waiver (docs/adr/0015-appeal-and-finality.md). The lifecycle's last
            # step, done at once, is the waiver here (it also tells the office: one more
            # outbox row than the peers' "close").
            event, role = "waive_appeal", "student"
        actor = self.students[case_id] if role == "student" else self.actors[role]
        now = dt.datetime.now(UTC)
        if event == "pass_course":
            data = {**data, "date": now.date().isoformat()}
        with transaction(self.factory) as session:
            fire(session, case_id, event, actor=actor, now=now, data=data, channel="bench")

    def close(self) -> None:
        self.engine.dispose()


# --------------------------------------------------------------------------------------------
# Rounds


def run_round(
    runner: Callable[[int, str, str, dict[str, Any]], None],
    ids: list[int],
    payloads: dict[str, dict[str, Any]],
) -> tuple[float, float, list[float]]:
    """All cases through the lifecycle, one event at a time round-robin; (events/s, CPU
    seconds of this process per event, latencies)."""
    latencies = []
    clock = time.perf_counter
    cpu0, t0 = time.process_time(), clock()
    for event, source, _ in LIFECYCLE:
        data = payloads[event]
        for cid in ids:
            t = clock()
            runner(cid, event, source, data)
            latencies.append(clock() - t)
    n = len(latencies)
    return n / (clock() - t0), (time.process_time() - cpu0) / n, latencies


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(target: Target, cases: int, rounds: int) -> None:
    t0 = time.perf_counter()
    net, pools = prepare(target, cases, rounds)
    print(
        f"\n{target.label}: {cases} cases x {len(LIFECYCLE)} events per variant and round, "
        f"{rounds} rounds [prepared in {time.perf_counter() - t0:.0f} s, not measured]"
    )
    runners = {"spiff": Spiff(target, net), "recog": Recog(target, net), "bare": Bare(target, net)}
    recog = runners["recog"]
    assert isinstance(recog, Recog)
    for r in range(rounds):
        for cid in pools[("recog", r)]:
            recog.student(cid)
    payloads = {event: event_data(event, net) for event, _, _ in LIFECYCLE}
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    p50: dict[str, list[float]] = {v: [] for v in VARIANTS}
    p99: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for r in range(rounds):
        order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
        for variant in order:
            rate, cpu_each, lat = run_round(runners[variant], pools[(variant, r)], payloads)
            rates[variant].append(rate)
            cpu[variant].append(cpu_each * 1000)
            p50[variant].append(pct(lat, 0.50) * 1000)
            p99[variant].append(pct(lat, 0.99) * 1000)
        for variant in VARIANTS:
            ratios[variant].append(rates[variant][-1] / rates["spiff"][-1])
    for runner in runners.values():
        runner.close()  # type: ignore[attr-defined]
    print(
        f"  {'variant':<32}{'events/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms':>8}"
        f"{'/spiff':>8}   rounds (events/s)"
    )
    for v in VARIANTS:
        each = " / ".join(f"{x:,.0f}" for x in rates[v])
        print(
            f"  {LABELS[v]:<32}{statistics.median(rates[v]):>10,.0f}"
            f"{statistics.median(p50[v]):>9.2f}{statistics.median(p99[v]):>9.2f}"
            f"{statistics.median(cpu[v]):>8.2f}{statistics.median(ratios[v]):>8.2f}   {each}"
        )
    spread = ratios["recog"]
    goal = 5.0 if target.kind == "sqlite" else 2.0
    met = "met" if statistics.median(spread) >= goal else "NOT met"
    p99_met = (
        "met" if statistics.median(p99["recog"]) <= statistics.median(p99["spiff"]) else "NOT met"
    )
    print(
        f"  recog/spiff median {statistics.median(spread):.2f} (range {min(spread):.2f}-"
        f"{max(spread):.2f}; goal >= {goal:.0f}: {met}); p99 no worse than SpiffWorkflow's: "
        f"{p99_met}; load average now {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=300, help="cases per variant and round")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--engines", default="sqlite,postgresql")
    ap.add_argument(
        "--pg-url",
        default=os.environ.get("RECOG_BENCH_PG_URL", DEFAULT_PG_ADMIN),
        help="libpq URL of a database from which to CREATE/DROP DATABASE " + PG_DB,
    )
    args = ap.parse_args()
    print(
        f"Python {sys.version.split()[0]}, SpiffWorkflow {version('SpiffWorkflow')}, "
        f"transitions {version('transitions')}, SQLAlchemy {version('sqlalchemy')}, "
        f"psycopg {version('psycopg')}; {os.cpu_count()} cores; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="recog-peer-"))
    try:
        for kind in args.engines.split(","):
            if kind == "postgresql":
                try:
                    target = make_target(kind, scratch, args.pg_url)
                except psycopg.OperationalError as exc:
                    print(f"\nPostgreSQL skipped: {exc}")
                    continue
                try:
                    bench(target, args.cases, args.rounds)
                finally:
                    drop_pg(args.pg_url)
            else:
                bench(make_target(kind, scratch, args.pg_url), args.cases, args.rounds)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
