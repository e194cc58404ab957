"""One SVG element as text: what the pictures we draw (graphs, the frontier, timelines) share."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

Attr = str | float


def num(v: float) -> str:
    """A coordinate, to a tenth, without trailing zeros."""
    return f"{round(v, 1):g}"


def tag(name: str, body: str | None = None, /, **attrs: Attr) -> str:
    """An element; attribute names take "-" for "_" (a trailing "_" dropped), values escaped.
    `body` is inserted as it is (escape text yourself)."""
    text = "".join(
        f" {k.rstrip('_').replace('_', '-')}={quoteattr(v if isinstance(v, str) else num(v))}"
        for k, v in attrs.items()
    )
    return f"<{name}{text}/>" if body is None else f"<{name}{text}>{body}</{name}>"
