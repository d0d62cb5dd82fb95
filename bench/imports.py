"""Bulk work, each figure beside a simple baseline measured in the same run (printed, never
asserted):

* importing a generated ELMO v1.7 file of 10,000 results (parse, validate, match, store the
  results for a clerk) beside ``lxml.etree.parse`` of the same file alone: time and peak
  memory (tracemalloc, in a separate run from the timing: it slows Python down); and beside
  the floor of any streamed, validated read: ``iterparse`` with the import's schema and parser
  options, in which libxml2 checks every element and none reaches Python;
* a cohort decision over 1,000 cases (``workflow.decisions.cohort.decide``: one transaction,
  set-based writes) beside 1,000 separate ``fire`` calls, each in its own transaction, as
  1,000 clicks would be; on SQLite and PostgreSQL.

    .venv/bin/python bench/imports.py [--results N] [--cohort N] [--engines sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# bench/transitions.py would shadow the ``transitions`` library: keep bench/ off sys.path.
_BENCH = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _BENCH]
sys.path.insert(0, str(_BENCH.parent))

from lxml import etree  # noqa: E402
from sqlalchemy import Engine, select  # noqa: E402

from models import Case  # noqa: E402
from models.db import make_engine, session_factory, transaction  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from workflow.cases.documents import MemoryStore  # noqa: E402
from workflow.cases.engine import fire  # noqa: E402
from workflow.decisions import cohort  # noqa: E402
from workflow.demo import create_case, seed_network  # noqa: E402
from workflow.transcripts.elmo import (  # noqa: E402
    _CHUNK,
    _PARSER_OPTIONS,
    _schema,
    detect_version,
)
from workflow.transcripts.importing import import_transcript  # noqa: E402

NS = "https://github.com/emrex-eu/elmo-schemas/tree/v1"
NOW = dt.datetime(2027, 1, 10, 12, 0, tzinfo=dt.UTC)
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def write_elmo(path: Path, count: int) -> None:
    course = (
        '<learningOpportunitySpecification><identifier type="local">C{i:05d}</identifier>'
        '<title xml:lang="en">Course {i}</title><type>Course</type><specifies>'
        "<learningOpportunityInstance><date>2024-01-15</date><status>passed</status>"
        "<gradingSchemeLocalId>1-5</gradingSchemeLocalId><resultLabel>{g}</resultLabel>"
        "<credit><scheme>ects</scheme><value>5</value></credit>"
        "</learningOpportunityInstance></specifies></learningOpportunitySpecification>\n"
    )
    with path.open("w", encoding="utf-8") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<elmo xmlns="{NS}">\n'
            "<generatedDate>2024-02-01T09:30:00Z</generatedDate>\n<learner>"
            '<citizenship>FI</citizenship><identifier type="esi">urn:schac:'
            "personalUniqueCode:int:esi:helsinki.fi:123</identifier><givenNames>Aino"
            "</givenNames><familyName>Virtanen</familyName><bday>2001-02-03</bday>"
            '</learner>\n<report>\n<issuer><country>FI</country><identifier type="schac">'
            'tdu.fi</identifier><title xml:lang="en">Tampere Digital University</title>'
            "<url>https://tdu.example</url>"
            "</issuer>\n"
        )
        for i in range(count):
            out.write(course.format(i=i, g=1 + i % 5))
        out.write(
            "<issueDate>2024-02-01T09:30:00+02:00</issueDate>\n<gradingScheme "
            'localId="1-5"><description xml:lang="en">1 to 5</description>'
            "</gradingScheme>\n</report>\n</elmo>\n"
        )


def timed(fn: Callable[[], Any]) -> float:
    gc.collect()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _rss(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith(field))
    return int(line.split()[1])  # kB


def _child_rss(kind: str, args: tuple[Any, ...], out: Any) -> None:
    gc.collect()
    before = _rss("VmRSS:")
    with open("/proc/self/clear_refs", "w") as refs:  # reset the peak (VmHWM) to now
        refs.write("5")
    if kind == "bare":
        etree.parse(str(args[0]))
    else:
        _import_once(*args)
    out.put((_rss("VmHWM:") - before) / 1024)


def peak(kind: str, *args: Any) -> float:
    """Peak RSS growth in MiB of one run in a fresh process (tracemalloc cannot see the
    memory lxml allocates in C, so it would flatter the bare parse)."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_child_rss, args=(kind, args, out))
    proc.start()
    value = float(out.get(timeout=600))
    proc.join()
    return value


def _import_once(template: Path, tmp: Path, path: Path, results: int) -> None:
    copy = tmp / "run.sqlite3"
    shutil.copy(template, copy)
    eng = make_engine(f"sqlite:///{copy}")
    with session_factory(eng)() as s, s.begin():
        report = import_transcript(s, path, store=MemoryStore(), now=NOW)
        assert len(report.results) == results
        s.rollback()
    eng.dispose()


