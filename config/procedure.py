"""The recognition procedure as data: load it, validate it, and build its one static machine.

The procedure (states, events, actors, guards, deadlines, notifications) is a TOML file
(``config/procedure.toml`` unless ``RECOG_PROCEDURE_FILE`` names another). It is validated at
start-up, so an office that adapts it learns of a mistake before any case is touched, and is
turned into exactly one ``transitions.Machine`` per process: the library's FAQ advises one
class-level machine for many persisted objects, and a machine per case costs about 14 times
more per event (measured in bench/transitions.py).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import tomllib
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from types import MappingProxyType
from typing import Any

from transitions import Machine

from config.errors import ConfigurationError

DEFAULT_PROCEDURE = Path(__file__).with_name("procedure.toml")

# The languages every label of the procedure is written in (the pages' and e-mails' languages).
LANGUAGES = ("en", "de")
# The widths of the columns that store a state and an event name (models/tables.py).
STATE_WIDTH, EVENT_WIDTH = 24, 40
# What the engine knows how to do; a procedure can only name these (see workflow/cases/deadlines.py
# for their meaning). States and events are the procedure's own. The guards are named by the
# registry that runs them (workflow/cases/guards.py ``GUARDS``): config does not import the
# workflow, so the workflow checks the procedure's guard names when it first uses a procedure.
KNOWN_ROLES = ("clerk", "examiner", "board", "admin", "student", "import", "timer")
KNOWN_RECIPIENTS = ("student", "clerk", "examiner", "board")
KNOWN_DEADLINES = (
    "enrolment",
    "result",
    "transcript",
    "retake",
    "submission",
    "decision",
    "info_reply",
    "appeal_window",
    "board_decision",
)


@dataclass(frozen=True, slots=True)
class StateDef:
    name: str
    labels: Mapping[str, str]  # by language
    final: bool
    deadline: str | None
    todo: Mapping[str, str]  # the student's next step, by language
    # A final state that leaves the student free to open a new case for the same course
    # offering (the case ended without a decision: withdrawn, lapsed); any other state
    # blocks a second case, so one course is not decided twice.
    allows_new_case: bool = False

    @property
    def label(self) -> str:
        return self.labels[LANGUAGES[0]]


def _shown(value: Any) -> str:
    """A refused value as a refusal quotes it: short, whatever was sent."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    text = repr(value)
    return text if len(text) <= 42 else f"{text[:40]}..."


def _text(value: Any) -> str:
    # Numbers are accepted as their written form: "27" and 27 are the same grade.
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise ValueError("must be text")


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("must be a number such as 7.5")
    try:
        number = Decimal(str(value).strip().replace(",", "."))
    except InvalidOperation:
        raise ValueError(f"must be a number such as 7.5, not {_shown(value)}") from None
    if not number.is_finite():
        raise ValueError(f"must be a number such as 7.5, not {_shown(value)}")
    return value


