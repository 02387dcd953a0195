"""Browser tests: a failed test leaves its pages' screenshots and socket frames in test-artifacts/ (harness.record)."""

from __future__ import annotations

from typing import Any, Iterator

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    # before the report is made: the sections added here are printed with this phase's failure
    from tests.browser import harness

    if call.when == "call":
        if call.excinfo is not None:  # failed (or an xfail that failed: its evidence is what the quarantine is for)
            written = harness.save_evidence(item.name)
            # CI keeps only the printed output of a failed run: the files' names, and each log's last lines
            for path in written:
                tail = path.read_text(encoding="utf-8").splitlines()[-80:] if path.suffix == ".log" else []
                item.add_report_section("call", f"evidence {path.name}", "\n".join([str(path), *tail]))
        else:
            harness.EVIDENCE.clear()
    yield
