"""Who acts, and the one authorization policy that decides what they may see and do.

The same policy serves the CLI, the API, the pages and exports: ``case_scope`` narrows a SQL
query to the cases an actor may see, and ``may_see``/``check_may_fire`` answer for one case row.
A case the actor may not see is reported as *not found*, never as *forbidden*, so that ids
cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, false, true

from config.procedure import EventDef
from models import Case, Role
from workflow.errors import Forbidden


class Scope(StrEnum):
    """What an API token may do, beneath its user's role: ``read`` sees, ``write`` also
    changes cases and the office's data, ``admin`` also manages users and their access."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Scope).index(self)

    def covers(self, needed: Scope) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated actor. ``id`` is a user id for office roles and a student id for
    students; the system roles (import, timer) carry no id. An actor acting through an API
    token carries the token's id and ``scope``; everyone else has no scope to stay within."""

    role: Role
    id: int | None = None
    institution_id: int | None = None
    programme_ids: frozenset[int] = field(default_factory=frozenset)
    label: str = ""
    scope: Scope | None = None
    token_id: int | None = None

    @classmethod
    def system(cls, role: Role, institution_id: int | None = None) -> Actor:
        if role not in (Role.IMPORT, Role.TIMER):
            raise ValueError(f"{role} is not a system role")
        return cls(role=role, institution_id=institution_id, label=role.value)

    @classmethod
    def student(cls, student_id: int, institution_id: int | None) -> Actor:
        """A student acting for themself (``student#ID`` in the audit trail and the CLI)."""
        return cls(
            role=Role.STUDENT,
            id=student_id,
            institution_id=institution_id,
            label=f"student#{student_id}",
        )

    def __str__(self) -> str:
        return self.label or f"{self.role.value}#{self.id}"


def case_scope(actor: Actor) -> ColumnElement[bool]:
    """The SQL condition selecting exactly the cases ``actor`` may see."""
    if actor.role is Role.STUDENT:
        return Case.student_id == actor.id
    if actor.role in (Role.IMPORT, Role.TIMER):
        if actor.institution_id is None:
            return true()
        return Case.institution_id == actor.institution_id
    if actor.institution_id is None:
        return false()
    same_institution = Case.institution_id == actor.institution_id
    if actor.role is Role.EXAMINER:
        return and_(
            same_institution,
            (Case.programme_id.in_(actor.programme_ids)) | (Case.examiner_id == actor.id),
        )
    return same_institution


def scope_shape(actor: Actor) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The actor split into the shape of its scope and the values that fill it.

    Compiled hot reads (``workflow.cases.fastread``) build ``case_scope`` once per shape, for an
    actor whose id, institution and programmes are bind parameters (``symbolic_scope``),
    and bind these values on each call: the one policy serves them too."""
    programmes = sorted(actor.programme_ids)
    shape = (actor.role, actor.id is not None, actor.institution_id is not None, len(programmes))
    values: dict[str, Any] = {"scope_actor": actor.id, "scope_institution": actor.institution_id}
    values.update((f"scope_programme_{i}", p) for i, p in enumerate(programmes))
    return shape, values


def symbolic_scope(
    role: Role,
    has_id: bool,
    has_institution: bool,
    programmes: int,
) -> ColumnElement[bool]:
    """``case_scope`` of an actor of this shape, with bind parameters for its values."""
    return expression_scope(
        role,
        bindparam("scope_actor") if has_id else None,
        bindparam("scope_institution") if has_institution else None,
        frozenset(bindparam(f"scope_programme_{i}") for i in range(programmes)),
    )


def expression_scope(
    role: Role,
    actor_id: Any,
    institution_id: Any,
    programmes: Any,
) -> ColumnElement[bool]:
    """``case_scope`` of an actor of ``role`` whose id, institution and programmes are SQL
    expressions (bind parameters, or the columns and a subquery of a token lookup in the
    same statement): the one policy, rendered for a statement compiled once."""
    placeholder: Any = Actor(
        role=role, id=actor_id, institution_id=institution_id, programme_ids=programmes
    )
    return case_scope(placeholder)


def may_see(actor: Actor, row: Any) -> bool:
    """``case_scope`` for one already loaded case row (attributes of ``Case``)."""
    if actor.role is Role.STUDENT:
        return bool(row.student_id == actor.id)
    if actor.role in (Role.IMPORT, Role.TIMER):
        return actor.institution_id is None or row.institution_id == actor.institution_id
    if row.institution_id != actor.institution_id:
        return False
    if actor.role is Role.EXAMINER:
        return row.programme_id in actor.programme_ids or row.examiner_id == actor.id
    return True


def acting_role(actor: Actor, event: EventDef) -> str | None:
    """The role under which ``actor`` may fire ``event``, or None. An admin may do what a
    clerk may; nobody else borrows another role (decisions stay with examiners and board).
    An API token fires no event unless its scope covers ``write``."""
    if actor.scope is not None and not actor.scope.covers(Scope.WRITE):
        return None
    if actor.role.value in event.actors:
        return actor.role.value
    if actor.role is Role.ADMIN and Role.CLERK.value in event.actors:
        return Role.CLERK.value
    return None


def with_article(noun: str) -> str:
    """``noun`` after its indefinite article: "an examiner", "an admin", "a clerk" (the role
    names all start as they sound)."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def check_scope(actor: Actor | None, needed: Scope, doing: str) -> None:
    """Refuse an actor acting through a token whose scope does not cover ``needed``."""
    if actor is None or actor.scope is None or actor.scope.covers(needed):
        return
    raise Forbidden(
        f"this API token has the scope {actor.scope.value}; to {doing} it needs the scope "
        f"{needed.value} (create a token with --scope {needed.value})"
    )


def check_may_fire(actor: Actor, event: EventDef, case_ref: str) -> None:
    check_scope(actor, Scope.WRITE, f"{event.name} {case_ref}")
    if acting_role(actor, event) is None:
        allowed = " or ".join(event.actors)
        raise Forbidden(
            f"cannot {event.name} {case_ref}: {with_article(actor.role.value)} may not do "
            f"this; it is for the {allowed}"
        )
