"""``recog transcript ...``: transcripts of records (ELMO, EWP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import context as ctx
from cli.context import (
    ActorOpt,
    JsonOpt,
    console,
    fail,
    print_json,
    print_table,
    resolve_actor,
    unit_of_work,
)
from workflow import FileStore

app = typer.Typer(no_args_is_help=True, help="Transcripts of records (ELMO, EWP).")


@app.command("import")
def transcript_import(
    file: Annotated[Path, typer.Argument(help="ELMO 1.7/2.0 or EWP ToR response (XML).")],
    as_json: JsonOpt = False,
) -> None:
    """Import a transcript: each result fires its case's events, or waits for a clerk."""
    from workflow import import_transcript

    if not file.is_file():
        fail(f"{file}: no such file")
    with unit_of_work() as s:
        report = import_transcript(
            s, file, store=FileStore(ctx.settings().documents_dir), now=ctx.now()
        )
    if as_json:
        print_json(
            {
                "file": report.filename,
                "format": report.format,
                "results": report.results,
                "tables": report.tables,
            }
        )
        return
    console.print(
        f"{report.filename} ({report.format}): {report.count('matched')} matched, "
        f"{report.count('unmatched') + report.count('ambiguous')} waiting for a "
        f"clerk, {report.count('skipped')} already imported"
    )
    print_table(["line", "course", "title", "grade", "status", "case", "note"], report.results)
    for table in report.tables:
        console.print(
            f"grading table: {table['what']}: {table['status']}"
            + (f" (#{table['table']})" if table["table"] else "")
            + (f": {table['note']}" if table["note"] else ""),
            markup=False,
        )


@app.command("pending")
def transcript_pending(as_json: JsonOpt = False) -> None:
    """Imported results that matched no case, or several."""
    from workflow import pending

    with unit_of_work() as s:
        rows = pending(s)
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "id",
            "file",
            "line",
            "status",
            "learner",
            "course",
            "title",
            "grade",
            "candidates",
            "note",
        ],
        rows,
    )


@app.command("match")
def transcript_match(
    result: Annotated[int, typer.Argument(help="Waiting result id.")],
    case: Annotated[int, typer.Argument(help="The case it belongs to.")],
    actor: ActorOpt = None,
) -> None:
    """Apply a waiting transcript result to a case by hand."""
    from workflow import match_by_hand

    with unit_of_work() as s:
        who = resolve_actor(s, actor)
        events = match_by_hand(
            s, result, case, store=FileStore(ctx.settings().documents_dir), actor=who, now=ctx.now()
        )
    console.print(f"result {result} applied to case {case}: {', '.join(events) or 'no event'}")
