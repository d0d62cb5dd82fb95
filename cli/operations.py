"""Running and operating Recog: ``recog up``, ``db``, ``worker``, ``beat``, ``remind`` and
``outbox``."""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from cli import context as ctx
from cli.context import JsonOpt, console, local, print_json, print_table, unit_of_work
from cli.webcmd import web_server_argv
from config.procedure import get_procedure
from models.migrate import current_revision, upgrade
from workflow import FileStore, catalog, queries

db_app = typer.Typer(no_args_is_help=True, help="The database schema.")
outbox_app = typer.Typer(no_args_is_help=True, help="Notifications waiting, sent or failed.")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    engine = ctx.engine()
    before = current_revision(engine)
    upgrade(engine)
    after = current_revision(engine)
    shown = engine.url.render_as_string(hide_password=True)
    if before == after:
        console.print(f"database {shown} is up to date (revision {after})")
    else:
        console.print(f"database {shown} migrated from {before or 'empty'} to {after}")


def remind(as_json: JsonOpt = False) -> None:
    """Run one deadline sweep now: send due reminders, lapse and close what is due."""
    from workflow import sweep

    ctx.check_mail()
    with unit_of_work() as s:
        result = sweep(s, now=ctx.now(), settings=ctx.settings())
    if as_json:
        print_json(
            {
                "claimed": result.claimed,
                "notifications": result.notifications,
                "fired": [{"case": c, "event": e} for c, e in result.fired],
                "refused": [{"case": c, "event": e, "reason": r} for c, e, r in result.refused],
            }
        )
        return
    console.print(
        f"sweep: {result.claimed} due item(s); {result.notifications} reminder(s) "
        f"queued; {len(result.fired)} timer event(s)"
    )
    for case_id, event in result.fired:
        console.print(f"  case {case_id}: {event}")
    for case_id, event, reason in result.refused:
        console.print(f"  case {case_id}: {event} refused: {reason}")


