"""Alembic environment of the Tron watcher schema (see stablegate_common.migrations)."""

from stablegate_common.migrations import run_env

run_env()
