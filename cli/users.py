"""``recog user ...``: office users."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import console, unit_of_work
from workflow import catalog

app = typer.Typer(no_args_is_help=True, help="Office users.")


@app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="User name (login).")],
    role: Annotated[str, typer.Option(help="clerk, examiner, board or admin.")],
    institution: Annotated[str, typer.Option(help="SCHAC code of the home institution.")],
    programme: Annotated[
        list[str] | None, typer.Option(help="Programme code an examiner examines (repeatable).")
    ] = None,
    display_name: Annotated[str | None, typer.Option(help="Full name.")] = None,
    email: Annotated[str | None, typer.Option()] = None,
    language: Annotated[str, typer.Option(help="de or en.")] = "de",
) -> None:
    """Add an office user."""
    with unit_of_work() as s:
        user = catalog.add_user(
            s,
            username=name,
            role=role,
            institution=institution,
            display_name=display_name,
            email=email,
            programmes=programme or [],
            language=language,
        )
    console.print(f"added {user.role} {user.username} (id {user.id})")
