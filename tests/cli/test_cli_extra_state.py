"""An office adds a state to its procedure (a copy of the file, through
``RECOG_PROCEDURE_FILE``) and the CLI drives a case through it, deadline and e-mail included,
with no Python file changed."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.factories import CaseFactory, musterstadt


def test_a_case_goes_through_an_added_state(
    cli: Callable[..., Any], cli_db: Any, extra_state_procedure: Path, tmp_path: Path
) -> None:
    with cli_db():
        musterstadt()
        CaseFactory(state="submitted")
    env = {"RECOG_PROCEDURE_FILE": str(extra_state_procedure)}
    assert "formal_check" in cli("workflow", "show", **env).out
    cli("outbox", "relay", **env)  # what the case's history left pending: only ours follows
    mails = tmp_path / "var" / "mail"
    before = set(mails.glob("*.eml"))
    case = str(cli("case", "list", "--state", "submitted", "--json", **env).json()[0]["id"])

    refused = cli("case", "fire", case, "finish_check", "--actor", "clerk", check=False, **env)
    assert "cannot finish_check case" in refused.err
    assert "the office must check the request formally first" in refused.err
    cli(
        "case",
        "fire",
        case,
        "check_formally",
        "--data",
        "note=all there",
        "--actor",
        "clerk",
        **env,
    )
    shown = cli("case", "show", case, "--json", **env).json()
    assert shown["state"] == "formal_check"
    assert shown["deadline"]["kind"] == "decision"
    cli("outbox", "relay", **env)

    sent = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in set(mails.glob("*.eml")) - before
    ]
    subjects = {m["Subject"] for m in sent}
    assert any("Formal check" in s or "Formale Prüfung" in s for s in subjects), subjects
    assert all(m["X-Recog-Case"] == case for m in sent)
    # The student's mail says the new state and the next step, both from the procedure file.
    bodies = [m.get_body(preferencelist=("plain",)).get_content() for m in sent]
    assert any(
        "checks that your request is complete" in b or "ob Ihr Antrag vollständig ist" in b
        for b in bodies
    ), bodies

    cli(
        "case",
        "fire",
        case,
        "finish_check",
        "--data",
        "examiner=examiner",
        "--actor",
        "clerk",
        **env,
    )
    assert cli("case", "show", case, "--json", **env).json()["state"] == "in_review"
    history = cli("case", "history", case, "--json", **env).json()
    assert [e["event"] for e in history][-2:] == ["check_formally", "finish_check"]
