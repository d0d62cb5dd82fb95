"""``recog case ...``: open, move and inspect cases."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from cli import context as ctx
from cli.context import (
    ActorOpt,
    JsonOpt,
    as_viewer,
    console,
    fail,
    local,
    parse_data,
    print_json,
    print_table,
    resolve_actor,
    unit_of_work,
)
from config.procedure import get_procedure
from models import Offering
from workflow import (
    Action,
    Actor,
    FileStore,
    allowed,
    assign_examiner,
    attach_document,
    case_side_by_side,
    catalog,
    fire,
    media_type_of,
    open_case,
    queries,
    record_result_date,
    set_targets,
)

app = typer.Typer(no_args_is_help=True, help="Open, move and inspect cases.")


def _find_offering(
    s: Session, course: str, term: str | None, partner: str | None, actor: Actor
) -> Offering:
    found, total = queries.catalogue(
        s, actor=actor, code=course, term=term, partner=partner, limit=1
    )
    if not found:
        fail(
            f"no course offering {course}"
            + (f" in term {term}" if term else "")
            + (f" at {partner}" if partner else "")
        )
    if total > 1:
        fail(f"course code {course} is ambiguous; add --term and/or --partner")
    return found[0][0]


@app.command("open")
def case_open(
    student: Annotated[str, typer.Option(help="The student's matriculation number.")],
    course: Annotated[str, typer.Option(help="The partner course code.")],
    term: Annotated[
        str | None, typer.Option(help="The term, if the code is offered often.")
    ] = None,
    partner: Annotated[str | None, typer.Option(help="The partner's SCHAC code.")] = None,
    target: Annotated[list[str] | None, typer.Option(help="Home module code (repeatable).")] = None,
    name: Annotated[str | None, typer.Option(help="Name, for a new student.")] = None,
    email: Annotated[str | None, typer.Option(help="E-mail, for a new student.")] = None,
    language: Annotated[str, typer.Option(help="de or en, for a new student.")] = "de",
    institution: Annotated[str | None, typer.Option(help="Home institution (SCHAC code).")] = None,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a case for a student and a partner course (the student is created if new)."""
    with unit_of_work() as s:
        who = resolve_actor(s, actor)
        home_id = who.institution_id
        if institution:
            home_id = catalog.institution_by_code(s, institution).id
        if home_id is None:
            fail("say which home institution: --institution CODE")
        stud = catalog.find_or_create_student(
            s,
            home_id,
            matriculation_number=student,
            name=name,
            email=email,
            preferred_language=language,
        )
        offering = _find_offering(s, course, term, partner, who)
        module_ids = queries.home_module_ids(s, target or [], institution_id=home_id)
        fired = open_case(
            s,
            student_id=stud.id,
            offering_id=offering.id,
            actor=who,
            now=ctx.now(),
            target_module_ids=module_ids,
            channel="cli",
        )
        zone = ctx.zones(s, [fired.case_id]).get(fired.case_id)
    if as_json:
        print_json(
            {
                "id": fired.case_id,
                "state": fired.to_state,
                "due_at": fired.due_at,
                "due_kind": fired.due_kind,
            }
        )
        return
    console.print(
        f"opened case {fired.case_id} ({fired.to_state}); next deadline: "
        f"{fired.due_kind or '-'} {local(fired.due_at, zone)}"
    )


