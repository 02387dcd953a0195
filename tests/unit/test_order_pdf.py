"""An order's summary as a PDF (pure): a well-formed PDF (every xref offset points at its object), the order's text in
it, nothing that runs, deterministic, many lines on several pages."""

from __future__ import annotations

import re

from contact_center.domain.media import sniff
from contact_center.domain.order_pdf import LINES_PER_PAGE, OrderSummary, SummaryLine, money, render, summary_lines


def _order(n_lines: int = 2, name: str = "Red T-shirt") -> OrderSummary:
    lines = [SummaryLine(name, 2, 1999, 3998, {"size": "L"}) for _ in range(n_lines)]
    return OrderSummary(42, "Demo shop", "in_transit", "2026-12-07", "EUR", lines, 3998 * n_lines, 499, 3998 * n_lines + 499,
                        "Main Street 1\nBerlin", "2026-12-10")


def _check_structure(pdf: bytes) -> int:
    assert pdf.startswith(b"%PDF-1.4\n") and pdf.rstrip().endswith(b"%%EOF") and sniff(pdf) == "application/pdf"
    start = int(re.search(rb"startxref\n(\d+)\n", pdf).group(1))  # type: ignore[union-attr]
    assert pdf[start:start + 4] == b"xref"
    count = int(re.search(rb"xref\n0 (\d+)\n", pdf).group(1))  # type: ignore[union-attr]
    offsets = re.findall(rb"(\d{10}) 00000 n ", pdf)
    assert len(offsets) == count - 1
    for number, off in enumerate(offsets, start=1):
        assert pdf[int(off):].startswith(f"{number} 0 obj\n".encode()), number
    for length, body in re.findall(rb"<< /Length (\d+) >>\nstream\n(.*?)\nendstream", pdf, re.S):
        assert int(length) == len(body)
    return count


def test_the_summary_is_a_well_formed_pdf_with_the_order_in_it() -> None:
    pdf = render(_order())
    _check_structure(pdf)
    for text in (b"order #42", b"2 x Red T-shirt \\(size: L\\)", b"19.99 EUR each = 39.98 EUR", b"Total: 84.95 EUR",
                 b"Main Street 1", b"Promised delivery: 2026-12-10", b"status: in transit"):
        assert text in pdf, text
    for active in (b"/JavaScript", b"/JS", b"/OpenAction", b"/AA", b"/URI", b"/Launch", b"/AcroForm", b"/XFA"):
        assert active not in pdf
    assert render(_order()) == pdf  # deterministic


def test_text_is_escaped_and_kept_to_latin_1() -> None:
    pdf = render(_order(name="Mug (big) \\ \u2603 caf\u00e9 ) /JavaScript"))
    _check_structure(pdf)
    assert b"Mug \\(big\\) \\\\ ? caf\xe9 \\) /JavaScript" in pdf  # inside a string: text, not a name
    assert b"/JavaScript" not in pdf.replace(b"\\) /JavaScript", b"")


def test_many_lines_go_on_several_pages_and_long_ones_are_cut() -> None:
    order = _order(n_lines=60, name="x" * 300)
    assert all(len(text) <= 92 for _, text in summary_lines(order))
    pdf = render(order)
    _check_structure(pdf)
    pages = len(summary_lines(order)) // LINES_PER_PAGE + 1
    assert pdf.count(b"/Type /Page ") == pages and f"/Count {pages}".encode() in pdf
    assert f"page {pages} of {pages}".encode() in pdf


def test_money() -> None:
    assert money(123456, "EUR") == "1,234.56 EUR" and money(5, "USD") == "0.05 USD" and money(-250, "EUR") == "-2.50 EUR"