def _integer(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value
    raise ValueError(f"must be a whole number, not {_shown(value)}")


def _date(value: Any) -> Any:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return value
    raise ValueError(f"must be a date as YYYY-MM-DD, not {_shown(value)}")


def _list(value: Any) -> Any:
    # A comma-separated text is a list too: that is how a command line or a form gives one.
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise ValueError("must be a list of names (or one text, separated by commas)")


def _mapping(value: Any) -> Any:
    if isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return value
    raise ValueError("must be a mapping of names to texts")


# How much an event field may hold, unless the procedure says otherwise (``max_length``: the
# characters of a value, or of each item of a list or mapping; ``max_items``: the items of a
# list or mapping). Event data ends up in the append-only audit trail, so every field is
# bounded; an office may tighten or widen a bound, never beyond ``MAX_LENGTH``/``MAX_ITEMS``.
DEFAULT_MAX_LENGTH: Mapping[str, int] = MappingProxyType(
    {"text": 2000, "number": 40, "integer": 40, "date": 40, "list": 120, "mapping": 4000}
)
DEFAULT_MAX_ITEMS = 50
MAX_LENGTH, MAX_ITEMS = 100_000, 1000
# A mapping's keys are names (the criteria of a refusal), never long texts.
MAX_KEY_LENGTH = 64


# The types an event field may have, each with its check; the check returns the value to
# keep (text fields keep numbers as text) or raises ValueError saying what was expected.
FIELD_TYPES: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "text": _text,
        "number": _number,
        "integer": _integer,
        "date": _date,
        "list": _list,
        "mapping": _mapping,
    }
)


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an event's data: its type, whether it must be given, and by whom."""

    name: str
    type: str
    required: bool
    by: tuple[str, ...]
    check: Callable[[Any], Any] = field(repr=False, compare=False)  # FIELD_TYPES[type], once
    max_length: int = 2000
    max_items: int = DEFAULT_MAX_ITEMS

    def bounded(self, value: Any) -> Any:
        """``value`` checked for its type and size (ValueError saying what is wrong), as it is
        kept: the size is checked before the type, so an oversize value costs no more than
        its length."""
        if isinstance(value, list | dict):
            if self.type not in ("list", "mapping"):
                return self.check(value)  # the type's own refusal
            if len(value) > self.max_items:
                raise ValueError(f"has {len(value)} items; it may have at most {self.max_items}")
            items = value.values() if isinstance(value, dict) else value
            for key in value if isinstance(value, dict) else ():
                if isinstance(key, str) and len(key) > MAX_KEY_LENGTH:
                    raise ValueError(
                        f"has a name of {len(key)} characters; names have at most {MAX_KEY_LENGTH}"
                    )
            for item in items:
                if isinstance(item, str) and len(item) > self.max_length:
                    raise ValueError(
                        f"has an item of {len(item)} characters; each may have at most "
                        f"{self.max_length}"
                    )
            return self.check(value)
        if isinstance(value, str | int) and not isinstance(value, bool):
            # Integers are measured by their digits (sys.int_info caps their text anyway).
            length = len(value) if isinstance(value, str) else len(str(abs(value)))
            # A list given as one text (comma-separated) may hold all its items.
            limit = self.max_length * (self.max_items if self.type == "list" else 1)
            if length > limit:
                raise ValueError(f"has {length} characters; it may have at most {limit}")
        return self.check(value)

    def describe(self) -> str:
        return f"{self.name} ({self.type}{', required' if self.required else ''})"


@dataclass(frozen=True, slots=True)
class EventDef:
    name: str
    sources: tuple[str, ...]
    dest: str
    actors: tuple[str, ...]
    guards: tuple[str, ...]
    notify: tuple[str, ...]
    prerequisite: str
    fields: Mapping[str, FieldDef] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    done: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    message: str = ""  # the e-mail it sends (tasks/templates/mail): its name if not given
    required: tuple[FieldDef, ...] = ()  # the fields of ``fields`` that must be given

    def __post_init__(self) -> None:
        # Computed once with the procedure: fire checks it on every call.
        object.__setattr__(self, "required", tuple(f for f in self.fields.values() if f.required))

    @property
    def takes(self) -> str:
        """What the event takes, as a refusal names it."""
        if not self.fields:
            return "no data"
        return ", ".join(f.describe() for f in self.fields.values())


@dataclass(frozen=True)
class Procedure:
    initial: str
    states: dict[str, StateDef]
    events: dict[str, EventDef]
    source: str
    machine: Machine = field(repr=False, compare=False)

    def allowing_new_case(self) -> frozenset[str]:
        """The states whose case does not block a new one for the same course offering."""
        return frozenset(s.name for s in self.states.values() if s.allows_new_case)

    def allowed_from(self, state: str) -> list[EventDef]:
        return [ev for ev in self.events.values() if state in ev.sources]

    def sources_of(self, *events: str) -> frozenset[str]:
        """The states the named events (those the procedure has) may happen from."""
        return frozenset(
            s for name in events if name in self.events for s in self.events[name].sources
        )

    def guarded_from(self, guard: str) -> frozenset[str]:
        """The states from which an event checked by ``guard`` may happen (e.g. the states
        an appeal can be filed from, for ``inside_appeal_window``)."""
        return frozenset(s for ev in self.events.values() if guard in ev.guards for s in ev.sources)

    def before(self, event: str) -> frozenset[str]:
        """The states from which ``event`` can still happen, now or later."""
        targets = set(self.sources_of(event))
        return frozenset(s for s in self.states if self.path_to(s, targets) is not None)

    def path_to(self, state: str, targets: set[str]) -> list[EventDef] | None:
        """The shortest sequence of events leading from ``state`` into ``targets``."""
        queue: deque[tuple[str, list[EventDef]]] = deque([(state, [])])
        seen = {state}
        while queue:
            here, path = queue.popleft()
            if here in targets:
                return path
            for ev in self.allowed_from(here):
                if ev.dest not in seen:
                    seen.add(ev.dest)
                    queue.append((ev.dest, [*path, ev]))
        return None

    def explain_illegal(self, case_ref: str, event: str, state: str) -> str:
        """Why ``event`` cannot happen in ``state``, and what has to happen first."""
        ev = self.events[event]
        head = f"cannot {event} {case_ref}: it is {state}"
        if self.states[state].final:
            return f"{head}, which is final; nothing can happen to it any more"
        path = self.path_to(state, set(ev.sources))
        if path:
            return f"{head}; {path[0].prerequisite}"
        options = ", ".join(e.name for e in self.allowed_from(state))
        return f"{head}; {event} is no longer possible (possible now: {options})"

    def mermaid(self) -> str:
        lines = ["stateDiagram-v2", f"    [*] --> {self.initial}"]
        for ev in self.events.values():
            for src in ev.sources:
                lines.append(f"    {src} --> {ev.dest}: {ev.name}")
        for st in self.states.values():
            if st.final:
                lines.append(f"    {st.name} --> [*]")
        return "\n".join(lines)

    def dot(self) -> str:
        lines = ["digraph recog {", "    rankdir=LR;", "    node [shape=box, style=rounded];"]
        for st in self.states.values():
            shape = ", peripheries=2" if st.final else ""
            lines.append(f'    {st.name} [label="{st.label}"{shape}];')
        for ev in self.events.values():
            for src in ev.sources:
                lines.append(f'    {src} -> {ev.dest} [label="{ev.name}"];')
        lines.append("}")
        return "\n".join(lines)


