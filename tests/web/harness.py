"""Helpers for the web tests: a seeded world of two institutions, clients signed in as each
kind of actor, and real uvicorn servers on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from cli.webcmd import web_server_argv
from config.settings import Settings, load_settings
from models import Case, Module, Offering
from models.db import session_factory, transaction
from tests.factories import (
    HOME_MODULES,
    CaseFactory,
    OfferingFactory,
    Office,
    ProgrammeFactory,
    UserFactory,
    actor,
    bound,
    home_modules,
    musterstadt,
)
from workflow.cases.documents import FileStore
from workflow.grading import tables as gt
from workflow.office.catalog import set_user_password
from workflow.policy import auth
from workflow.policy.actors import Actor

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# The states the authorization matrix walks a case to (every non-initial kind of state).
MATRIX_STATES = (
    "planned",
    "enrolled",
    "course_passed",
    "transcript_received",
    "submitted",
    "in_review",
    "info_requested",
    "rejected",
    "recognized",
    "appealed",
    "closed",
)


@dataclass
class World:
    net: Office
    other: Office  # a second home institution
    outsider: Actor  # an examiner of home A, of another programme
    cases: dict[str, int] = field(default_factory=dict)  # state -> case id (home A)
    students: dict[int, int] = field(default_factory=dict)  # case id -> student id
    case_b: int = 0  # a case of home B
    users: dict[str, str] = field(default_factory=dict)  # label -> username


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


PUBLIC_URL = "https://recog.example"  # where e-mailed links point in the web tests


def settings_for(engine: Engine, data_dir: Path) -> Settings:
    return load_settings(
        database_url=url_of(engine), data_dir=data_dir, environment="test", public_url=PUBLIC_URL
    )


def build_world(
    engine: Engine, data_dir: Path, now: dt.datetime, states: tuple[str, ...] = MATRIX_STATES
) -> World:
    """Two home institutions with users (passwords set), and one case per state in A."""
    store = FileStore(data_dir / "documents")
    with transaction(session_factory(engine)) as s, bound(s):
        net = musterstadt()
        other = musterstadt("uni-b.example")
        math = ProgrammeFactory(institution_id=net.home_id, code="MATH-BSC", title="Mathematik")
        outsider = actor(
            UserFactory(
                username="outsider",
                role="examiner",
                institution_id=net.home_id,
                programmes=[math],
                email="outsider@uni-musterstadt.example",
            )
        )
        world = World(net=net, other=other, outsider=outsider)
        for label, who in [
            ("clerk", net.clerk),
            ("examiner", net.examiner),
            ("board", net.board),
            ("admin", net.admin),
            ("outsider", outsider),
            ("clerk_b", other.clerk),
        ]:
            set_user_password(s, who.label, PASSWORD)
            world.users[label] = who.label
        for i, state in enumerate(states):
            world.cases[state] = CaseFactory(
                state=state,
                offering=OfferingFactory(upcoming=state == "planned", today=now.date()),
                student__institution_id=net.home_id,
                student__matriculation_number=f"47{i:05d}",
                student__name=f"Student {i}",
                student__email=f"s{i}@student.example",
                student__preferred_language="en",
                targets=home_modules(HOME_MODULES[i % 4][0]),
                store=store,
                present=now,
            ).id
        world.case_b = CaseFactory(
            state="submitted",
            offering=OfferingFactory(today=now.date()),
            student__institution_id=other.home_id,
            student__matriculation_number="9000001",
            student__name="Other Student",
            student__email="o@student.example",
            store=store,
            present=now,
        ).id
        world.students = {r.id: r.student_id for r in s.execute(select(Case.id, Case.student_id))}
    return world


def sign_in(page: Any, base: str, username: str) -> None:
    """Sign in through the login form in a browser page (Playwright)."""
    page.goto(f"{base}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.locator("form[action='/login'] button").click()
    page.wait_for_url(f"{base}/cases")


def client(app: Any) -> TestClient:
    # https: the session cookie is Secure, and httpx keeps Secure cookies for https only.
    return TestClient(app, base_url="https://testserver", follow_redirects=False)


def csrf_of(c: TestClient, path: str = "/cases") -> str:
    r = c.get(path, follow_redirects=True)
    found = CSRF.search(r.text)
    assert found, f"no CSRF token on {path} ({r.status_code})"
    return found.group(1)


def login(c: TestClient, username: str, password: str = PASSWORD) -> str:
    token = csrf_of(c, "/login")
    r = c.post("/login", data={"username": username, "password": password, "csrf": token})
    assert r.status_code == 303, r.text
    return csrf_of(c)


def student_link(engine: Engine, student_id: int, now: dt.datetime) -> str:
    with transaction(session_factory(engine)) as s:
        return auth.mint_status_link(s, student_id, now=now)


def student_login(c: TestClient, engine: Engine, student_id: int, now: dt.datetime) -> str:
    token = student_link(engine, student_id, now)
    r = c.get(f"/s/{token}")
    assert r.status_code == 303
    assert r.headers["location"] == "/cases"
    return csrf_of(c, "/cases")


def api_token(engine: Engine, username: str, now: dt.datetime) -> str:
    from models import User

    with transaction(session_factory(engine)) as s:
        user_id = s.execute(select(User.id).where(User.username == username)).scalar_one()
        return auth.create_api_token(s, user_id=user_id, name="tests", now=now)[1]


def student_actor(world: World, case_id: int) -> Actor:
    return Actor.student(world.students[case_id], world.net.home_id)


# --- real servers ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def uvicorn_server(
    env: dict[str, str], *, workers: int = 1, log: Path | None = None
) -> Iterator[str]:
    """``recog web`` as it runs in production (uvicorn, the app factory), on 127.0.0.1."""
    port = free_port()
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115  closed below
    proc = subprocess.Popen(
        web_server_argv(port, workers=workers),
        env={**os.environ, **env},
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


# grade-conversion.md's worked example, for the percentile tests: the partner's ECTS table
# for ISCED 0612 (grade, percent; worst first, as the partner lists it) and a home
# distribution of German grades (grade, percent).
EXAMPLE_PARTNER_TABLE = [
    ("F", "0.8"),
    ("E", "24.7"),
    ("D", "26.3"),
    ("C", "36.3"),
    ("B", "9.9"),
    ("A", "2.0"),
]
EXAMPLE_HOME_TABLE = [
    ("1.0", 5),
    ("1.3", 8),
    ("1.7", 12),
    ("2.0", 15),
    ("2.3", 15),
    ("2.7", 13),
    ("3.0", 12),
    ("3.3", 8),
    ("3.7", 7),
    ("4.0", 5),
]


def store_example_tables(engine: Engine, case_id: int, now: dt.datetime) -> tuple[int, int]:
    """The partner's table for the course's ISCED-F field and the office's distribution for
    the case's target module."""
    with transaction(session_factory(engine)) as s:
        offering = s.execute(
            select(Offering).join(Case, Case.offering_id == Offering.id).where(Case.id == case_id)
        ).scalar_one()
        offering.isced_code = "0612"
        home_id, module_id = s.execute(
            select(Case.institution_id, Module.id).join(Case.targets).where(Case.id == case_id)
        ).one()
        _, partner = gt.partner_grades(
            [(x, Decimal(p), None) for x, p in EXAMPLE_PARTNER_TABLE], ["ects"]
        )
        partner_id = gt.store_table(
            s,
            kind="partner",
            institution_id=offering.institution_id,
            scheme="ects",
            reference_year=2025,
            source="ewp",
            grades=partner,
            now=now,
            isced_code="0612",
        )[0]
        home = gt.home_grades([(x, Decimal(p), None) for x, p in EXAMPLE_HOME_TABLE])
        own_id = gt.store_table(
            s,
            kind="home",
            institution_id=home_id,
            scheme="de",
            reference_year=2024,
            source="manual",
            grades=home,
            now=now,
            module_id=module_id,
        )[0]
    return partner_id, own_id
