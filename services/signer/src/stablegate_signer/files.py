"""The signer's own files (seed, policy, state) must be writable by the signer's uid only."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def ownership_problem(path: Path, what: str, *, secret: bool = False) -> str | None:
    """Why `path` is unsafe to trust, or None: owner not our uid, or group/other may write
    (or, for a secret, read) it."""
    info = path.stat()
    if info.st_uid != os.getuid():
        return (
            f"the {what} {path} is owned by uid {info.st_uid}, not the signer's uid "
            f"{os.getuid()} (chown it)"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"the {what} {path} is writable by group or others (chmod go-w it)"
    if secret and info.st_mode & 0o077:
        return f"the {what} {path} is readable by others (chmod 600 it)"
    return None