@outbox_app.command("list")
def outbox_list(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only failing and dead-lettered ones.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List notifications, newest first."""
    from workflow import outbox

    with unit_of_work() as s:
        rows = outbox.listing(s, failed_only=failed, limit=limit)
        zone_of = ctx.zones(s, [r["case_id"] for r in rows if r["case_id"] is not None])
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["next try"] = (
            local(r["available_at"], zone_of.get(r["case_id"])) if r["status"] == "pending" else ""
        )
        r["error"] = (r["last_error"] or "")[:60]
    print_table(
        [
            "id",
            "case_id",
            "channel",
            "recipient",
            "template",
            "status",
            "attempts",
            "next try",
            "error",
        ],
        rows,
    )


@outbox_app.command("retry")
def outbox_retry(outbox_id: Annotated[int, typer.Argument(help="Outbox row id.")]) -> None:
    """Put a failed or dead-lettered notification back in line for delivery now."""
    from workflow import outbox

    with unit_of_work() as s:
        outbox.retry(s, outbox_id, now=ctx.now())
    from tasks.kick import relay_soon

    relay_soon()
    console.print(f"outbox row {outbox_id} will be delivered again")


@outbox_app.command("relay")
def outbox_relay() -> None:
    """Deliver what is due now, in this process (no worker needed)."""
    from models.db import session_factory
    from tasks.delivery import Transports, relay

    settings = ctx.settings()
    ctx.check_mail()
    ctx.require_schema()
    factory = session_factory(ctx.engine())
    transports = Transports.from_settings(settings)
    sent = failed = dead = 0
    while True:  # a relay's batch is bounded by time (half a lease): go on while it leaves rows
        result = relay(factory, settings=settings, transports=transports, limit=10_000)
        sent, failed, dead = sent + result.sent, failed + result.failed, dead + result.dead
        if not result.released:
            break
    console.print(f"outbox: {sent} sent, {failed} failed ({dead} dead-lettered)")


def _celery_argv(kind: str, settings: Any) -> list[str]:
    if kind == "beat":
        return [
            "-A",
            "tasks.jobs",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(settings.data_dir / "celerybeat-schedule"),
        ]
    return [
        "-A",
        "tasks.jobs",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        "2",
        "--without-gossip",
        "--without-mingle",
        "-n",
        f"recog@{os.uname().nodename}",
    ]


def worker() -> None:
    """Run a Celery worker (as many as you like, on as many machines as you like)."""
    settings = ctx.settings()
    ctx.check_mail()
    os.execv(sys.executable, [sys.executable, "-m", "celery", *_celery_argv("worker", settings)])


def beat() -> None:
    """Run the scheduler that triggers the sweeps (exactly one per installation)."""
    settings = ctx.settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.execv(sys.executable, [sys.executable, "-m", "celery", *_celery_argv("beat", settings)])


def up(
    demo: Annotated[bool, typer.Option("--demo", help="Seed a demo network if empty.")] = False,
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="Prepare and report, then exit "
            "without starting the web server and background "
            "processes.",
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Web server port.")] = 8000,
) -> None:
    """Run Recog: migrate, seed the demo if asked, report, then run the web server, the
    worker and the scheduler (beat) together until Ctrl-C."""
    from workflow import ValidationFailed, has_data, refuse_demo_in_production, seed_demo

    settings = ctx.settings()
    if demo:
        try:  # before anything is migrated or started
            refuse_demo_in_production(settings)
        except ValidationFailed as exc:
            ctx.fail(str(exc))
    ctx.check_mail()
    db_upgrade()
    if demo:
        with unit_of_work() as s:
            if has_data(s):
                console.print("demo: the database has data already; not seeding again")
            else:
                summary = seed_demo(s, now=ctx.now(), store=FileStore(settings.documents_dir))
                for name in summary.logins:
                    catalog.set_user_password(s, name, demo_password(name))
                console.print(f"demo: seeded {summary.cases} cases")
    with unit_of_work() as s:
        counts = queries.count_by_state(s, actor=None)
        overdue = queries.list_cases(s, actor=None, now=ctx.now(), overdue=True, limit=10_000)
    proc = get_procedure()
    table = Table(title="Cases by state")
    table.add_column("state")
    table.add_column("cases", justify="right")
    for state in proc.states:
        table.add_row(state, str(counts.get(state, 0)))
    console.print(table)
    console.print(f"{len(overdue)} case(s) overdue. Data directory: {settings.data_dir}")
    if not counts:
        console.print("No cases yet. Try: recog up --demo")
    console.print("Next: recog case list --overdue, recog case show ID, recog workflow show")
    if demo:
        console.print(
            "Demo logins (user / password): "
            + ", ".join(
                f"{name} / {demo_password(name)}"
                for name in ("clerk", "examiner", "board", "admin")
            )
        )
    if not once:
        _run_children(settings, port)


def demo_password(name: str) -> str:
    """The demo's office passwords: printed by `recog up --demo`, never for real users."""
    return f"{name}-demo-pass"


def _run_children(settings: Any, port: int) -> None:
    """Web server, worker and beat as child processes, each restarted with a back-off if it
    stops unexpectedly (cli/supervise.py); Ctrl-C (or SIGTERM) stops them all."""
    from cli.supervise import Supervisor

    mail = (
        f"SMTP {settings.smtp_host}:{settings.smtp_port}"
        if settings.smtp_host
        else f"files in {settings.mail_dir}/ (*.eml)"
    )
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "RECOG_PUBLIC_URL": settings.public_url or url.rstrip("/")}
    console.print(
        f"Recog is at {url} (API docs: {url}api/docs); e-mail goes to {mail}. Press Ctrl-C to stop."
    )
    celery = [sys.executable, "-m", "celery"]
    supervisor = Supervisor(
        {
            "worker": [*celery, *_celery_argv("worker", settings)],
            "beat": [*celery, *_celery_argv("beat", settings)],
            "web server": web_server_argv(port),
        },
        env=env,
        say=lambda line: console.print(line, markup=False),
        warn=lambda line: ctx.err_console.print(f"error: {line}", markup=False),
    )
    supervisor.run()
    console.print("stopped")
