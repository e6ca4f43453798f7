"""Idempotency keys, rate limits, webhook secret rolls and delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("lock_token", sa.String(length=32), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_content_type", sa.String(length=100), nullable=True),
        sa.Column("response_body", sa.LargeBinary(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("merchant_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "rate_limit_buckets",
        sa.Column("bucket", sa.String(length=80), nullable=False),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("allowed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_rate_limit_buckets")),
        prefixes=["UNLOGGED"],
    )
    with op.batch_alter_table("webhook_endpoints") as table:
        table.add_column(sa.Column("previous_secret", sa.String(length=128), nullable=True))
        table.add_column(
            sa.Column("previous_secret_expires_at", sa.DateTime(timezone=True), nullable=True)
        )
        table.add_column(sa.Column("disabled_reason", sa.String(length=200), nullable=True))
        table.add_column(
            sa.Column("version", sa.Integer(), server_default=sa.text("0"), nullable=False)
        )
    with op.batch_alter_table("webhook_deliveries") as table:
        table.add_column(sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True))
        table.add_column(sa.Column("last_duration_ms", sa.Integer(), nullable=True))
        table.add_column(sa.Column("redelivery_of", sa.String(length=40), nullable=True))
    # The auto-disable rule asks "did this endpoint take anything since …?".
    op.create_index(
        "ix_webhook_deliveries_endpoint_delivered",
        "webhook_deliveries",
        ["endpoint_id", "delivered_at"],
        postgresql_where="status = 'succeeded'",
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_endpoint_delivered", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as table:
        for column in ("redelivery_of", "last_duration_ms", "last_attempt_at"):
            table.drop_column(column)
    with op.batch_alter_table("webhook_endpoints") as table:
        for column in (
            "version",
            "disabled_reason",
            "previous_secret_expires_at",
            "previous_secret",
        ):
            table.drop_column(column)
    op.drop_table("rate_limit_buckets")
    op.drop_index("ix_idempotency_keys_created_at", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