def _fail(source: str, message: str) -> ConfigurationError:
    return ConfigurationError(f"procedure {source}: {message}")


def _names(source: str, where: str, values: Any, known: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, list):
        raise _fail(source, f"{where} must be a list of names")
    for value in values:
        if value not in known:
            raise _fail(source, f"{where} names unknown {value!r}; known: {', '.join(known)}")
    return tuple(values)


def _words_list(source: str, where: str, values: Any) -> tuple[str, ...]:
    """A list of plain names whose meaning another layer knows (the guards)."""
    if isinstance(values, str) or not isinstance(values, list):
        raise _fail(source, f"{where} must be a list of names")
    for value in values:
        if not isinstance(value, str) or not value.isidentifier():
            raise _fail(source, f"{where}: {value!r} is not a name (letters, digits, _)")
    return tuple(values)


def _words(source: str, where: str, key: str, raw: Any) -> Mapping[str, str]:
    """A text in every language of ``LANGUAGES`` (label.en = ..., label.de = ...)."""
    if not isinstance(raw, dict) or not all(
        isinstance(raw.get(lang), str) and raw[lang].strip() for lang in LANGUAGES
    ):
        wanted = ", ".join(f"{key}.{lang}" for lang in LANGUAGES)
        raise _fail(source, f"{where}: {key} must be given in every language ({wanted})")
    return MappingProxyType({lang: raw[lang].strip() for lang in LANGUAGES})


