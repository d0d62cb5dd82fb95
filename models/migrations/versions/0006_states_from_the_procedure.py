"""the case state is no longer a CHECK of a fixed list: states come from the procedure file

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 15:30:00

An office may add states by adapting its procedure (``RECOG_PROCEDURE_FILE``) without a
schema migration; the workflow is the only writer of ``cases.state`` and moves it through the
machine built from the validated procedure (docs/adr/0007-procedure-as-data.md).
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# The states of the default procedure as they stood when the CHECK was dropped: a downgrade
# puts that CHECK back (and fails, as it should, while a case is in any other state).
_DEFAULT_STATES = (
    "planned",
    "enrolled",
    "course_passed",
    "course_failed",
    "transcript_received",
    "submitted",
    "in_review",
    "info_requested",
    "recognized",
    "partially_recognized",
    "rejected",
    "appealed",
    "closed",
    "withdrawn",
    "lapsed",
)


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cases_state"), type_="check")


def downgrade() -> None:
    listed = ", ".join(f"'{state}'" for state in _DEFAULT_STATES)
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_check_constraint(op.f("ck_cases_state"), f"state IN ({listed})")
