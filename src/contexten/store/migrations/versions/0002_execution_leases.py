"""execution leases: owner, expiry, takeovers

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05 09:15:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workflow_executions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_owner", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("takeovers", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("taken_over_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("taken_over_from", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_workflow_executions_taken_over_from"),
            ["taken_over_from"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("workflow_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_workflow_executions_taken_over_from"))
        batch_op.drop_column("taken_over_from")
        batch_op.drop_column("taken_over_at")
        batch_op.drop_column("takeovers")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_owner")
