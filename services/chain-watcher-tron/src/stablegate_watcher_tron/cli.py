"""Entry point of the Tron watcher, which is not built yet."""

from __future__ import annotations

import sys


def main() -> int:
    print("stablegate: the Tron watcher is not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
