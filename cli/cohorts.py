"""``recog cohort ...``: one decision for a whole cohort."""

from __future__ import annotations

from typing import Annotated

import typer

from cli import context as ctx
from cli.context import (
    ActorOpt,
    JsonOpt,
    console,
    parse_data,
    print_json,
    resolve_actor,
    unit_of_work,
)

app = typer.Typer(no_args_is_help=True, help="One decision for a whole cohort.")


@app.command("decide")
def cohort_decide(
    offering: Annotated[int, typer.Option(help="Course offering id (recog catalog list).")],
    module: Annotated[str, typer.Option(help="The target home module code.")],
    event: Annotated[str, typer.Argument(help="recognize, recognize_partially or reject.")],
    actor: ActorOpt = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data",
            help="key=value, as for recog case fire; without grade=, each student's "
            "own grade is converted.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Decide every waiting case of one offering and target module at once (all or none)."""
    from workflow import decide

    payload = parse_data(data or [], None)
    with unit_of_work() as s:
        who = resolve_actor(s, actor)
        fired = decide(
            s,
            offering_id=offering,
            module_code=module,
            event=event,
            data=payload,
            actor=who,
            now=ctx.now(),
            channel="cli",
        )
    if as_json:
        print_json(
            [{"case": f.case_id, "to": f.to_state, "grade": f.data.get("grade")} for f in fired]
        )
        return
    console.print(f"{event}: {len(fired)} case(s) decided")
    for f in fired:
        console.print(f"  case {f.case_id}: {f.to_state}, grade {f.data.get('grade', '-')}")
