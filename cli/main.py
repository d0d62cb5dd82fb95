"""The ``recog`` command line: run Recog, migrate, import, inspect and operate cases.

Every read command takes ``--json``. Failures exit non-zero with one line on stderr that
starts with ``error:``; every write runs in one transaction and changes nothing on error.

This module holds the root app only; each command group lives in its own module of ``cli/``.
"""

from __future__ import annotations

import typer

from cli import context as ctx
from cli import operations
from cli.audit import app as audit_app
from cli.cases import app as case_app
from cli.catalog import catalog_app, modules_app
from cli.cohorts import app as cohort_app
from cli.grade import app as grade_app
from cli.institutions import app as inst_app
from cli.notices import app as notice_app
from cli.precedents import app as precedents_app
from cli.transcripts import app as transcript_app
from cli.users import app as user_app
from cli.users import token_app
from cli.webcmd import web as web_command
from cli.workflow_cmd import app as workflow_app
from config.errors import RecogError

app = typer.Typer(
    name="recog",
    no_args_is_help=True,
    add_completion=False,
    help="Recog: recognition of achievements from partner universities.",
)
for sub, name in [
    (operations.db_app, "db"),
    (case_app, "case"),
    (catalog_app, "catalog"),
    (modules_app, "modules"),
    (user_app, "user"),
    (token_app, "token"),
    (inst_app, "institution"),
    (audit_app, "audit"),
    (workflow_app, "workflow"),
    (operations.outbox_app, "outbox"),
    (transcript_app, "transcript"),
    (precedents_app, "precedents"),
    (cohort_app, "cohort"),
    (notice_app, "notice"),
]:
    app.add_typer(sub, name=name)

app.command("remind")(operations.remind)
app.command("worker")(operations.worker)
app.command("beat")(operations.beat)
app.command("up")(operations.up)
app.command("web")(web_command)
app.add_typer(grade_app, name="grade")


def main() -> None:
    """Console entry point: domain and configuration errors become one line on stderr, and
    the exit status says which kind (``context.exit_status``)."""
    try:
        app()
    except RecogError as exc:
        ctx.err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise SystemExit(ctx.exit_status(exc)) from None
