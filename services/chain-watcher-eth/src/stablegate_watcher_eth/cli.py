"""`stablegate-watcher-eth migrate | serve | reset-chain`."""

from __future__ import annotations

from collections.abc import Sequence

from stablegate_common.watcher import service
from stablegate_watcher_eth.app import SPEC


def main(argv: Sequence[str] | None = None) -> int:
    return service.main(SPEC, argv)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
