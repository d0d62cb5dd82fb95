"""Tampering with the audit trail by SQL is detected by `recog audit verify`, which names the
first broken event and exits non-zero."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.factories import CaseFactory, musterstadt

# The cases of the trail: case 3 has a long one.
STATES = ("planned", "submitted", "rejected", "closed")


def sql(db: Path, statement: str) -> None:
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(statement)
    conn.close()


@pytest.fixture
def trail_db(cli_db: Any) -> Path:
    """The CLI's database with a home office and one case per state of ``STATES``; case 3
    (rejected) is the one tampered with."""
    with cli_db():
        musterstadt()
        assert [CaseFactory(state=state).id for state in STATES] == [1, 2, 3, 4]
    return Path(cli_db.path)


def test_intact_trail_verifies(cli: Callable[..., Any], trail_db: Path) -> None:
    result = cli("audit", "verify")
    assert "audit trail intact" in result.out
    report = cli("audit", "verify", "--json").json()
    assert report["ok"] is True
    assert report["cases"] == len(STATES)
    assert report["events"] > 20


def test_changed_row_is_named(cli: Callable[..., Any], trail_db: Path) -> None:
    sql(trail_db, "UPDATE case_events SET actor_id = 99 WHERE case_id = 3 AND seq = 3")
    result = cli("audit", "verify", check=False)
    assert result.code == 1
    assert "case 3, event #3" in result.err
    assert "changed after it was written" in result.err


def test_changed_data_is_named(cli: Callable[..., Any], trail_db: Path) -> None:
    sql(
        trail_db,
        """UPDATE case_events SET data = '{"grade": "1.0"}'
                    WHERE case_id = 3 AND seq = 3""",
    )
    result = cli("audit", "verify", "3", check=False)
    assert result.code == 1
    assert "case 3, event #3" in result.err
    assert "data was changed" in result.err


def test_deleted_row_is_named(cli: Callable[..., Any], trail_db: Path) -> None:
    sql(trail_db, "DELETE FROM case_events WHERE case_id = 3 AND seq = 2")
    result = cli("audit", "verify", check=False)
    assert result.code == 1
    assert "case 3, event #2" in result.err
    assert "deleted" in result.err


def test_deleted_last_row_is_named(cli: Callable[..., Any], trail_db: Path) -> None:
    sql(
        trail_db,
        "DELETE FROM case_events WHERE case_id = 3 AND seq = "
        "(SELECT max(seq) FROM case_events WHERE case_id = 3)",
    )
    result = cli("audit", "verify", check=False)
    assert result.code == 1
    assert "case 3" in result.err
    assert "trail ends at" in result.err


def test_reordered_rows_are_named(cli: Callable[..., Any], trail_db: Path) -> None:
    conn = sqlite3.connect(trail_db)
    with conn:
        conn.execute("UPDATE case_events SET seq = -1 WHERE case_id = 3 AND seq = 2")
        conn.execute("UPDATE case_events SET seq = 2 WHERE case_id = 3 AND seq = 3")
        conn.execute("UPDATE case_events SET seq = 3 WHERE case_id = 3 AND seq = -1")
    conn.close()
    result = cli("audit", "verify", check=False)
    assert result.code == 1
    assert "case 3, event #2" in result.err


def test_edited_case_state_is_named(cli: Callable[..., Any], trail_db: Path) -> None:
    sql(trail_db, "UPDATE cases SET state = 'recognized' WHERE id = 3")
    result = cli("audit", "verify", check=False)
    assert result.code == 1
    assert "case 3" in result.err
    assert "case row was edited" in result.err