def bench_import(tmp: Path, results: int) -> None:
    path = tmp / "big.xml"
    write_elmo(path, results)
    template = tmp / "import.sqlite3"
    engine = make_engine(f"sqlite:///{template}")
    upgrade(engine)
    with transaction(session_factory(engine)) as s:
        seed_network(s, today=NOW.date())
    engine.dispose()

    def run_import() -> None:
        _import_once(template, tmp, path, results)

    def bare() -> None:
        etree.parse(str(path))

    schema = _schema(detect_version(path))

    def validated() -> None:
        """The floor of a streamed, validated read: the import's own parser options and
        schema, every element checked by libxml2, none handed to Python."""
        with path.open("rb") as stream:
            for _ in etree.iterparse(
                stream,
                events=("end",),
                tag="nothing",
                schema=schema,
                chunk_size=_CHUNK,
                **_PARSER_OPTIONS,
            ):
                pass  # pragma: no cover - the tag matches no element

    runs = [(timed(run_import), timed(bare), timed(validated)) for _ in range(3)]
    t_imp, t_bare = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    t_valid = statistics.median(r[2] for r in runs)
    m_imp, m_bare = peak("import", template, tmp, path, results), peak("bare", path)
    size = path.stat().st_size / 2**20
    print(f"ELMO import of {results:,} results ({size:.1f} MiB), median of 3:")
    print(f"  lxml.etree.parse alone   {t_bare:8.2f} s   RSS +{m_bare:6.1f} MiB")
    print(
        f"  streamed schema check    {t_valid:8.2f} s                   "
        f"({t_valid / t_bare:.1f}x: iterparse with the schema, no element read)"
    )
    print(
        f"  recog transcript import  {t_imp:8.2f} s   RSS +{m_imp:6.1f} MiB   "
        f"({t_imp / t_bare:.1f}x the bare parse)"
    )


def make_db(kind: str, tmp: Path, size: int) -> tuple[Engine, Any, list[int]]:
    if kind == "sqlite":
        engine = make_engine(f"sqlite:///{tmp / 'cohort.sqlite3'}")
    else:
        import psycopg

        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "recog_bench_cohort" WITH (FORCE)')
            conn.execute('CREATE DATABASE "recog_bench_cohort"')
        engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/recog_bench_cohort")
    upgrade(engine)
    with transaction(session_factory(engine)) as s:
        net = seed_network(s, today=dt.date(2026, 11, 2))
        ids = [
            create_case(
                s,
                net,
                target="in_review",
                term="recent",
                matriculation=f"B{n}",
                name=f"B {n}",
                email=f"b{n}@example.org",
            )
            for n in range(2 * size)
        ]
    return engine, net, ids


def bench_cohort(kind: str, tmp: Path, size: int) -> None:
    engine, net, ids = make_db(kind, tmp, size)
    factory = session_factory(engine)
    try:
        with factory() as s:
            offering = s.scalar(select(Case.offering_id).where(Case.id == ids[0]))
        batch, single = ids[:size], ids[size:]
        # The cohort takes every waiting case of the offering: park the others first.
        with transaction(factory) as s:
            s.execute(Case.__table__.update().where(Case.id.in_(single)).values(examiner_id=None))

        def run_cohort() -> None:
            with transaction(factory) as s:
                fired = cohort.decide(
                    s,
                    offering_id=offering,
                    module_code="INF-ML",
                    event="recognize",
                    data={"modules": "INF-ML"},
                    actor=net.examiner,
                    now=NOW,
                )
                assert len(fired) == size

        with transaction(factory) as s:
            s.execute(
                Case.__table__.update()
                .where(Case.id.in_(single))
                .values(examiner_id=net.examiner.id)
            )
            s.execute(Case.__table__.update().where(Case.id.in_(batch)).values(examiner_id=None))
        t_single_start = time.perf_counter()
        for case_id in single:
            with transaction(factory) as s:
                fire(
                    s, case_id, "recognize", actor=net.examiner, now=NOW, data={"modules": "INF-ML"}
                )
        t_single = time.perf_counter() - t_single_start
        with transaction(factory) as s:
            s.execute(
                Case.__table__.update()
                .where(Case.id.in_(batch))
                .values(examiner_id=net.examiner.id)
            )
        t_cohort = timed(run_cohort)
        print(
            f"cohort decision, {kind}: {size:,} separate fire calls {t_single:6.2f} s "
            f"({size / t_single:,.0f}/s); one cohort decision {t_cohort:6.2f} s "
            f"({size / t_cohort:,.0f}/s); {t_single / t_cohort:.1f}x faster, one transaction"
        )
    finally:
        engine.dispose()
        if kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute('DROP DATABASE IF EXISTS "recog_bench_cohort" WITH (FORCE)')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=int, default=10_000)
    ap.add_argument("--cohort", type=int, default=1_000)
    ap.add_argument("--engines", default="sqlite,postgresql")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        bench_import(tmp, args.results)
        for kind in args.engines.split(","):
            bench_cohort(kind, tmp, args.cohort)


if __name__ == "__main__":
    main()
