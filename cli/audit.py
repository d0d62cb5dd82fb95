"""``recog audit ...``: the tamper-evident audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context as ctx
from cli.context import JsonOpt, console, fail, print_json, unit_of_work
from workflow import audit

app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit trail.")


@app.command("verify")
def audit_verify(
    case: Annotated[int | None, typer.Argument(help="Only this case.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Verify the hash chains of the audit trail; exit 1 naming the first broken event."""
    with unit_of_work() as s:
        report = audit.verify(s, case)
    if as_json:
        print_json(
            {
                "ok": report.ok,
                "cases": report.cases,
                "events": report.events,
                "breaches": [
                    {"case": b.case_id, "seq": b.seq, "message": b.message} for b in report.breaches
                ],
            }
        )
    elif report.ok:
        console.print(f"audit trail intact: {report.events} events in {report.cases} cases")
    if not report.ok:
        if not as_json:
            for breach in report.breaches:
                ctx.err_console.print(f"broken: {breach}", markup=False)
        fail(f"audit trail broken in {len(report.breaches)} case(s); first: {report.breaches[0]}")
