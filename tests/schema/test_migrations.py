"""Migrations: `upgrade head` on an empty SQLite and an empty PostgreSQL, and the models and
the migrations agree (autogenerate finds nothing to do)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from models.base import Base
from models.db import make_engine
from models.migrate import HEAD, current_revision, downgrade, head_revision, upgrade


def _assert_agrees(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
        )
    assert diff == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_upgrade_head_on_empty_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    assert current_revision(engine) is None
    upgrade(engine)
    _assert_agrees(engine)
    upgrade(engine)  # idempotent
    assert current_revision(engine) == head_revision()
    engine.dispose()


@pytest.mark.postgres
def test_upgrade_head_on_empty_postgresql(pg_database: str) -> None:
    # pg_database was migrated from empty by the fixture; check it landed where the models are.
    engine = make_engine(pg_database)
    _assert_agrees(engine)
    engine.dispose()


def test_sqlite_runs_in_wal_mode_with_busy_timeout(sqlite_engine: Engine) -> None:
    with sqlite_engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_head_constant_names_the_newest_migration() -> None:
    assert head_revision() == HEAD


def test_upgrade_keeps_existing_data_on_sqlite(tmp_path: Path) -> None:
    """Each migration applies to a database that already holds cases (SQLite rebuilds tables
    with foreign keys pointing at them)."""

    from sqlalchemy import func, select

    from models import Case, CaseEvent
    from models.db import session_factory
    from tests.factories import CaseFactory, bound, make_office
    from workflow.cases.audit import verify

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    upgrade(engine)
    with session_factory(engine)() as s, s.begin(), bound(s):
        make_office()
        CaseFactory(state="in_review")
    downgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with session_factory(engine)() as s:
        assert s.scalar(select(func.count()).select_from(Case)) == 1
        assert (s.scalar(select(func.count()).select_from(CaseEvent)) or 0) > 3
        assert verify(s).ok
        assert s.connection().exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