@app.command("fire")
def case_fire(
    case: Annotated[int, typer.Argument(help="Case number.")],
    event: Annotated[str, typer.Argument(help="Event name (see: recog workflow show).")],
    actor: ActorOpt = None,
    data: Annotated[
        list[str] | None,
        typer.Option(
            "--data", help="key=value (repeatable; a.b=value nests; JSON values allowed)."
        ),
    ] = None,
    data_file: Annotated[Path | None, typer.Option(help="A JSON object with the data.")] = None,
    version: Annotated[
        int | None, typer.Option(help="Only act if the case is still at this version.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Fire an event on a case."""
    payload = parse_data(data or [], data_file)
    with unit_of_work() as s:
        who = resolve_actor(s, actor, case)
        fired = fire(
            s,
            case,
            event,
            actor=who,
            now=ctx.now(),
            data=payload,
            channel="cli",
            expected_version=version,
        )
        zone = ctx.zones(s, [fired.case_id]).get(fired.case_id)
    if as_json:
        print_json(
            {
                "case": fired.case_id,
                "seq": fired.seq,
                "event": fired.event,
                "from": fired.from_state,
                "to": fired.to_state,
                "due_at": fired.due_at,
                "due_kind": fired.due_kind,
                "notifications": len(fired.outbox),
            }
        )
        return
    console.print(
        f"case {fired.case_id}: {fired.event}: {fired.from_state} -> "
        f"{fired.to_state}; next deadline: {fired.due_kind or '-'} "
        f"{local(fired.due_at, zone)}; {len(fired.outbox)} notification(s) queued"
    )


@app.command("assign")
def case_assign(case: int, examiner: str, actor: ActorOpt = None) -> None:
    """Assign the examiner who reviews a case."""
    with unit_of_work() as s:
        who = resolve_actor(s, actor, case)
        assign_examiner(s, case, examiner, actor=who, now=ctx.now(), channel="cli")
    console.print(f"case {case}: examiner {examiner} assigned")


@app.command("result-date")
def case_result_date(
    case: int,
    date: Annotated[str, typer.Argument(help="The date of the partner's result, YYYY-MM-DD.")],
    actor: ActorOpt = None,
) -> None:
    """Record the date of a partner's result that its transcript left unknown."""
    with unit_of_work() as s:
        who = resolve_actor(s, actor, case)
        record_result_date(s, case, date, actor=who, now=ctx.now(), channel="cli")
    console.print(f"case {case}: result date {date} recorded")


@app.command("target")
def case_target(
    case: int,
    modules: Annotated[list[str], typer.Argument(help="Module codes.")],
    actor: ActorOpt = None,
) -> None:
    """Set the home module(s) a case should be credited to."""
    with unit_of_work() as s:
        who = resolve_actor(s, actor, case)
        set_targets(s, case, modules, actor=who, now=ctx.now(), channel="cli")
    console.print(f"case {case}: targets {', '.join(modules)}")


@app.command("attach")
def case_attach(
    case: int,
    file: Annotated[Path, typer.Argument(help="The document (PDF, XML, ...).")],
    kind: Annotated[
        str, typer.Option(help="transcript, evidence, notice or correspondence.")
    ] = "transcript",
    actor: ActorOpt = None,
) -> None:
    """Attach a document to a case (stored by its SHA-256 under the data directory)."""
    if not file.is_file():
        fail(f"{file}: no such file")
    limit = ctx.settings().max_document_bytes
    with file.open("rb") as fh:
        content = fh.read(limit + 1)  # never more than the limit into memory
    media = media_type_of(file.name)
    with unit_of_work() as s:
        who = resolve_actor(s, actor, case)
        doc_id, _ = attach_document(
            s,
            case,
            content=content,
            filename=file.name,
            media_type=media,
            kind=kind,
            store=FileStore(ctx.settings().documents_dir),
            actor=who,
            now=ctx.now(),
            channel="cli",
            max_bytes=limit,
        )
    console.print(f"case {case}: document {doc_id} ({kind}, {len(content)} bytes) attached")


@app.command("show")
def case_show(case: int, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """Show a case: where it stands, its deadline, documents and what can happen next."""
    with unit_of_work() as s:
        viewer = as_viewer(s, actor, case)
        detail = queries.case_detail(s, case, actor=viewer, now=ctx.now())
        if allowed(viewer, Action.SEE_INTERNALS):
            detail["conversions"] = case_side_by_side(
                s, case, actor=viewer, rounding=ctx.settings().grade_rounding
            )
        zone = ctx.zones(s, [case]).get(case)
    if as_json:
        print_json(detail)
        return
    dl = detail["deadline"]
    late = f" [bold red]({dl['overdue_days']} days overdue)[/]" if dl["overdue_days"] else ""
    course = detail["course"]
    console.print(
        f"[bold]Case {detail['id']}[/]  {detail['state_label']} "
        f"([cyan]{detail['state']}[/], version {detail['version']})"
    )
    console.print(
        f"Student:   {detail['student']['name']} ({detail['student']['matriculation_number']})"
    )
    console.print(
        f"Course:    {course['partner_name']}: {course['code']} {course['title']} "
        f"({course['term']}, {course['ects']} ECTS, EQF {course['eqf_level']})"
    )
    targets = ", ".join(f"{t['code']} {t['title']}" for t in detail["targets"]) or "-"
    console.print(f"Targets:   {targets}")
    console.print(f"Examiner:  {detail['examiner'] or '-'}")
    console.print(f"Deadline:  {dl['kind'] or '-'} {local(dl['due_at'], zone)}{late}")
    if detail["result"]:
        console.print(
            f"Result:    {json.dumps(detail['result'], ensure_ascii=False)}", markup=False
        )
    for flag in detail["result_flags"]:
        if flag["field"] == "date":
            console.print(
                "Flag:      the result's date is unknown (the transcript gave none); a clerk "
                f"records it: recog case result-date {detail['id']} YYYY-MM-DD",
                markup=False,
            )
        else:
            what = "ECTS credits" if flag["field"] == "ects" else "EQF level"
            console.print(
                f"Flag:      {what} {flag['result']} on the transcript, "
                f"{flag['catalogue']} in the catalogue",
                markup=False,
            )
    shown = detail.get("conversions")
    if shown:
        for method, name in (("bavarian", "Bavarian"), ("percentile", "Percentile")):
            value = shown[method]
            console.print(
                f"{name + ':':<10} "
                + (
                    f"{shown['original']} ({shown['scheme']}) -> {value['grade']}"
                    if value
                    else "not available: "
                    + (shown[f"{method}_error"] or shown["tables_missing"] or "-")
                ),
                markup=False,
            )
        if shown["difference"] is not None:
            console.print(
                f"Flag:      the two conversions differ by {shown['difference']}"
                if shown["differs"]
                else f"Flag:      the two conversions agree within {shown['threshold']}"
            )
    if detail["decision"]:
        console.print(f"Decision:  {json.dumps(detail['decision'], ensure_ascii=False)}")
    for doc in detail["documents"]:
        console.print(
            f"Document:  #{doc['id']} {doc['kind']} {doc['filename']} ({doc['size']} bytes)"
        )
    shown_precedents = detail["precedents"] or {"valid": [], "suggestion": {}}
    for p in shown_precedents["valid"]:
        console.print(
            f"Precedent: case {p['case']}: {p['module']} {p['outcome']}"
            + (f" ({p['grade']})" if p["grade"] else "")
            + f", {local(p['decided_at'], zone)}"
        )
    for module_code, p in shown_precedents["suggestion"].items():
        console.print(
            f"Suggested: {module_code}: {p['outcome']}"
            + (f" with grade {p['grade']}" if p["grade"] else "")
        )
    nxt = ", ".join(f"{e['event']} ({'/'.join(e['actors'])})" for e in detail["next_events"])
    console.print(f"Next:      {nxt or 'nothing: the case is final'}")


@app.command("export")
def case_export(
    case: int,
    out: Annotated[
        Path | None, typer.Option("--out", help="Write to this file instead of standard output.")
    ] = None,
    actor: ActorOpt = None,
) -> None:
    """Export a case's decision as ELMO v2.0 (resultOfRecognition), with its notice."""
    from workflow import export_decision_document

    with unit_of_work() as s:
        document = export_decision_document(
            s,
            case,
            actor=as_viewer(s, actor, case),
            settings=ctx.settings(),
            store=FileStore(ctx.settings().documents_dir),
        )
    if out is None:
        sys.stdout.buffer.write(document)
    else:
        out.write_bytes(document)
        console.print(f"case {case}: ELMO v2.0 written to {out} ({len(document)} bytes)")


@app.command("list")
def case_list(
    search: Annotated[
        str | None,
        typer.Option(
            "--search",
            "-q",
            help="Free text: every word in the student's name or matriculation number, the "
            "course's code or title, or the case number (any case).",
        ),
    ] = None,
    state: Annotated[str | None, typer.Option(help="Only cases in this state.")] = None,
    partner: Annotated[
        str | None, typer.Option(help="Only cases at this partner (its SCHAC code).")
    ] = None,
    course: Annotated[
        str | None, typer.Option(help="Only cases of this partner course code.")
    ] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only cases past a deadline.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    actor: ActorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List cases (the actor's, if --actor is given), overdue ones first with --overdue: the
    same search as the dashboard's and the API's."""
    proc = get_procedure()
    if state and state not in proc.states:
        fail(f"unknown state {state!r}; states are: {', '.join(proc.states)}")
    with unit_of_work() as s:
        rows, total = queries.search_cases(
            s,
            actor=as_viewer(s, actor),
            now=ctx.now(),
            state=state,
            partner=partner,
            course=course,
            overdue=overdue,
            text=search,
            sort="due_at" if overdue else "id",
            limit=limit,
            offset=offset,
        )
        zone_of = ctx.zones(s, [r["id"] for r in rows])
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["due"] = f"{r['due_kind'] or '-'} {local(r['due_at'], zone_of.get(r['id']))}"
        r["late"] = f"[bold red]{r['overdue_days']} d[/]" if r["overdue_days"] else ""
    print_table(["id", "state", "student", "partner", "course", "term", "due", "late"], rows)
    if total > offset + len(rows):
        console.print(f"{len(rows)} of {total} shown; see more with --offset {offset + len(rows)}")


@app.command("history")
def case_history(case: int, actor: ActorOpt = None, as_json: JsonOpt = False) -> None:
    """The audit trail of one case, oldest first."""
    with unit_of_work() as s:
        rows = queries.history(s, case, actor=as_viewer(s, actor, case))
        zone = ctx.zones(s, [case]).get(case)
    if as_json:
        print_json(rows)
        return
    for r in rows:
        r["when"] = local(r["at"], zone)
        r["change"] = f"{r['from'] or '-'} -> {r['to']}" if r["from"] != r["to"] else "-"
        r["who"] = f"{r['actor_role']}#{r['actor_id']}" if r["actor_id"] else r["actor_role"]
        r["details"] = json.dumps(r["data"], ensure_ascii=False)[:60]
    print_table(["seq", "when", "event", "change", "who", "channel", "details"], rows)
