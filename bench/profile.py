"""Where a process spends its time: py-spy samples, summarized.

`record(pid, seconds, out)` runs `py-spy record` in the collapsed ("raw") format against
a running process; `summarize(path)` turns the stacks into the functions that own the
most samples, inclusive (the function or anything it calls) and self (the function's own
code). `python -m bench.profile FILE` prints that summary for a file recorded earlier.

py-spy is a dev dependency of the workspace; it needs ptrace rights over the process (root,
or the same user with `kernel.yama.ptrace_scope` 0).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# Frames every stack passes through (the event loop, the entry point): no news inclusive.
_PLUMBING = ("(asyncio/runners.py)", "(asyncio/base_events.py)", "(asyncio/events.py)", "cli.py)")
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Hotspot:
    frame: str
    samples: int
    share: float  # of all samples


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: `uv sync` installs the dev dependencies")
    return found


def start_recording(
    pid: int, seconds: float, out: Path, *, rate: int = 100
) -> subprocess.Popen[bytes]:
    """Start sampling `pid` for `seconds` into `out` (collapsed stacks); wait on the result."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _short(frame: str) -> str:
    """`func (path/to/module.py:12)` → `func (package/module.py)`: lines merged."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def _stacks(path: Path) -> Iterator[tuple[list[str], int]]:
    """(frames outermost first, samples) per line of a collapsed-stack file; py-spy's
    leading thread or process name is not a frame and is dropped."""
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = [f for f in (_short(f) for f in stack.split(";") if f) if "(" in f]
        if frames:
            yield frames, int(count_text)


def summarize(path: Path, top: int = 15) -> tuple[int, list[Hotspot], list[Hotspot]]:
    """(total samples, inclusive hotspots, self hotspots) of a collapsed-stack file."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(path):
        total += count
        for frame in set(frames):
            if not frame.endswith(_PLUMBING):
                inclusive[frame] += count
        own[frames[-1]] += count

    def spots(counter: Counter[str]) -> list[Hotspot]:
        return [Hotspot(f, n, n / total if total else 0.0) for f, n in counter.most_common(top)]

    return total, spots(inclusive), spots(own)


def breakdown(path: Path, anchor: str, depth: int = 1, top: int = 15) -> tuple[int, list[Hotspot]]:
    """Samples under the innermost frame starting with `anchor`, by the `depth` frames
    below it (e.g. what a request handler's time goes to)."""
    below: Counter[str] = Counter()
    total = 0
    for frames, count in _stacks(path):
        hits = [i for i, frame in enumerate(frames) if frame.startswith(anchor)]
        if not hits:
            continue
        total += count
        children = frames[hits[-1] + 1 : hits[-1] + 1 + depth]
        below[" > ".join(children) or "(itself)"] += count
    return total, [Hotspot(f, n, n / total) for f, n in below.most_common(top)]


def render(path: Path, top: int = 15) -> str:
    total, inclusive, own = summarize(path, top)
    lines = [f"{path.name}: {total} samples"]
    for title, spots in (("inclusive", inclusive), ("self", own)):
        lines.append(f"  {title}:")
        lines += [f"    {s.share:6.1%}  {s.frame}" for s in spots]
    return "\n".join(lines)


def main() -> None:
    cli = argparse.ArgumentParser(description="Summarize py-spy collapsed stacks.")
    cli.add_argument("files", nargs="+", type=Path)
    cli.add_argument("--top", type=int, default=15)
    cli.add_argument("--below", help="break down the time under frames starting with this")
    cli.add_argument("--depth", type=int, default=1, help="frames shown below --below")
    args = cli.parse_args()
    for path in args.files:
        if args.below:
            total, spots = breakdown(path, args.below, args.depth, args.top)
            print(f"{path.name}: {total} samples under {args.below}")
            print("\n".join(f"  {s.share:6.1%}  {s.frame}" for s in spots))
        else:
            print(render(path, args.top))


if __name__ == "__main__":
    main()
