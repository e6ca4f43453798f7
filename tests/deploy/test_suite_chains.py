"""`make run` keeps the suite's state only with the devnet chains it was built on
(scripts/suite.py `reset_for_new_chains`): the same genesis hashes keep it, new ones (or
none recorded) drop its schemas, exchange and demo state."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from scripts import suite
from scripts.suite import ServiceSpec, reset_for_new_chains

from tests.conftest import DATABASE_URL, RABBITMQ_URL, run_on_own_loop, unique


async def _schema_exists(name: str) -> bool:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_namespace WHERE nspname = $1", name)
    finally:
        await conn.close()
    return found is not None


async def _create_schema(name: str) -> None:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{name}"')
    finally:
        await conn.close()


def test_the_suite_state_goes_with_its_chains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(suite, "SUITE_CHAINS", tmp_path / "chains.json")
    monkeypatch.setattr(suite, "DEMO_STATE", tmp_path / "demo.json")
    schema = unique("sg_suitechains")
    exchange = unique("sg-suitechains")
    services = [ServiceSpec("gateway", schema, 0)]
    first = {"ethereum": "0x" + "01" * 32, "tron": "02" * 32}
    try:
        run_on_own_loop(_create_schema(schema))
        (tmp_path / "demo.json").write_text("{}")
        # Nothing recorded: state of unknown chains is dropped.
        assert reset_for_new_chains(DATABASE_URL, RABBITMQ_URL, exchange, services, first)
        assert not run_on_own_loop(_schema_exists(schema))
        assert not (tmp_path / "demo.json").exists()

        run_on_own_loop(_create_schema(schema))
        # The same chains (a devnet left running, a kill -9 of make run): kept.
        assert not reset_for_new_chains(DATABASE_URL, RABBITMQ_URL, exchange, services, first)
        assert run_on_own_loop(_schema_exists(schema))

        # One chain started again from block 0: everything goes.
        again = {**first, "tron": "03" * 32}
        assert reset_for_new_chains(DATABASE_URL, RABBITMQ_URL, exchange, services, again)
        assert not run_on_own_loop(_schema_exists(schema))
    finally:
        run_on_own_loop(suite._drop_schemas(DATABASE_URL, names=[schema]))
