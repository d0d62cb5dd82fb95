"""``recog institution ...``: home and partner institutions."""

from __future__ import annotations

from typing import Annotated

import typer

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

app = typer.Typer(no_args_is_help=True, help="Home and partner institutions.")


@app.command("add")
def institution_add(
    code: Annotated[str, typer.Argument(help="SCHAC code, e.g. uni-musterstadt.de")],
    name: Annotated[str, typer.Option(help="Official name.")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 code, e.g. DE.")],
    kind: Annotated[str, typer.Option(help="home or partner.")] = "partner",
    erasmus: Annotated[str | None, typer.Option(help="Erasmus code, e.g. 'D  MUSTER01'.")] = None,
    timezone: Annotated[str | None, typer.Option(help="IANA zone for deadlines.")] = None,
    email: Annotated[str | None, typer.Option(help="The office's e-mail address.")] = None,
) -> None:
    """Add a home or partner institution."""
    with unit_of_work() as s:
        inst = catalog.add_institution(
            s,
            code=code,
            name=name,
            country=country,
            kind=kind,
            erasmus_code=erasmus,
            timezone=timezone,
            office_email=email,
        )
    console.print(f"added {inst.kind} institution {inst.code} (id {inst.id})")


@app.command("set")
def institution_set(
    code: Annotated[str, typer.Argument(help="SCHAC code of a home institution.")],
    student_passwords: Annotated[
        bool | None,
        typer.Option(
            "--student-passwords/--no-student-passwords",
            help="Let students sign in with a password they set on their status page (besides "
            "the status link); turning it off deletes the passwords they set.",
        ),
    ] = None,
) -> None:
    """Change an institution's settings."""
    if student_passwords is None:
        fail("nothing to change; give --student-passwords or --no-student-passwords")
    with unit_of_work() as s:
        inst = catalog.allow_student_passwords(s, code, bool(student_passwords))
    console.print(
        f"{inst.code}: student passwords {'enabled' if inst.student_passwords else 'disabled'}"
    )


@app.command("list")
def institution_list(actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """List institutions (those the actor sees, with --actor: the partners and their own)."""
    with unit_of_work() as s:
        rows = [
            {
                "id": i.id,
                "code": i.code,
                "name": i.name,
                "country": i.country,
                "kind": i.kind,
                "erasmus_code": i.erasmus_code,
                "student_passwords": i.student_passwords,
            }
            for i in sorted(
                queries.institutions(s, actor=as_viewer(s, actor)), key=lambda i: (i.kind, i.code)
            )
        ]
    if as_json:
        print_json(rows)
        return
    print_table(["id", "code", "name", "country", "kind"], rows)
