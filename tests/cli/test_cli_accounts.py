"""The first admin of an empty installation, through the real `recog` console script: an
institution, `recog user add --role admin`, `recog user set-password` from standard input,
`recog user list` and a token for a campus system."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HOME = "uni-x.de"
PASSWORD = "correct horse battery staple"


def test_empty_installation_to_first_admin(cli: Callable[..., Any], cli_db: Any) -> None:
    home = cli(
        "institution", "add", HOME, "--name", "Universität X", "--country", "DE", "--kind", "home"
    )
    # Its notices name the office's address: without one, say so now, not when a notice fails.
    assert "has no office e-mail address" in home.err
    assert f"recog institution set {HOME} --email" in home.err
    bad = cli("institution", "set", HOME, "--email", "not-an-address", check=False)
    assert bad.code == 1
    assert "office_email" in bad.err
    cli("institution", "set", HOME, "--email", "pruefungsamt@uni-x.example")
    [inst] = cli("institution", "list", "--json").json()
    assert inst["office_email"] == "pruefungsamt@uni-x.example"
    added = cli("user", "add", "ada", "--role", "admin", "--institution", HOME)
    assert "added admin ada" in added.out
    assert "recog user set-password ada" in added.out
    assert "ada has no e-mail address and will get no notifications" in added.err
    # Never from an argument: there is no option for it.
    refused = cli("user", "set-password", "ada", "--password", PASSWORD, check=False)
    assert refused.code == 2
    empty = cli("user", "set-password", "ada", stdin="", check=False)
    assert (empty.code, empty.err.strip()) == (
        1,
        "error: no password on standard input; nothing changed",
    )
    cli("user", "set-password", "ada", stdin=PASSWORD + "\n")
    [ada] = cli("user", "list", "--json").json()
    assert (ada["username"], ada["role"], ada["active"], ada["has_password"]) == (
        "ada",
        "admin",
        True,
        True,
    )
    made = cli("token", "create", "--user", "ada", "--name", "campus", "--scope", "admin")
    assert made.out.strip().startswith("rcg_")
    assert "not shown again" in made.err
    [token] = cli("token", "list", "--json").json()
    assert (token["user"], token["scope"], token["revoked_at"]) == ("ada", "admin", None)
    assert "token" not in token  # the secret is never listed
    disabled = cli("user", "disable", "ada")
    assert "disabled ada" in disabled.out
    [token] = cli("token", "list", "--json").json()
    assert token["revoked_at"] is not None


def test_an_invitation_from_a_fresh_development_installation(
    cli: Callable[..., Any], cli_db: Any
) -> None:
    """As the README's first steps run on a developer's machine (`make run`'s environment, no
    RECOG_PUBLIC_URL): the invitation is queued and its link will point where `make run`
    serves, not refused for want of a public address."""
    dev = {"RECOG_ENVIRONMENT": "development"}
    cli(
        "institution",
        "add",
        HOME,
        "--name",
        "Universität X",
        "--country",
        "DE",
        "--kind",
        "home",
        "--email",
        "pruefungsamt@uni-x.example",
        **dev,
    )
    invited = cli(
        "user",
        "add",
        "clara",
        "--role",
        "clerk",
        "--institution",
        HOME,
        "--email",
        "clara@uni-x.example",
        "--invite",
        **dev,
    )
    assert "invit" in invited.out.lower()
    [row] = cli("outbox", "list", "--json", **dev).json()
    assert row["template"] == "invitation"
