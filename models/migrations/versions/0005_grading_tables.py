"""grading tables (percentile conversion) and the ISCED-F code of an offering

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import models.base

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("offerings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("isced_code", sa.String(length=10), nullable=True))

    op.create_table(
        "grading_tables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("institution_id", sa.Integer(), nullable=False),
        sa.Column("scheme", sa.String(length=60), nullable=False),
        sa.Column("scope", sa.String(length=80), nullable=False),
        sa.Column("isced_code", sa.String(length=10), nullable=True),
        sa.Column("offering_id", sa.Integer(), nullable=True),
        sa.Column("programme_id", sa.Integer(), nullable=True),
        sa.Column("module_id", sa.Integer(), nullable=True),
        sa.Column("reference_year", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column(
            "grades",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('partner', 'home')", name=op.f("ck_grading_tables_kind")),
        sa.CheckConstraint(
            "source IN ('ewp', 'result_distribution', 'manual')",
            name=op.f("ck_grading_tables_source"),
        ),
        sa.CheckConstraint(
            "reference_year BETWEEN 1900 AND 2999", name=op.f("ck_grading_tables_reference_year")
        ),
        sa.CheckConstraint(
            "kind = 'home' OR (module_id IS NULL AND programme_id IS NULL)",
            name=op.f("ck_grading_tables_partner_scope"),
        ),
        sa.CheckConstraint(
            "kind = 'partner' OR offering_id IS NULL", name=op.f("ck_grading_tables_home_scope")
        ),
        sa.CheckConstraint(
            "(CASE WHEN isced_code IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN offering_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN programme_id IS NULL THEN 0 ELSE 1 END"
            " + CASE WHEN module_id IS NULL THEN 0 ELSE 1 END) <= 1",
            name=op.f("ck_grading_tables_one_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["institution_id"],
            ["institutions.id"],
            name=op.f("fk_grading_tables_institution_id_institutions"),
        ),
        sa.ForeignKeyConstraint(
            ["module_id"],
            ["modules.id"],
            name=op.f("fk_grading_tables_module_id_modules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["offering_id"],
            ["offerings.id"],
            name=op.f("fk_grading_tables_offering_id_offerings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["programme_id"],
            ["programmes.id"],
            name=op.f("fk_grading_tables_programme_id_programmes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grading_tables")),
        sa.UniqueConstraint(
            "institution_id",
            "kind",
            "scheme",
            "scope",
            "reference_year",
            "source",
            name=op.f("uq_grading_tables_key"),
        ),
    )


def downgrade() -> None:
    op.drop_table("grading_tables")
    with op.batch_alter_table("offerings", schema=None) as batch_op:
        batch_op.drop_column("isced_code")
