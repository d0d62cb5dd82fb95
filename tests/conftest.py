"""Shared fixtures: real SQLite and PostgreSQL databases, migrated once, and a home office
made by the test factories (tests/factories.py).

PostgreSQL tests skip when the server is absent, except where CI=true or
RECOG_REQUIRE_SERVICES=1: there a missing service fails the run.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

# Tests never write into the checkout's var/: everything goes below a private temp directory.
# Under pytest-xdist (`make test` runs two workers) each worker has its own: a worker inherits
# the controller's environment, and one worker's clean-up must not pull another's files away.
if worker := os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["RECOG_DATA_DIR"] = tempfile.mkdtemp(prefix=f"recog-test-{worker}-")
TEST_DATA = Path(os.environ.setdefault("RECOG_DATA_DIR", tempfile.mkdtemp(prefix="recog-test-")))
os.environ.setdefault("RECOG_ENVIRONMENT", "test")

from config.settings import get_settings  # noqa: E402  (after the environment is set)
from models.base import Base  # noqa: E402
from models.db import make_engine, session_factory  # noqa: E402
from models.migrate import upgrade  # noqa: E402
from tests.factories import Office, bound, musterstadt  # noqa: E402

PG_ADMIN_URL = os.environ.get(
    "RECOG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
NOW = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def services_required() -> bool:
    return (
        os.environ.get("CI", "").lower() == "true"
        or os.environ.get("RECOG_REQUIRE_SERVICES") == "1"
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(TEST_DATA, ignore_errors=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file; each test gets a copy (faster than migrating per test)."""
    path = tmp_path_factory.mktemp("template") / "recog.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the main file
    assert not path.with_name(path.name + "-wal").exists()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, migrated once, dropped at the end."""
    import psycopg

    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    name = f"recog_test_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        if services_required():
            pytest.fail(f"PostgreSQL is required (CI) but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate(engine: Engine) -> None:
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "recog.sqlite3"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    engine = make_engine(pg_database)
    _truncate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Both engines: a test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_engine" if request.param == "sqlite" else "pg_engine"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def network(engine: Engine) -> Office:
    """A home office (Universität Musterstadt, tests/factories.py ``musterstadt``), committed."""
    with session_factory(engine)() as s, s.begin(), bound(s):
        return musterstadt()


@pytest.fixture
def session(engine: Engine, network: Office) -> Iterator[Session]:
    """A session inside one transaction, rolled back after the test; the factories write
    into it."""
    with session_factory(engine)() as s, s.begin(), bound(s):
        yield s
        s.rollback()


@pytest.fixture(autouse=True)
def _fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


class CliResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliResult]:
    """Run the real ``recog`` console script in a subprocess on a private SQLite database."""
    env = {
        **os.environ,
        "RECOG_DATA_DIR": str(tmp_path / "var"),
        "COLUMNS": "200",
        "RECOG_DATABASE_URL": f"sqlite:///{tmp_path / 'var' / 'recog.sqlite3'}",
    }
    env.pop("RECOG_ACTOR", None)
    recog = str(Path(sys.executable).with_name("recog"))

    def run(
        *args: str, check: bool = True, stdin: str | None = None, **extra_env: str
    ) -> CliResult:
        proc = subprocess.run(
            [recog, *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={**env, **extra_env},
            input=stdin,
            cwd=tmp_path,
            check=False,
        )
        result = CliResult(proc)
        if check and result.code != 0:
            raise AssertionError(f"recog {' '.join(args)} exited {result.code}:\n{result.err}")
        return result

    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture
def cli_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """The database where the ``cli`` fixture's commands look, migrated and empty, and a way
    to fill it with the factories: ``with cli_db() as s: CaseFactory(...)`` (committed)."""
    target = tmp_path / "var" / "recog.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(sqlite_template, target)
    engine = make_engine(f"sqlite:///{target}")

    @contextlib.contextmanager
    def seeding() -> Iterator[Session]:
        with session_factory(engine)() as s, s.begin(), bound(s):
            yield s

    seeding.path = target  # type: ignore[attr-defined]
    yield seeding
    engine.dispose()


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database seeded by the real `recog up --demo`, made once per test run."""
    root = tmp_path_factory.mktemp("demo")
    db = root / "var" / "recog.sqlite3"
    env = {
        **os.environ,
        "RECOG_DATA_DIR": str(root / "var"),
        "RECOG_DATABASE_URL": f"sqlite:///{db}",
    }
    subprocess.run(
        [str(Path(sys.executable).with_name("recog")), "up", "--demo", "--once"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
        cwd=root,
    )
    return db


# --- a copy of the procedure with one more state ---------------------------------------------

EXTRA_STATE = """
[states.formal_check]
label.en = "Formal check"
label.de = "Formale Prüfung"
todo.en = "Nothing to do: the office checks that your request is complete."
todo.de = "Nichts zu tun: Das Prüfungsamt prüft, ob Ihr Antrag vollständig ist."
deadline = "decision"

[[events]]
name = "check_formally"
from = ["submitted"]
to = "formal_check"
label.en = "Check formally"
label.de = "Formal prüfen"
done.en = "Formal check begun"
done.de = "Formale Prüfung begonnen"
actors = ["clerk"]
notify = ["student", "clerk"]
message = "state_changed"
prerequisite = "the office must check the request formally first"
fields.note = { type = "text" }

[[events]]
name = "finish_check"
from = ["formal_check"]
to = "in_review"
label.en = "Request is complete"
label.de = "Antrag ist vollständig"
done.en = "Formal check passed"
done.de = "Formale Prüfung bestanden"
actors = ["clerk"]
guards = ["examiner_assigned"]
notify = ["examiner"]
message = "state_changed"
prerequisite = "the formal check must be finished first"
fields.examiner = { type = "text" }
"""


@pytest.fixture
def extra_state_procedure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The default procedure plus one state (``formal_check``: one event in, one out, the
    decision clock, a notification), used through ``RECOG_PROCEDURE_FILE`` by this process
    and by the CLI it starts: an office's adaptation, with no Python file changed."""
    from config.procedure import DEFAULT_PROCEDURE, get_procedure

    path = tmp_path / "office-procedure.toml"
    path.write_text(DEFAULT_PROCEDURE.read_text(encoding="utf-8") + EXTRA_STATE, "utf-8")
    monkeypatch.setenv("RECOG_PROCEDURE_FILE", str(path))
    get_settings.cache_clear()
    get_procedure.cache_clear()
    yield path
    monkeypatch.delenv("RECOG_PROCEDURE_FILE")
    get_settings.cache_clear()
    get_procedure.cache_clear()  # the next test reads the default again
