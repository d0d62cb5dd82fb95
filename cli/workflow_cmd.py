"""``recog workflow ...``: the recognition procedure."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.context import JsonOpt, fail, print_json, print_table
from workflow import procedure

app = typer.Typer(no_args_is_help=True, help="The recognition procedure.")


@app.command("show")
def workflow_show(
    fmt: Annotated[str, typer.Option("--format", help="mermaid, dot or table.")] = "mermaid",
    as_json: JsonOpt = False,
) -> None:
    """Print the procedure: a Mermaid or DOT diagram, or a table of events (its guards
    checked against the engine's first, so an office's copy is checked here)."""
    proc = procedure()
    if as_json:
        print_json(
            {
                "source": proc.source,
                "initial": proc.initial,
                "states": [
                    {"name": s.name, "label": s.label, "final": s.final, "deadline": s.deadline}
                    for s in proc.states.values()
                ],
                "events": [
                    {
                        "name": e.name,
                        "from": list(e.sources),
                        "to": e.dest,
                        "actors": list(e.actors),
                        "guards": list(e.guards),
                        "notify": list(e.notify),
                    }
                    for e in proc.events.values()
                ],
            }
        )
    elif fmt == "mermaid":
        print(proc.mermaid())  # plain stdout, so it can be piped into a file
    elif fmt == "dot":
        print(proc.dot())
    elif fmt == "table":
        print_table(
            ["event", "from", "to", "actors", "guards"],
            [
                {
                    "event": e.name,
                    "from": ", ".join(e.sources),
                    "to": e.dest,
                    "actors": ", ".join(e.actors),
                    "guards": ", ".join(e.guards),
                }
                for e in proc.events.values()
            ],
        )
    else:
        fail(f"unknown format {fmt!r}; use mermaid, dot or table")
