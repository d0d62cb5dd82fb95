"""``recog notice ...``: a decision's notice (Bescheid), read before or after it went out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from cli import context as ctx
from cli.context import ActorOpt, JsonOpt, as_viewer, err_console, print_json, unit_of_work
from workflow import preview_notice, render_notice

app = typer.Typer(no_args_is_help=True, help="Decision notices.")


@app.command("preview")
def notice_preview(
    case: Annotated[int, typer.Argument(help="Case number.")],
    event: Annotated[
        int | None,
        typer.Option(
            "--event", help="The decision's number in the case history (default: the latest)."
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option(help="de or en (default: the student's language).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Write it to this file (.pdf: as PDF; else HTML)."),
    ] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Render the notice a case's decision sends the student, without sending or storing it
    (HTML on standard output, or --out FILE)."""
    with unit_of_work() as s:
        shown = preview_notice(
            s,
            case,
            actor=as_viewer(s, actor, case),
            settings=ctx.settings(),
            seq=event,
            language=language,
        )
    which = (
        f"case {shown.case_id}: the notice of {shown.event} (event {shown.seq}, "
        f"{ctx.local(shown.at)}), in {shown.language}; a preview: nothing is sent or stored"
    )
    if as_json:
        print_json(
            {
                "case": shown.case_id,
                "event": shown.event,
                "seq": shown.seq,
                "at": shown.at,
                "language": shown.language,
                "html": shown.html,
            }
        )
        return
    err_console.print(which, markup=False, soft_wrap=True)
    if out is None:
        sys.stdout.write(shown.html)
        return
    if out.suffix.lower() == ".pdf":
        out.write_bytes(render_notice(**shown.inputs).pdf)
    else:
        out.write_text(shown.html, encoding="utf-8")
    err_console.print(f"written to {out}", markup=False)
