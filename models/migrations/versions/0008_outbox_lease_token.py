"""outbox rows carry the token of the relay claim that holds them

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-07 21:10:00

A relay may renew a row's lease, mark it sent or failed, or hand it back only while the row
carries its claim's token: a relay whose lease ran out (a slow mail server, a long batch)
then finds the row taken over instead of sending it a second time. Rows pending at the
upgrade have no token; the next claim gives them one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("lease_token")
