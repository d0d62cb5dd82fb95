"""`recog grade`: convert a foreign grade to the German scale and show how it was reached."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workflow import (
    DEFAULT_SCHEMES,
    DIFFERENCE_THRESHOLD,
    ROUNDINGS,
    Conversion,
    DomainError,
    ValidationFailed,
    bavarian,
    compare,
    convert,
    rounding_policy,
)

app = typer.Typer(
    help="Convert foreign grades to the German scale (1.0 to 4.0) and show how.",
    no_args_is_help=True,
)


# Without a callback Typer collapses a one-command app into that command; with it, `convert`
# stays a subcommand both here and once the app is mounted as `recog grade`.
@app.callback()
def _grade_group() -> None:
    pass


@app.command("convert")
def convert_command(
    grade: Annotated[
        str, typer.Argument(help="The grade as printed, e.g. 27, 1,7, B or bestanden.")
    ],
    best: Annotated[
        str | None, typer.Option("--best", help="Best grade of the foreign scale (Nmax).")
    ] = None,
    lowest_pass: Annotated[
        str | None, typer.Option("--lowest-pass", help="Lowest passing grade (Nmin).")
    ] = None,
    rounding: Annotated[
        str,
        typer.Option(
            "--rounding",
            help="nearest: nearest German step, a tie to the better grade; "
            "truncate: cut to one decimal.",
        ),
    ] = "nearest",
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            help="Grading scheme code instead of --best/--lowest-pass: "
            + ", ".join(sorted(DEFAULT_SCHEMES))
            + ".",
        ),
    ] = None,
    percentile_tables: Annotated[
        str | None,
        typer.Option(
            "--percentile",
            metavar="PARTNER_ID,HOME_ID",
            help="Also (or only) convert by percentiles with these stored grading tables "
            "(ids from `recog grade table list`); with --scheme or --best/--lowest-pass both "
            f"conversions are shown side by side, flagged when they differ by "
            f"{DIFFERENCE_THRESHOLD} or more.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Convert GRADE with the modified Bavarian formula (or as pass/fail) and explain it."""
    try:
        if percentile_tables is not None:
            by_table = _by_tables(grade, percentile_tables, scheme)
            result = None
            if scheme is not None or best is not None or lowest_pass is not None:
                result = _convert(grade, best, lowest_pass, rounding, scheme)
        else:
            result, by_table = _convert(grade, best, lowest_pass, rounding, scheme), None
    except DomainError as err:
        # One line, so that scripts can show it as it is.
        typer.echo(f"error: {' '.join(err.message.split())}", err=True)
        raise typer.Exit(1) from None
    if by_table is not None and result is not None:
        both = compare(result, by_table)
        if as_json:
            typer.echo(json.dumps(both.to_dict(), ensure_ascii=False))
            return
        _show(result)
        _show(by_table)
        difference = "-" if both.difference is None else str(both.difference)
        verdict = (
            f"DIFFER by {DIFFERENCE_THRESHOLD} or more: look at both before choosing"
            if both.differs
            else f"agree within {DIFFERENCE_THRESHOLD}"
        )
        Console(highlight=False).print(
            f"Side by side: {result.grade} (Bavarian) and "
            f"{by_table.grade} (percentile), difference "
            f"{difference}: {verdict}"
        )
        return
    shown = by_table or result
    assert shown is not None
    if as_json:
        typer.echo(json.dumps(shown.to_dict(), ensure_ascii=False))
    else:
        _show(shown)


def _by_tables(grade: str, ids: str, scheme: str | None) -> Conversion:
    from cli.context import unit_of_work
    from workflow import CaseTables, convert_by_tables, get_table

    parts = [part.strip() for part in ids.split(",")]
    if len(parts) != 2 or not all(part.isdigit() for part in parts):
        raise ValidationFailed(
            "--percentile takes the ids of a partner table and a home "
            "distribution: --percentile PARTNER_ID,HOME_ID"
        )
    with unit_of_work() as s:
        partner = get_table(s, int(parts[0]), kind="partner")
        home = get_table(s, int(parts[1]), kind="home")
    tables = CaseTables(partner, home, "", "")
    return convert_by_tables(grade, scheme or partner.scheme, tables)


