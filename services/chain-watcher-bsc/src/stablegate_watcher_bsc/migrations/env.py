"""Alembic environment of the BNB Smart Chain watcher schema (see stablegate_common.migrations)."""

from stablegate_common.migrations import run_env

run_env()
