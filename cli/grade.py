"""`recog grade`: convert a foreign grade to the German scale and show how it was reached."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from workflow.errors import DomainError, ValidationFailed
from workflow.grades import (
    DEFAULT_SCHEMES,
    ROUNDINGS,
    Conversion,
    bavarian,
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
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Convert GRADE with the modified Bavarian formula (or as pass/fail) and explain it."""
    try:
        result = _convert(grade, best, lowest_pass, rounding, scheme)
    except DomainError as err:
        # One line, so that scripts can show it as it is.
        typer.echo(f"error: {' '.join(err.message.split())}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(json.dumps(result.to_dict(), ensure_ascii=False))
    else:
        _show(result)


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