def _bound(source: str, where: str, value: Any, ceiling: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= ceiling:
        raise _fail(
            source, f"{where} must be a whole number from 1 to {ceiling}, not {_shown(value)}"
        )
    return value


def _fields(source: str, where: str, raw: Any, actors: tuple[str, ...]) -> Mapping[str, FieldDef]:
    if not isinstance(raw, dict):
        raise _fail(source, f"{where}: fields must be a table of field = {{ type = ... }}")
    fields: dict[str, FieldDef] = {}
    for name, spec in raw.items():
        at = f"{where}: field {name}"
        if not name.isidentifier():
            raise _fail(source, f"{at}: a field name is a plain word (letters, digits, _)")
        if not isinstance(spec, dict):
            raise _fail(source, f'{at} must be a table such as {{ type = "text" }}')
        unknown = set(spec) - {"type", "required", "by", "max_length", "max_items"}
        if unknown:
            raise _fail(source, f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        kind = spec.get("type")
        if not isinstance(kind, str) or kind not in FIELD_TYPES:
            raise _fail(source, f"{at}: type {kind!r} is not one of {', '.join(FIELD_TYPES)}")
        by = _names(source, f"{at}: by", spec.get("by", list(actors)), actors)
        max_length = _bound(
            source,
            f"{at}: max_length",
            spec.get("max_length", DEFAULT_MAX_LENGTH[kind]),
            MAX_LENGTH,
        )
        if "max_items" in spec and kind not in ("list", "mapping"):
            raise _fail(source, f"{at}: max_items is for list and mapping fields, not {kind}")
        max_items = _bound(
            source, f"{at}: max_items", spec.get("max_items", DEFAULT_MAX_ITEMS), MAX_ITEMS
        )
        fields[name] = FieldDef(
            name,
            kind,
            bool(spec.get("required", False)),
            by,
            FIELD_TYPES[kind],
            max_length,
            max_items,
        )
    return MappingProxyType(fields)


def parse_procedure(raw: dict[str, Any], source: str) -> Procedure:
    """Validate a procedure definition and build its machine; every mistake is named."""
    states: dict[str, StateDef] = {}
    for name, spec in (raw.get("states") or {}).items():
        if not name.isidentifier() or len(name) > STATE_WIDTH:
            raise _fail(
                source,
                f"state name {name!r} must be a plain word (letters, digits, _) of at most "
                f"{STATE_WIDTH} characters",
            )
        deadline = spec.get("deadline")
        if deadline is not None and deadline not in KNOWN_DEADLINES:
            raise _fail(
                source,
                f"state {name}: unknown deadline {deadline!r}; known: {', '.join(KNOWN_DEADLINES)}",
            )
        final = bool(spec.get("final", False))
        if final and deadline:
            raise _fail(source, f"state {name} is final and cannot have a deadline")
        allows_new_case = spec.get("allows_new_case", False)
        if not isinstance(allows_new_case, bool):
            raise _fail(source, f"state {name}: allows_new_case must be true or false")
        if allows_new_case and not final:
            raise _fail(
                source,
                f"state {name}: allows_new_case is for final states (a running case blocks "
                "a second one for the same course)",
            )
        states[name] = StateDef(
            name,
            _words(source, f"state {name}", "label", spec.get("label")),
            final,
            deadline,
            _words(source, f"state {name}", "todo", spec.get("todo")),
            allows_new_case,
        )
    if not states:
        raise _fail(source, "no states defined")
    initial = raw.get("initial")
    if initial not in states:
        raise _fail(source, f"initial state {initial!r} is not one of the defined states")

    events: dict[str, EventDef] = {}
    for i, spec in enumerate(raw.get("events") or [], start=1):
        name = spec.get("name")
        if not isinstance(name, str) or not name.isidentifier() or len(name) > EVENT_WIDTH:
            raise _fail(
                source,
                f"event #{i} has no valid name (a plain word of at most {EVENT_WIDTH} characters)",
            )
        if name in events:
            raise _fail(source, f"event {name} is defined twice")
        where = f"event {name}"
        sources = spec.get("from") or []
        for src in [*sources, spec.get("to")]:
            if src not in states:
                raise _fail(source, f"{where} names unknown state {src!r}")
        actors = _names(source, f"{where}: actors", spec.get("actors", []), KNOWN_ROLES)
        if not actors:
            raise _fail(source, f"{where} has no actor: say who may fire it")
        events[name] = EventDef(
            name=name,
            sources=tuple(sources),
            dest=spec["to"],
            actors=actors,
            guards=_words_list(source, f"{where}: guards", spec.get("guards", [])),
            notify=_names(source, f"{where}: notify", spec.get("notify", []), KNOWN_RECIPIENTS),
            prerequisite=str(
                spec.get("prerequisite")
                or f"{name} must happen first (done by the {' or '.join(actors)})"
            ),
            fields=_fields(source, where, spec.get("fields", {}), actors),
            labels=_words(source, where, "label", spec.get("label")),
            done=_words(source, where, "done", spec.get("done")),
            message=str(spec.get("message") or name),
        )
        if not sources:
            raise _fail(source, f"{where} has no source state")
        for src in sources:
            if states[src].final:
                raise _fail(source, f"{where} leaves final state {src}")

    for st in states.values():
        if not st.final and not any(st.name in ev.sources for ev in events.values()):
            raise _fail(source, f"state {st.name} is not final but has no way out")
    reachable, frontier = {initial}, [initial]
    while frontier:
        here = frontier.pop()
        for ev in events.values():
            if here in ev.sources and ev.dest not in reachable:
                reachable.add(ev.dest)
                frontier.append(ev.dest)
    unreachable = [s for s in states if s not in reachable]
    if unreachable:
        raise _fail(source, f"unreachable state(s) from {initial}: {', '.join(unreachable)}")

    machine = Machine(
        model=None,
        states=list(states),
        initial=initial,
        transitions=[
            {"trigger": ev.name, "source": list(ev.sources), "dest": ev.dest}
            for ev in events.values()
        ],
        auto_transitions=False,
        send_event=False,
    )
    return Procedure(initial, states, events, source, machine)


def load_procedure(path: Path | None = None) -> Procedure:
    path = path or DEFAULT_PROCEDURE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigurationError(f"procedure file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"procedure {path}: not valid TOML: {exc}") from None
    return parse_procedure(raw, str(path))


@functools.cache
def get_procedure() -> Procedure:
    """The process-wide procedure and machine, built on first use."""
    from config.settings import get_settings

    return load_procedure(get_settings().procedure_file)
