"""An order's summary as a PDF (issue 17: "an order's summary or quote rendered as a PDF from the order itself"),
without I/O and without a PDF library: a plain PDF 1.4 of text lines in Helvetica (WinAnsi), A4, as many pages as
the lines need. Nothing in it runs (no JavaScript, no actions, no forms, no links): the widget's PDF.js shows it
like any pushed document. Deterministic: the same order gives the same bytes (no dates of rendering)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points
MARGIN = 56
LINE_HEIGHT = 15
LINES_PER_PAGE = (PAGE_HEIGHT - 2 * MARGIN) // LINE_HEIGHT
MAX_CHARS = 92  # a line is cut (with "...") beyond this


@dataclass(frozen=True)
class SummaryLine:
    name: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderSummary:
    order_id: int
    shop_name: str
    status: str
    created: str  # already formatted (e.g. 2026-12-07)
    currency: str
    lines: Sequence[SummaryLine]
    subtotal_minor: int
    shipping_minor: int
    total_minor: int
    delivery_address: str = ""
    promised: str = ""  # already formatted, or empty


def money(minor: int, currency: str) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def _cut(text: str) -> str:
    text = " ".join(text.split())  # no control characters, no new lines
    return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 3] + "..."


def summary_lines(order: OrderSummary) -> list[tuple[str, str]]:
    """The document as (style, text) lines: ``title``, ``bold`` or ``text``."""
    out: list[tuple[str, str]] = [
        ("title", f"{order.shop_name}: order #{order.order_id}" if order.shop_name else f"Order #{order.order_id}"),
        ("text", f"Placed {order.created} - status: {order.status.replace('_', ' ')}"),
        ("text", ""),
        ("bold", "What you ordered"),
    ]
    for line in order.lines:
        opts = ", ".join(f"{k}: {v}" for k, v in sorted(line.options.items()))
        out.append(("text", f"{line.quantity} x {line.name}" + (f" ({opts})" if opts else "")))
        out.append(("text", f"      {money(line.unit_price_minor, order.currency)} each = {money(line.line_total_minor, order.currency)}"))
    out += [
        ("text", ""),
        ("text", f"Subtotal: {money(order.subtotal_minor, order.currency)}"),
        ("text", f"Delivery: {money(order.shipping_minor, order.currency)}"),
        ("bold", f"Total: {money(order.total_minor, order.currency)}"),
    ]
    if order.delivery_address:
        out += [("text", ""), ("bold", "Delivery address")]
        out += [("text", part) for part in order.delivery_address.replace("\r", "").split("\n") if part.strip()][:8]
    if order.promised:
        out.append(("text", f"Promised delivery: {order.promised}"))
    return [(style, _cut(text)) for style, text in out]


def _pdf_text(text: str) -> bytes:
    """A PDF string literal in WinAnsi (latin-1; anything else becomes '?'), its delimiters escaped."""
    raw = text.encode("latin-1", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def render(order: OrderSummary) -> bytes:
    """The summary as PDF bytes."""
    lines = summary_lines(order)
    pages = [lines[i:i + LINES_PER_PAGE] for i in range(0, len(lines), LINES_PER_PAGE)] or [[]]
    objects: list[bytes] = []  # object n is objects[n - 1]
    fonts = {"F1": b"Helvetica", "F2": b"Helvetica-Bold"}
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"")  # the page tree, written once the pages' numbers are known
    font_refs = {}
    for key, base in fonts.items():
        objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /" + base + b" /Encoding /WinAnsiEncoding >>")
        font_refs[key] = len(objects)
    resources = b"<< /Font << " + b" ".join(f"/{k} {n} 0 R".encode() for k, n in font_refs.items()) + b" >> >>"
    page_numbers = []
    for page_index, page in enumerate(pages):
        ops = [b"BT"]
        y = PAGE_HEIGHT - MARGIN
        for style, text in page:
            size = 16 if style == "title" else 11
            font = b"/F2" if style in ("title", "bold") else b"/F1"
            ops.append(font + b" " + str(size).encode() + b" Tf 1 0 0 1 " + f"{MARGIN} {y}".encode() + b" Tm " + _pdf_text(text) + b" Tj")
            y -= LINE_HEIGHT + (6 if style == "title" else 0)
        ops.append(b"/F1 9 Tf 1 0 0 1 " + f"{MARGIN} {MARGIN // 2}".encode() + b" Tm "
                   + _pdf_text(f"Order #{order.order_id} - page {page_index + 1} of {len(pages)}") + b" Tj")
        ops.append(b"ET")
        stream = b"\n".join(ops)
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream")
        content = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + f"{PAGE_WIDTH} {PAGE_HEIGHT}".encode()
                       + b"] /Resources " + resources + b" /Contents " + str(content).encode() + b" 0 R >>")
        page_numbers.append(len(objects))
    kids = b" ".join(f"{n} 0 R".encode() for n in page_numbers)
    objects[1] = b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(len(page_numbers)).encode() + b" >>"
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n".encode() + b"0000000000 65535 f \n"
    out += b"".join(f"{off:010d} 00000 n \n".encode() for off in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)
