"""office accounts: invitations to set a password, API token scopes and parents

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-07 21:00:00

``user_invitations`` holds the one-time links an office user sets a password with.
``api_tokens`` gets ``scope`` (read, write, admin; tokens made before keep what they could do:
admin, beneath their user's role) and ``parent_id`` (the token that made it; revoking a token
revokes its children). An invitation's e-mail concerns no case, so ``outbox.case_id`` may be
NULL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import models.base

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "user_invitations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_invitations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_invitations_token_hash")),
    )
    with op.batch_alter_table("user_invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_invitations_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("scope", sa.String(length=8), server_default="admin", nullable=False)
        )
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_parent_id_api_tokens"),
            "api_tokens",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_api_tokens_parent_id"), ["parent_id"], unique=False)
        batch_op.create_check_constraint(
            batch_op.f("ck_api_tokens_scope"), "scope IN ('read', 'write', 'admin')"
        )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM outbox WHERE case_id IS NULL")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_scope"), type_="check")
        batch_op.drop_index(batch_op.f("ix_api_tokens_parent_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_api_tokens_parent_id_api_tokens"), type_="foreignkey"
        )
        batch_op.drop_column("parent_id")
        batch_op.drop_column("scope")
    with op.batch_alter_table("user_invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_invitations_user_id"))
    op.drop_table("user_invitations")
