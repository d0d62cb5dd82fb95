"""imported results and precedents

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 15:48:35.141208
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "imported_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column(
            "learner",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column(
            "candidates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("imported_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('matched', 'unmatched', 'ambiguous', 'resolved')",
            name=op.f("ck_imported_results_status"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_imported_results_case_id_cases"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_imported_results_institution_id_institutions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imported_results")),
        sa.UniqueConstraint(
            "file_sha256", "line", name=op.f("uq_imported_results_file_sha256_line")
        ),
    )
    with op.batch_alter_table("imported_results", schema=None) as batch_op:
        batch_op.create_index("ix_imported_results_status", ["status"], unique=False)

    op.create_table(
        "precedents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.Integer(), nullable=False),
        sa.Column("course_code", sa.String(length=60), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=False),
        sa.Column("regulation_version", sa.String(length=60), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("grade", sa.String(length=10), nullable=True),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("event_seq", sa.Integer(), nullable=False),
        sa.Column("decided_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('credited', 'not_credited')", name=op.f("ck_precedents_outcome")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_precedents_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_precedents_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["module_id"], ["modules.id"], name=op.f("fk_precedents_module_id_modules")
        ),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["institutions.id"], name=op.f("fk_precedents_partner_id_institutions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_precedents")),
        sa.UniqueConstraint(
            "case_id",
            "event_seq",
            "module_id",
            name=op.f("uq_precedents_case_id_event_seq_module_id"),
        ),
    )
    with op.batch_alter_table("precedents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_precedents_pair",
            ["institution_id", "partner_id", "course_code", "module_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("precedents", schema=None) as batch_op:
        batch_op.drop_index("ix_precedents_pair")

    op.drop_table("precedents")
    with op.batch_alter_table("imported_results", schema=None) as batch_op:
        batch_op.drop_index("ix_imported_results_status")

    op.drop_table("imported_results")
