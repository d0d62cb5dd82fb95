"""`recog institution set --student-passwords`: the office lets its students sign in with a
password (which each student then sets on their status page), or stops it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.factories import PartnerFactory, musterstadt

HOME = "uni-musterstadt.de"


def test_institution_set_student_passwords(cli: Callable[..., Any], cli_db: Any) -> None:
    with cli_db():
        musterstadt()
        PartnerFactory()
    assert (
        cli("institution", "set", HOME, "--student-passwords").out.strip()
        == f"{HOME}: student passwords enabled"
    )
    listed = cli("institution", "list", "--json").json()
    assert {i["code"]: i["student_passwords"] for i in listed}[HOME] is True
    partner = next(i["code"] for i in listed if i["kind"] == "partner")
    assert all(i["student_passwords"] is False for i in listed if i["code"] != HOME)
    refused = cli("institution", "set", partner, "--student-passwords", check=False)
    assert refused.code == 1
    assert "partner institution" in refused.err
    assert (
        cli("institution", "set", HOME, "--no-student-passwords").out.strip()
        == f"{HOME}: student passwords disabled"
    )
