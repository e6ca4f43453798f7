"""No float ever touches money: the source of every package is scanned for conversions to
float, and for Decimals built from float literals.

Timing and metrics code may use floats (seconds, backoff, histogram observations); such a
file must be listed below with the reason, and the list is checked for stale entries so it
stays short. Type annotations (`seconds: float`) are not conversions and are not flagged.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCANNED = ("libs", "services")

ALLOWED: dict[str, str] = {
    "libs/common/src/stablegate_common/bus/connection.py": "reconnect backoff in seconds",
    "libs/common/src/stablegate_common/bus/outbox.py": "publish-lag histogram in seconds",
}


def float_uses(source: str) -> list[tuple[int, str]]:
    """Line numbers and descriptions of float conversions in `source`."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        if isinstance(node.func, ast.Name) and node.func.id == "float":
            found.append((node.lineno, "float(...)"))
        type_check = isinstance(node.func, ast.Name) and node.func.id in {
            "isinstance",
            "issubclass",
        }
        arguments = [] if type_check else [*node.args, *(k.value for k in node.keywords)]
        for arg in arguments:
            if isinstance(arg, ast.Name) and arg.id == "float":
                found.append((arg.lineno, "float passed as a converter"))
        if isinstance(node.func, ast.Name) and node.func.id == "Decimal":
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, float):
                    found.append((arg.lineno, "Decimal(<float literal>)"))
    return sorted(found)


def source_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in (REPO / top).rglob("*.py"):
            relative = path.relative_to(REPO)
            if "tests" in relative.parts or ".venv" in relative.parts:
                continue
            files.append(path)
    return sorted(files)


def test_the_scan_sees_the_source_tree() -> None:
    names = {p.relative_to(REPO).as_posix() for p in source_files()}
    assert "libs/common/src/stablegate_common/core/money.py" in names
    assert any(n.startswith("services/gateway/") for n in names)


def test_no_float_conversions_outside_timing_code() -> None:
    offenders = []
    for path in source_files():
        relative = path.relative_to(REPO).as_posix()
        if relative in ALLOWED:
            continue
        for line, what in float_uses(path.read_text()):
            offenders.append(f"{relative}:{line}: {what}")
    assert not offenders, (
        "money must be int base units or Decimal, never float:\n  "
        + "\n  ".join(offenders)
        + "\n(timing or metrics code: add the file to ALLOWED with the reason)"
    )


@pytest.mark.parametrize("relative", sorted(ALLOWED))
def test_allow_list_has_no_stale_entries(relative: str) -> None:
    path = REPO / relative
    assert path.exists(), f"{relative} is gone: remove it from ALLOWED"
    assert float_uses(path.read_text()), f"{relative} no longer uses float: remove it from ALLOWED"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = float(amount)", [(1, "float(...)")]),
        ("xs = list(map(float, parts))", [(1, "float passed as a converter")]),
        ("v = json.loads(t, parse_float=float)", [(1, "float passed as a converter")]),
        ("from decimal import Decimal\nd = Decimal(0.1)", [(2, "Decimal(<float literal>)")]),
        ("def f(seconds: float) -> float:\n    return seconds", []),
        ("# float(x) in a comment\ns = 'float(x) in a string'", []),
        ("d = Decimal('0.1')", []),
        ("if isinstance(v, float):\n    raise ValueError(v)", []),
        ("ok = isinstance(v, (int, float))", []),
        ("n = int(amount)", []),
    ],
)
def test_the_scanner_itself(source: str, expected: list[tuple[int, str]]) -> None:
    assert float_uses(source) == expected
