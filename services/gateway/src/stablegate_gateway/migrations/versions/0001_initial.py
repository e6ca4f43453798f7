"""Initial gateway schema: merchants, keys, address pool, intents, transfers, events,
webhooks, balances, network heads, and the bus outbox/inbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from stablegate_common.bus.migrations import create_bus_tables, drop_bus_tables

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "balances",
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("asset", sa.String(length=8), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("available_base_units", sa.Numeric(78, 0), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("merchant_id", "network", "asset", name=op.f("pk_balances")),
    )
    op.create_table(
        "deposit_addresses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("family", sa.String(length=8), nullable=False),
        sa.Column("derivation_index", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("network", sa.String(length=16), nullable=True),
        sa.Column("allocated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cooling_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "provisioned_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deposit_addresses")),
        sa.UniqueConstraint("family", "address", name=op.f("uq_deposit_addresses_family_address")),
        sa.UniqueConstraint(
            "family", "derivation_index", name=op.f("uq_deposit_addresses_family_derivation_index")
        ),
    )
    op.create_index(
        "ix_deposit_addresses_free",
        "deposit_addresses",
        ["family", "derivation_index"],
        unique=False,
        postgresql_where="status = 'free'",
    )
    op.create_table(
        "merchants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_merchants")),
    )
    op.create_table(
        "network_heads",
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("head_block", sa.BigInteger(), nullable=False),
        sa.Column("scanned_block", sa.BigInteger(), nullable=False),
        sa.Column("head_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("network", name=op.f("pk_network_heads")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_api_keys_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_merchant_id"), "api_keys", ["merchant_id"], unique=False)
    op.create_table(
        "events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("object_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_events_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_merchant_id_id", "events", ["merchant_id", "id"], unique=False)
    op.create_index(op.f("ix_events_object_id"), "events", ["object_id"], unique=False)
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("exception", sa.String(length=24), nullable=True),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("asset", sa.String(length=8), nullable=False),
        sa.Column("token_contract", sa.String(length=64), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("amount_base_units", sa.Numeric(78, 0), nullable=False),
        sa.Column("amount_pending_base_units", sa.Numeric(78, 0), nullable=False),
        sa.Column("amount_confirmed_base_units", sa.Numeric(78, 0), nullable=False),
        sa.Column("funded_before_end", sa.Boolean(), nullable=False),
        sa.Column("deposit_address", sa.String(length=64), nullable=False),
        sa.Column("deposit_address_id", sa.String(length=40), nullable=False),
        sa.Column("confirmations_required", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("metadata", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("canceled_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deposit_address_id"],
            ["deposit_addresses.id"],
            name=op.f("fk_payment_intents_deposit_address_id_deposit_addresses"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_payment_intents_merchant_id_merchants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
    )
    op.create_index(
        "ix_payment_intents_deposit_address",
        "payment_intents",
        ["deposit_address", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_payment_intents_merchant_id_id", "payment_intents", ["merchant_id", "id"], unique=False
    )
    op.create_index(
        "ix_payment_intents_open_expiry",
        "payment_intents",
        ["expires_at"],
        unique=False,
        postgresql_where="status IN ('awaiting_payment','partially_paid','confirming')",
    )
    op.create_index(
        op.f("ix_payment_intents_reference"), "payment_intents", ["reference"], unique=False
    )
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("merchant_id", sa.String(length=40), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("enabled_events", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_webhook_endpoints_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_merchant_id"), "webhook_endpoints", ["merchant_id"], unique=False
    )
    op.create_table(
        "transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("token_contract", sa.String(length=64), nullable=False),
        sa.Column("tx_hash", sa.String(length=80), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(length=80), nullable=False),
        sa.Column("block_timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("from_address", sa.String(length=64), nullable=False),
        sa.Column("to_address", sa.String(length=64), nullable=False),
        sa.Column("amount_base_units", sa.Numeric(78, 0), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("confirmations", sa.Integer(), nullable=False),
        sa.Column("chain_sequence", sa.Integer(), nullable=False),
        sa.Column(
            "detected_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["payment_intents.id"],
            name=op.f("fk_transfers_intent_id_payment_intents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint(
            "network", "tx_hash", "log_index", name=op.f("uq_transfers_network_tx_hash_log_index")
        ),
    )
    op.create_index(op.f("ix_transfers_intent_id"), "transfers", ["intent_id"], unique=False)
    op.create_index(op.f("ix_transfers_to_address"), "transfers", ["to_address"], unique=False)
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("endpoint_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_webhook_deliveries_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        unique=False,
        postgresql_where="status = 'pending'",
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_id",
        "webhook_deliveries",
        ["endpoint_id", "id"],
        unique=False,
    )


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "webhook_endpoints",
        "events",
        "transfers",
        "payment_intents",
        "deposit_addresses",
        "api_keys",
        "balances",
        "network_heads",
        "merchants",
    ):
        op.drop_table(table)
    drop_bus_tables()
