"""Where the devnet leaves what it started: one directory (devnet/.state by default) with,
per network, a pid file, a log and a JSON description (ports, contracts, accounts), and
one assets.json overlay that every service reads through STABLEGATE_ASSETS_FILE.

Shared by the anvil CLI (devnet/devnet.py), the Tron devnet (devnet/tron) and the
Compose image's node launcher (deploy/docker/devnet_node.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def update_assets_file(path: Path, network: str, overlay: dict[str, Any] | None) -> None:
    """Add (or with None remove) one network in the shared assets.json."""
    current: dict[str, Any] = {"networks": {}}
    if path.exists():
        current = json.loads(path.read_text())
    current["networks"].pop(network, None)
    if overlay is not None:
        current["networks"].update(overlay["networks"])
    if current["networks"]:
        write_json(path, current)
    else:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class StateFiles:
    """Where `start` leaves one network's pid, log and state, and the shared assets.json."""

    directory: Path
    network: str

    @property
    def pid(self) -> Path:
        return self.directory / f"{self.network}.pid"

    @property
    def log(self) -> Path:
        return self.directory / f"{self.network}.log"

    @property
    def state(self) -> Path:
        return self.directory / f"{self.network}.json"

    @property
    def assets(self) -> Path:
        return self.directory / "assets.json"

    def read_state(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.state.read_text()) if self.state.exists() else {}
        return data
