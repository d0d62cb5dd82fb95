"""``recog precedents ...``: the office's past decisions."""

from __future__ import annotations

import typer

from cli import context as ctx
from cli.context import ActorOpt, JsonOpt, as_viewer, console, print_json, unit_of_work

app = typer.Typer(no_args_is_help=True, help="The office's past decisions.")


@app.command("check")
def precedents_check(actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Pairs (partner course, home module) that valid precedents decided differently (of
    the actor's cases, with --actor)."""
    from workflow import inconsistent

    with unit_of_work() as s:
        rows = inconsistent(s, actor=as_viewer(s, actor), now=ctx.now())
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("precedents are consistent: no pair was decided differently")
        return
    for r in rows:
        decided = "; ".join(
            f"case {d['case']}: {d['outcome']}" + (f" {d['grade']}" if d["grade"] else "")
            for d in r["decisions"]
        )
        console.print(
            f"{r['partner']} {r['course']} -> {r['module']} ({r['regulation_version']}): {decided}"
        )
    raise typer.Exit(1)
