"""QR codes of tracking links, drawn on the server as inline SVG (segno, pure Python).

Nothing is fetched and no script runs: the resident's confirmation and the slip a
dispatcher prints for a resident without a phone carry the code in the page itself.
"""
from __future__ import annotations

import io

import segno
from markupsafe import Markup


def qr_svg(data: str, title: str = "", scale: int = 4) -> Markup:
    """An SVG QR code of `data` (error correction M, quiet zone kept), safe to put in a page.

    The SVG is segno's own output from our text; `title` becomes its accessible name.
    """
    out = io.BytesIO()
    segno.make(data, error="m", micro=False).save(
        out, kind="svg", xmldecl=False, svgns=True, scale=scale, title=title or None,
        svgclass="qr", lineclass=None, omitsize=True,
    )
    return Markup(out.getvalue().decode("utf-8"))
