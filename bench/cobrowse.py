"""Co-browsing figures on loopback, in headless Chromium: a customer on the demo shop, agent alice viewing.

Starts the hub (``contact-center serve``, SQLite, demo shop) as the browser tests do, opens a chat, asks to
co-browse, accepts, then measures:

* **latency**: a DOM change on the customer's page (a text set to a fresh marker) until the same text is in the
  agent's replayed page (a MutationObserver inside the console's replay iframe; both pages run in the same
  browser on the same machine, so their clocks agree). p50 / p95 / max over ``--changes`` changes, one every
  100 ms. Target: p95 <= 300 ms.
* **full snapshot**: the size of the first full snapshot the recorder sends (the JSON of the batch that holds
  it, as relayed) and gzip-compressed (what a compressing transport carries). Target: <= 300 KB compressed.
* **bytes per minute** of ``cobrowse_events`` frames sent by the customer's page while browsing (scrolling,
  moving the mouse, opening product filters) and while typing into the checkout form, for ``--seconds`` each.

Prints the figures, PASS/MISS against the targets and a final JSON line. Exits 0 whatever the figures.

    .venv/bin/python bench/cobrowse.py                  # 100 changes, 10 s per phase
    .venv/bin/python bench/cobrowse.py --changes 50 --seconds 5
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.harness import chromium, running_hub  # noqa: E402

TOKEN = "bench-cobrowse"
WRAP = """() => {
  const s = window.ccWidget.socket;
  window.__sent = [];
  const emit = s.emit.bind(s);
  s.emit = (event, ...args) => {
    if (event === 'cobrowse_events') window.__sent.push([performance.now(), JSON.stringify(args[0])]);
    return emit(event, ...args);
  };
}"""
PROBE = "() => [typeof window.ccCobrowseRecorder, !!document.querySelector('[data-testid=cc-cobrowse-banner]'), !!(window.ccWidget.socket && window.ccWidget.socket.connected)]"


def _replay_frame(agent: Any) -> Any:
    for f in agent.frames:
        if f.parent_frame is not None and f.parent_frame.url.endswith("/console/cobrowse-frame"):
            return f
    return None


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def run(changes: int, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)
    with tempfile.TemporaryDirectory() as tmp, running_hub(Path(tmp), "bench-cobrowse", TOKEN) as hub, chromium() as browser:
        agent_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
        shop_ctx = browser.new_context(viewport={"width": 1280, "height": 800})
        agent, shop = agent_ctx.new_page(), shop_ctx.new_page()
        logs: list[str] = []
        agent.on("console", lambda m: logs.append(f"agent {m.type}: {m.text}"))
        shop.on("console", lambda m: logs.append(f"shop {m.type}: {m.text}"))
        agent.on("pageerror", lambda e: logs.append(f"agent pageerror: {e}"))
        agent.goto(f"{hub}/console")
        agent.get_by_test_id("login-username").fill("alice")
        agent.get_by_test_id("login-password").fill("demo-password")
        agent.get_by_test_id("login-submit").click()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("status-select").select_option("available")
        expect(agent.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")
        shop.goto(f"{hub}/shop")
        expect(shop.get_by_test_id("product").first).to_be_visible()
        shop.get_by_test_id("cc-launcher").click()
        shop.get_by_test_id("cc-name").fill("Bench Customer")
        shop.get_by_test_id("cc-input").fill("Hello")
        shop.get_by_test_id("cc-send").click()
        agent.get_by_test_id("offer-accept").click()
        expect(shop.get_by_test_id("cc-agent-name")).to_contain_text("Alice")
        shop.evaluate(WRAP)  # count what the widget emits, whatever the transport
        agent.get_by_test_id("cobrowse-open").click()
        shop.get_by_test_id("cc-cobrowse-allow").click()
        t_consent = time.monotonic()
        expect(agent.get_by_test_id("cobrowse-view")).to_have_attribute("data-state", "live")
        def diag() -> Any:
            f = _replay_frame(agent)
            return [f and f.evaluate("() => document.documentElement.outerHTML.slice(0, 300)"), [(json.loads(p)["seq"], json.loads(p)["part"], json.loads(p)["parts"], len(p)) for _, p in shop.evaluate("() => window.__sent")], shop.evaluate("() => window.__sent.length"), agent.evaluate("() => window.ccCobrowseStats"),
                    agent.get_by_test_id("cobrowse-view").get_attribute("data-state")]

        deadline = time.monotonic() + 30
        frame = None
        while time.monotonic() < deadline:
            frame = _replay_frame(agent)
            if frame is not None and frame.evaluate("() => !!document.querySelector('.hero h1')"):
                print(f"view shown {time.monotonic() - t_consent:.2f} s after consent", file=sys.stderr)
                break
            agent.wait_for_timeout(50)  # (not time.sleep: Playwright learns of new frames only while it runs)
        assert frame is not None, f"the agent view did not show the page: {logs[-20:]} {shop.evaluate(PROBE)} {diag()} {[(f.url, f.parent_frame and f.parent_frame.url) for f in agent.frames]}"
        agent.wait_for_timeout(1000)

        # --- the full snapshot (the batch holding the event of type 2), as the recorder sent it
        sent = shop.evaluate("() => window.__sent")
        pieces = [json.loads(p) for _, p in sent]
        snap = next((d for d in pieces if d["part"] == 0 and d["data"][:40].find('"e":[{"type":4') >= 0), None)  # Meta + full snapshot
        raw_json = ""
        if snap is not None:
            raw_json = "".join(d["data"] for d in sorted(pieces, key=lambda d: d["part"]) if d["seq"] == snap["seq"])
        snapshot_raw = len(raw_json.encode())
        snapshot_gz = len(gzip.compress(raw_json.encode(), 6))
        snapshot_pieces = sum(1 for d in pieces if snap is not None and d["seq"] == snap["seq"])

        # --- latency: DOM change -> the agent's replayed DOM
        # observed from the replay frame's page: nothing runs inside the sandboxed iframe holding the customer's page
        frame = _replay_frame(agent)
        frame.parent_frame.evaluate("""() => {
          const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
          window.__lat = [];
          const seen = new Set();
          new MutationObserver(() => {
            const h = doc.querySelector('.hero p');
            const m = h && /^mark-(\\d+)-(\\d+)$/.exec(h.textContent);
            if (m && !seen.has(m[1])) { seen.add(m[1]); window.__lat.push(Date.now() - Number(m[2])); }
          }).observe(doc, { subtree: true, childList: true, characterData: true });
        }""")
        shop.evaluate("""async (n) => {
          const p = document.querySelector('.hero p');
          for (let i = 0; i < n; i++) { p.textContent = `mark-${i}-${Date.now()}`; await new Promise((r) => setTimeout(r, 100)); }
        }""", changes)
        agent.wait_for_timeout(1000)
        latencies = [float(x) for x in frame.parent_frame.evaluate("() => window.__lat")]
        transit = [float(x) for x in agent.evaluate("() => window.ccCobrowseStats.transit")][-changes:]
        if not latencies:
            print("no latencies:", frame.evaluate("() => [document.querySelector('.hero p')?.textContent, typeof window.__lat]"),
                  _replay_frame(agent) == frame, diag(), file=sys.stderr)

        # --- bytes per minute: browsing, then typing
        def sent_bytes(since: float) -> int:
            return int(shop.evaluate("(t) => window.__sent.filter(([at]) => at >= t).reduce((n, [, p]) => n + p.length, 0)", since))

        t0 = time.monotonic()
        p0 = shop.evaluate("performance.now()")
        end = t0 + seconds
        i = 0
        while time.monotonic() < end:
            shop.mouse.move(100 + (i * 37) % 900, 100 + (i * 53) % 600, steps=4)
            shop.mouse.wheel(0, 240 if (i // 10) % 2 == 0 else -240)
            if i % 15 == 0:
                buttons = shop.locator("#filters button")
                if buttons.count():
                    buttons.nth(i % buttons.count()).click()
            i += 1
            shop.wait_for_timeout(100)
        browsing = sent_bytes(p0) / (time.monotonic() - t0) * 60
        shop.get_by_test_id("checkout-address").scroll_into_view_if_needed()
        shop.get_by_test_id("checkout-address").click()
        t1 = time.monotonic()
        p1 = shop.evaluate("performance.now()")
        while time.monotonic() < t1 + seconds:
            shop.keyboard.type("The blue door next to the bakery, ring twice. ", delay=60)
        typing = sent_bytes(p1) / (time.monotonic() - t1) * 60
        agent_ctx.close()
        shop_ctx.close()

    return {
        "changes": len(latencies), "latency_p50_ms": statistics.median(latencies) if latencies else None,
        "latency_p95_ms": _percentile(latencies, 0.95) if latencies else None, "latency_max_ms": max(latencies) if latencies else None,
        "relay_p50_ms": statistics.median(transit) if transit else None,
        "snapshot_bytes": snapshot_raw, "snapshot_gzip_bytes": snapshot_gz, "snapshot_pieces": snapshot_pieces,
        "browsing_bytes_per_minute": round(browsing), "typing_bytes_per_minute": round(typing),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    r = run(args.changes, args.seconds)

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "MISS"

    p95 = r["latency_p95_ms"]
    print(f"DOM change -> agent view ({r['changes']} changes): p50 {r['latency_p50_ms']:.0f} ms, p95 {p95:.0f} ms, max {r['latency_max_ms']:.0f} ms"
          f"  [{verdict(p95 is not None and p95 <= 300)} p95 <= 300 ms]")
    print(f"full snapshot of the demo shop: {r['snapshot_bytes'] / 1024:.0f} KB JSON in {r['snapshot_pieces']} pieces, {r['snapshot_gzip_bytes'] / 1024:.0f} KB gzip"
          f"  [{verdict(0 < r['snapshot_gzip_bytes'] <= 300 * 1024)} <= 300 KB compressed]")
    print(f"hub relay (customer send -> console), p50: {r['relay_p50_ms']} ms")
    print(f"bytes per minute: browsing {r['browsing_bytes_per_minute'] / 1024:.0f} KB/min, typing {r['typing_bytes_per_minute'] / 1024:.0f} KB/min")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