def _convert(
    grade: str, best: str | None, lowest_pass: str | None, rounding: str, scheme: str | None
) -> Conversion:
    policy = rounding_policy(rounding)
    if scheme is not None:
        if best is not None or lowest_pass is not None:
            raise ValidationFailed("give either --scheme or --best/--lowest-pass, not both")
        return convert(grade, scheme, policy)
    if best is None or lowest_pass is None:
        raise ValidationFailed(
            "give --best and --lowest-pass (Nmax and Nmin), or --scheme CODE; "
            f"rounding is one of {', '.join(ROUNDINGS)}"
        )
    return bavarian(grade, best, lowest_pass, policy)


# --- grading tables ----------------------------------------------------------------------

table_app = typer.Typer(
    help="Grading tables for percentile conversion: partner tables and the home distribution.",
    no_args_is_help=True,
)
app.add_typer(table_app, name="table")


@table_app.command("import")
def table_import(
    file: Annotated[Path, typer.Argument(help="CSV (or JSON) file, one row per grade.")],
    actor: Annotated[
        str | None,
        typer.Option(
            "--actor",
            envvar="RECOG_ACTOR",
            help="An office user: its own home distributions, and no partner table another "
            "home institution's cases use (without it: the operator).",
        ),
    ] = None,
) -> None:
    """Import partner grading tables and home grade distributions (one row per grade).

    Columns: kind (partner or home), institution, scheme (partner tables), reference_year,
    grade, percentage or count, and at most one reference group: isced, course and term
    (a partner's course offering), programme, or module (with its programme if the code is
    not unique). Every row is checked first; any problem and nothing is imported."""
    from cli.context import as_viewer, console, fail, now, unit_of_work
    from workflow import import_file

    if not file.is_file():
        fail(f"{file}: no such file")
    with unit_of_work() as s:
        summary = import_file(s, file, now=now(), actor=as_viewer(s, actor))
    console.print(
        f"{file.name}: {summary.created} tables created, {summary.updated} "
        f"replaced, {summary.unchanged} unchanged"
    )


@table_app.command("list")
def table_list(
    kind: Annotated[str | None, typer.Option(help="partner or home.")] = None,
    institution: Annotated[str | None, typer.Option(help="Institution code.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the stored grading tables, the most recent reference year first."""
    from cli.context import console, print_json, unit_of_work
    from workflow import list_tables

    with unit_of_work() as s:
        rows = list_tables(s, kind=kind, institution=institution)
    if as_json:
        print_json(rows)
        return
    table = Table()
    for column in ("id", "kind", "institution", "scheme", "group", "year", "source", "grades (%)"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["id"]),
            row["kind"],
            row["institution"],
            row["scheme"] if row["kind"] == "partner" else "",
            row["scope_label"],
            str(row["reference_year"]),
            row["source"],
            row["shares"],
        )
    console.print(table)
    if not rows:
        console.print("(none)")


@table_app.command("delete")
def table_delete(table_id: Annotated[int, typer.Argument(help="The table's id.")]) -> None:
    """Delete a stored grading table (decisions keep the percentages they used)."""
    from cli.context import console, unit_of_work
    from workflow import delete_table

    with unit_of_work() as s:
        delete_table(s, table_id)
    console.print(f"grading table {table_id} deleted")


def _show(result: Conversion) -> None:
    # highlight=False: rich would colour digits of the grade differently from their neighbours.
    console = Console(highlight=False)
    console.print(
        Text.assemble(
            "Grade ", (result.original, "bold"), " -> German grade ", (result.grade, "bold green")
        )
    )
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="dim")
    table.add_column()
    table.add_row("scheme", Text(result.scheme or "(given on the command line)"))
    table.add_row("method", Text(result.method))
    for name, value in result.parameters.items():
        table.add_row(name.replace("_", " "), Text(_plain(value)))
    if result.exact is not None:
        table.add_row("exact value", Text(str(result.exact)))
    console.print(table)
    console.print("How it was reached:")
    for number, step in enumerate(result.explanation, start=1):
        console.print(Text(f"  {number}. {step}"), soft_wrap=True)


def _plain(value: object) -> str:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{key} = {_plain(item)}" for key, item in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str):
        return ", ".join(_plain(item) for item in value)
    return str(value)
