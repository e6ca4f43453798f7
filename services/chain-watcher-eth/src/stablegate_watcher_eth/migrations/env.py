"""Alembic environment of the Ethereum watcher schema (see stablegate_common.migrations)."""

from stablegate_common.migrations import run_env

run_env()
