"""``recog institution ...``: home and partner institutions."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import (
    ActorOpt,
    JsonOpt,
    as_viewer,
    console,
    err_console,
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
    if inst.kind == "home" and not inst.office_email:
        err_console.print(
            f"warning: {inst.code} has no office e-mail address (--email): its decision notices "
            "name it for questions and objections, so no notice can be issued until it is set "
            f"with: recog institution set {inst.code} --email ADDRESS",
            markup=False,
            soft_wrap=True,
        )


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
    email: Annotated[
        str | None,
        typer.Option(help="The examination office's e-mail address (named on its notices)."),
    ] = None,
) -> None:
    """Change a home institution's settings."""
    if student_passwords is None and email is None:
        fail("nothing to change; give --email, --student-passwords or --no-student-passwords")
    with unit_of_work() as s:
        if email is not None:
            inst = catalog.set_office_email(s, code, email)
            console.print(f"{inst.code}: office e-mail {inst.office_email}", markup=False)
        if student_passwords is not None:
            inst = catalog.allow_student_passwords(s, code, student_passwords)
            console.print(
                f"{inst.code}: student passwords "
                f"{'enabled' if inst.student_passwords else 'disabled'}"
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
                "office_email": i.office_email,
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
