"""Recog's data: SQLAlchemy 2 models, the engine and session factory, and migrations."""

from models.base import Base
from models.enums import (
    SYSTEM_ROLES,
    USER_ROLES,
    CaseState,
    DeadlineKind,
    InstitutionKind,
    OutboxStatus,
    Role,
)
from models.tables import (
    Case,
    CaseEvent,
    Document,
    HomeAchievement,
    Institution,
    Module,
    Offering,
    Outbox,
    Programme,
    Reminder,
    Student,
    User,
    case_targets,
    user_programmes,
)

__all__ = [
    "SYSTEM_ROLES",
    "USER_ROLES",
    "Base",
    "Case",
    "CaseEvent",
    "CaseState",
    "DeadlineKind",
    "Document",
    "HomeAchievement",
    "Institution",
    "InstitutionKind",
    "Module",
    "Offering",
    "Outbox",
    "OutboxStatus",
    "Programme",
    "Reminder",
    "Role",
    "Student",
    "User",
    "case_targets",
    "user_programmes",
]
