"""Entry point of the BNB Smart Chain watcher, which is not built yet."""

from __future__ import annotations

import sys


def main() -> int:
    print("stablegate: the BNB Smart Chain watcher is not built yet", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
