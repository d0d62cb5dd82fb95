"""``recog catalog ...`` and ``recog modules ...``: the partner catalogue and the home modules."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from cli import context as ctx
from cli.context import (
    ActorOpt,
    JsonOpt,
    as_viewer,
    console,
    fail,
    print_json,
    print_table,
    unit_of_work,
)
from workflow import catalog, queries

catalog_app = typer.Typer(no_args_is_help=True, help="The partner course catalogue.")
modules_app = typer.Typer(no_args_is_help=True, help="Home programmes and modules.")


def _progress_import(kind: str, file: Path, actor: str | None) -> None:
    if not file.is_file():
        fail(f"{file}: no such file")
    with (
        unit_of_work() as s,
        Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=ctx.err_console,
            transient=True,
        ) as bar,
    ):
        task = bar.add_task(f"importing {file.name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        importer = catalog.import_catalogue if kind == "catalog" else catalog.import_modules
        # Without --actor the operator imports (for the network); with it, the office's
        # rules apply (docs/adr/0014-shared-partner-data.md).
        summary = importer(s, file, progress=progress, actor=as_viewer(s, actor))
    console.print(f"{file.name}: {summary.created} created, {summary.updated} updated")


@catalog_app.command("import")
def catalog_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON file.")], actor: ActorOpt = None
) -> None:
    """Import partner course offerings; existing ones (institution, code, term) are updated
    (with --actor: only those no other home institution's cases use)."""
    _progress_import("catalog", file, actor)


@catalog_app.command("list")
def catalog_list(
    term: Annotated[str | None, typer.Option()] = None,
    partner: Annotated[str | None, typer.Option(help="Only this partner (SCHAC code).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the catalogue (as the actor sees it, with --actor): each course with its learning
    outcomes and assessment, what an examiner compares."""
    with unit_of_work() as s:
        found, _ = queries.catalogue(s, actor=as_viewer(s, actor), term=term, partner=partner)
        rows = [
            {
                "id": o.id,
                "partner": code,
                "code": o.code,
                "term": o.term,
                "title": o.title,
                "ects": str(o.ects),
                "eqf_level": o.eqf_level,
                "language": o.language,
                "learning_outcomes": o.learning_outcomes,
                "assessment_type": o.assessment_type,
                "participation_mode": o.participation_mode,
                "quality_assurance": o.quality_assurance,
                "grading_scheme": o.grading_scheme,
                "isced_code": o.isced_code,
                "start_date": o.start_date,
                "end_date": o.end_date,
                "exam_date": o.exam_date,
                "status": o.status,
            }
            for o, code in found
        ]
    if as_json:
        print_json(rows)
        return
    print_table(
        [
            "id",
            "partner",
            "code",
            "term",
            "title",
            "ects",
            "eqf_level",
            "assessment_type",
            "learning_outcomes",
            "grading_scheme",
            "exam_date",
            "status",
        ],
        rows,
    )


@modules_app.command("import")
def modules_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON file.")], actor: ActorOpt = None
) -> None:
    """Import home programmes and modules; existing ones are updated (with --actor: the
    actor's own institution's only)."""
    _progress_import("modules", file, actor)


@modules_app.command("list")
def modules_list(
    programme: Annotated[str | None, typer.Option(help="Only this programme (its code).")] = None,
    institution: Annotated[
        str | None, typer.Option(help="Only this home institution (SCHAC code).")
    ] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the home modules (with --actor: of the actor's institution), by programme."""
    with unit_of_work() as s:
        rows = queries.home_modules(
            s, actor=as_viewer(s, actor), institution=institution, programme=programme
        )
    if as_json:
        print_json(rows)
        return
    print_table(["institution", "programme", "code", "title", "ects", "regulation_version"], rows)
