"""``recog user ...`` (office users) and ``recog token ...`` (API tokens for campus systems)."""

from __future__ import annotations

import datetime as dt
import getpass
import sys
from typing import Annotated

import typer

from cli import context as ctx
from cli.context import (
    JsonOpt,
    console,
    err_console,
    fail,
    local,
    print_json,
    print_table,
    unit_of_work,
)
from workflow import accounts, auth, catalog

app = typer.Typer(no_args_is_help=True, help="Office users.")
token_app = typer.Typer(no_args_is_help=True, help="API tokens for campus systems.")


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
    invite: Annotated[
        bool,
        typer.Option(
            "--invite",
            help="E-mail the user a one-time link to set their password (needs --email and "
            "RECOG_PUBLIC_URL; valid RECOG_INVITATION_DAYS days).",
        ),
    ] = False,
) -> None:
    """Add an office user (the first admin of an empty installation too)."""
    config = ctx.settings()
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
        expires = None
        if invite:
            expires = accounts.invite_user(
                s,
                user.username,
                actor=None,
                now=ctx.now(),
                public_url=config.link_base,
                lifetime=dt.timedelta(days=config.invitation_days),
            )
    console.print(f"added {user.role} {user.username} (id {user.id})")
    if expires is not None:
        console.print(
            f"invitation to {user.email} queued (the worker or `recog outbox relay` sends it); "
            f"the link expires {local(expires)}"
        )
    else:
        console.print(f"set a password: recog user set-password {user.username}")
    if not user.email:
        err_console.print(
            f"warning: {user.username} has no e-mail address and will get no notifications "
            f"(add one with --email)",
            markup=False,
            soft_wrap=True,
        )


@app.command("list")
def user_list(as_json: JsonOpt = False) -> None:
    """List the office users of every institution."""
    with unit_of_work() as s:
        rows = accounts.list_users(s, actor=None)
    if as_json:
        print_json(rows)
        return
    for row in rows:
        row["programmes"] = ", ".join(row["programmes"])
        row["active"] = "yes" if row["active"] else "disabled"
        row["has_password"] = "yes" if row["has_password"] else "no"
    print_table(
        [
            "id",
            "username",
            "display_name",
            "role",
            "institution",
            "email",
            "active",
            "has_password",
            "programmes",
        ],
        rows,
    )


@app.command("disable")
def user_disable(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Disable a user: no more sign-ins; their sessions end, their tokens and invitations are
    revoked. Their cases and audit entries stay."""
    with unit_of_work() as s:
        user = accounts.disable_user(s, name, actor=None, now=ctx.now())
    console.print(f"disabled {user.username}; their sessions ended and their tokens are revoked")


@app.command("invite")
def user_invite(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """E-mail an existing user a new one-time link to set their password."""
    config = ctx.settings()
    with unit_of_work() as s:
        expires = accounts.invite_user(
            s,
            name,
            actor=None,
            now=ctx.now(),
            public_url=config.link_base,
            lifetime=dt.timedelta(days=config.invitation_days),
        )
    console.print(
        f"invitation to {name} queued (the worker or `recog outbox relay` sends it); "
        f"the link expires {local(expires)}"
    )


def read_password() -> str:
    """From the terminal (asked twice, not echoed), or the first line of stdin when it is not
    a terminal; never from an argument, which other users of the machine could see."""
    if sys.stdin.isatty():
        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat the password: ") != first:
            fail("the two passwords differ; nothing changed")
        return first
    line = sys.stdin.readline()
    password = line.removesuffix("\n").removesuffix("\r")
    if not password:
        fail("no password on standard input; nothing changed")
    return password


@app.command("set-password")
def user_set_password(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Set a user's password, read from the terminal (twice) or from standard input. Their
    browser sessions end."""
    password = read_password()
    with unit_of_work() as s:
        user = accounts.set_password(s, name, password, actor=None)
    console.print(f"password set for {user.username}")


@token_app.command("create")
def token_create(
    user: Annotated[str, typer.Option("--user", help="The office user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What it is for, e.g. campus-system.")],
    scope: Annotated[
        str, typer.Option(help="read (see), write (also change), admin (also manage users).")
    ] = "read",
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=730, help="Expire after this many days.")
    ] = None,
) -> None:
    """Create an API token; its secret is printed once, on standard output, and never again."""
    with unit_of_work() as s:
        owner = accounts.find_user(s, user, actor=None)
        moment = ctx.now()
        made = auth.issue_api_token(
            s,
            actor=None,
            user_id=owner.id,
            name=name,
            scope=auth.parse_scope(scope),
            now=moment,
            expires_at=moment + dt.timedelta(days=expires_in_days) if expires_in_days else None,
        )
    err_console.print(
        f"created token {made.id} ({made.scope.value}) for {user}; keep the secret below, it "
        "is not shown again",
        markup=False,
        soft_wrap=True,
    )
    sys.stdout.write(made.token + "\n")


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Only this user's tokens.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """List API tokens (never their secrets)."""
    with unit_of_work() as s:
        rows = auth.list_api_tokens(s)
    if user is not None:
        rows = [r for r in rows if r["user"] == user]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        for key in ("created_at", "expires_at", "last_used_at", "revoked_at"):
            row[key] = local(row[key]) if row[key] else None
    print_table(
        [
            "id",
            "name",
            "user",
            "scope",
            "parent_id",
            "created_at",
            "expires_at",
            "last_used_at",
            "revoked_at",
        ],
        rows,
    )


@token_app.command("revoke")
def token_revoke(
    token_id: Annotated[int, typer.Argument(help="Token id (recog token list).")],
) -> None:
    """Revoke a token and every token made from it."""
    with unit_of_work() as s:
        count = auth.revoke_api_token(s, token_id, actor=None, now=ctx.now())
    console.print(f"revoked token {token_id} ({count} token(s) revoked, with those it made)")
