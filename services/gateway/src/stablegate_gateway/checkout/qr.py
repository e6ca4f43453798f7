"""QR codes for the checkout, drawn on the server as SVG (no script needed to show one)."""

from __future__ import annotations

import io

import segno

# Four pixels per module: a whole number keeps module edges sharp on screen and in
# screenshots, and 4 px * (49 + 8) modules fits a 375 px phone for the longest EIP-681 URI.
SCALE = 4
# The quiet zone QR readers need around the code (ISO/IEC 18004 asks for 4 modules).
BORDER = 4


def qr_svg(payload: str, *, scale: int = SCALE) -> bytes:
    """An SVG image of `payload`, error correction M (raised when it costs no size)."""
    code = segno.make(payload, error="m", micro=False)
    out = io.BytesIO()
    code.save(
        out,
        kind="svg",
        scale=scale,
        border=BORDER,
        dark="#0b1320",
        light="#ffffff",
        xmldecl=False,
        nl=False,
    )
    return out.getvalue()
