"""`stablegate-gateway outgoing …` as an operator runs it: a process of its own on the
test's schema, JSON on stdout, a refusal on stderr with exit code 2."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from stablegate_gateway.context import GatewayContext
from stablegate_signer import documents
from tests.conftest import DATABASE_URL
from tests.gateway.outgoing_support import evm_plan, make_batch, signer, transfers_of

CLI = str(Path(sys.executable).with_name("stablegate-gateway"))


async def _cli(ctx: GatewayContext, *args: str) -> tuple[int, Any, str]:
    env = os.environ | {
        "DATABASE_URL": DATABASE_URL,
        "DATABASE_SCHEMA": ctx.settings.database.schema_name,
        "GATEWAY_EVM_XPUB": ctx.settings.gateway.evm_xpub,
        "STABLEGATE_ENVIRONMENT": "test",
        "LOG_LEVEL": "WARNING",
    }
    process = await asyncio.create_subprocess_exec(
        CLI,
        "outgoing",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    body = json.loads(out) if out.strip() else None
    assert process.returncode is not None
    return process.returncode, body, err.decode()


async def test_a_round_from_the_command_line(gateway_ctx: GatewayContext, tmp_path: Path) -> None:
    batch_id = await make_batch(gateway_ctx, evm_plan())
    code, listed, _ = await _cli(gateway_ctx, "list")
    assert code == 0
    assert [b["id"] for b in listed["data"]] == [batch_id]

    request_file = tmp_path / "request.json"
    code, _, err = await _cli(gateway_ctx, "export", batch_id, "-o", str(request_file))
    assert code == 0, err
    request = documents.load_request(request_file.read_text())
    signed_file = tmp_path / "signed.json"
    signed_file.write_text(documents.dump(signer(tmp_path).sign(request)))

    code, shown, err = await _cli(gateway_ctx, "import", str(signed_file))
    assert code == 0, err
    assert shown["status"] == "signed"
    assert {t.state for t in await transfers_of(gateway_ctx, batch_id)} == {"signed"}

    tampered = json.loads(signed_file.read_text())
    tampered["request_digest"] = "sha256:" + "1" * 64
    signed_file.write_text(json.dumps(tampered))
    code, _, err = await _cli(gateway_ctx, "import", str(signed_file))
    assert code == 2
    assert "digest" in err

    code, canceled, err = await _cli(gateway_ctx, "cancel", batch_id)
    assert code == 0, err
    assert canceled["status"] == "canceling"  # signed: watched until it cannot be mined
    code, _, err = await _cli(gateway_ctx, "show", "ob_missing")
    assert code == 2
    assert "No such outgoing batch" in err
