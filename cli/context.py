"""What every CLI command shares: settings, the database, the clock, actors and output."""

from __future__ import annotations

import datetime as dt
import functools
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from config.settings import Settings, get_settings
from models import Role
from models.db import make_engine, session_factory, transaction
from workflow import Actor, Forbidden, NotFound, auth, case_zones, format_instant

# Piped output (files, tests, other programs) gets wide lines instead of wrapped table cells.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 200)


def settings() -> Settings:
    return get_settings()


@functools.cache
def engine() -> Engine:
    return make_engine(settings().db_url)


@functools.cache
def require_schema() -> bool:
    from models.migrate import HEAD, current_revision

    if current_revision(engine()) != HEAD:
        fail("the database schema is not up to date (or not created); run: recog db upgrade")
    return True


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One command, one transaction: committed when the command succeeds."""
    require_schema()
    with transaction(session_factory(engine())) as session:
        yield session
    from tasks.kick import relay_soon, wrote_outbox

    if wrote_outbox(session):
        relay_soon()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def check_mail() -> None:
    """Stop a command that sends e-mail if the procedure names a message Recog cannot write."""
    from config.errors import ConfigurationError
    from tasks.messages import check_procedure

    try:
        check_procedure()
    except ConfigurationError as exc:
        fail(str(exc))


def fail(message: str, code: int = 1) -> NoReturn:
    err_console.print(f"error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


# A refusal for the actor's role exits with its own status, as the API answers it with 403:
# a script can tell "not allowed" from "not possible now"; every other refusal exits with 1.
EXIT_FORBIDDEN = 3


def exit_status(exc: Exception) -> int:
    return EXIT_FORBIDDEN if isinstance(exc, Forbidden) else 1


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")


def print_table(columns: list[str], rows: list[dict[str, Any]]) -> None:
    table = Table(show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*[("" if row.get(c) is None else str(row.get(c))) for c in columns])
    console.print(table)
    if not rows:
        console.print("(none)")


JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ActorOpt = Annotated[
    str | None,
    typer.Option(
        "--actor",
        envvar="RECOG_ACTOR",
        help="Who acts: an office user name, 'student' (the case's student), 'import' or 'timer'.",
    ),
]


def parse_data(pairs: list[str], data_file: Path | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if data_file is not None:
        try:
            loaded = json.loads(data_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # ValueError: JSONDecodeError, a giant number
            fail(f"{data_file}: cannot read JSON data: {exc}")
        except RecursionError:
            fail(f"{data_file}: cannot read JSON data: nested too deeply")
        if not isinstance(loaded, dict):
            fail(f"{data_file}: expected a JSON object")
        data.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            fail(f"--data {pair!r}: expected key=value")
        try:
            value: Any = json.loads(raw)
            if not isinstance(value, list | dict | bool | int | float):
                value = raw
        except (ValueError, RecursionError):  # not JSON (or nested past reason): the text
            value = raw
        # Numbers stay text: grades and credits are exact decimals, not floats.
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = raw
        target = data
        *parents, leaf = key.strip().split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                fail(f"--data {pair!r}: {part} is not a group")
        target[leaf] = value
    return data


def resolve_actor(session: Session, name: str | None, case_id: int | None = None) -> Actor:
    """``--actor``: an office user name, ``student`` (the case's own student, acting through
    the office), ``student#ID`` (that student, whichever case), or a system actor
    (``import``, ``timer``)."""
    if not name:
        fail("say who acts: --actor USERNAME (or set RECOG_ACTOR)")
    if name in (Role.IMPORT.value, Role.TIMER.value):
        return Actor.system(Role(name))
    if name.startswith("student#"):
        raw = name.removeprefix("student#")
        found = auth.actor_for_student_id(session, int(raw)) if _id(raw) else None
        if found is None:
            raise NotFound(f"there is no student {raw!r} (--actor student#ID takes a student id)")
        return found
    if name == Role.STUDENT.value:
        if case_id is None:
            fail("--actor student needs a case")
        found = auth.actor_for_case_student(session, case_id)
        if found is None:
            raise NotFound(f"case {case_id} not found")
        return found
    found = auth.actor_for_username(session, name)
    if found is None:
        raise NotFound(f"there is no active user {name!r} (add one: recog user add)")
    return found


def _id(raw: str) -> bool:
    """A database id as typed: digits that fit the column."""
    return raw.isdigit() and len(raw) < 10


def local(instant: dt.datetime | None, zone: dt.tzinfo | None = None) -> str:
    """An instant in ``zone`` (the case's institution's; the installation's if not given),
    a deadline at midnight as 24:00 of its last day."""
    if instant is None:
        return "-"
    return format_instant(instant, zone or settings().zone)


def zones(s: Session, case_ids: list[int]) -> dict[int, ZoneInfo]:
    """The zone each case's times are shown in: its institution's."""
    return case_zones(s, case_ids, settings())


def as_viewer(s: Session, actor: str | None, case: int | None = None) -> Any:
    return resolve_actor(s, actor, case) if actor else None
