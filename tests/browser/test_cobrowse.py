"""Co-browsing end to end in headless Chromium: a customer on the demo shop, agent alice in the console.

- A refused consent records and sends nothing (the recorder is never even loaded).
- After consent, the page replayed in the console's sandboxed frame matches the customer's page (masked text
  and blocked fields normalised): at the start, after 100 scripted changes, and after a navigation to the
  next page (within 3 s).
- A secret typed into every kind of field never appears in any WebSocket frame of either page (raw,
  base64-encoded, or compressed), in the hub's log or in the database file; a sensitive query parameter of
  the page's address is stripped too.
- Either side ends it: the recorder stops, the agent's view is torn down, the timeline says who and why.
"""

from __future__ import annotations

import base64
import re
import time
import zlib
from pathlib import Path
from typing import Any, Iterator

import pytest

pytestmark = pytest.mark.browser

from tests.browser.harness import ARTIFACTS, chromium, http, running_hub, sync_api, watch  # noqa: E402

TOKEN = "cobrowse"
SECRET = "Zq7SecretXv93"
LINK_TOKEN = "demo-link-token"  # in the shop's "next page" link: stripped from URLs before they leave

BLOCK = ('[data-private],[data-cc-widget],input[type=password],input[type=hidden],[autocomplete*="cc-"],'
         '[autocomplete*="one-time-code"],[autocomplete*="current-password"],[autocomplete*="new-password"],.cc-blocked')

# the page's structure as the agent must see it: tag, id, own text, value; masked text and values as *,
# blocked elements as a box (no content), the chat widget and the co-browsing banner left out
SIGNATURE = """() => {
  const BLOCK = %r;
  const mask = (t) => t.replace(/\\S/g, '*');
  const out = [];
  function walk(el, masked) {
    for (const c of el.children) {
      const tag = c.tagName.toLowerCase();
      if (['script', 'noscript', 'style', 'link', 'meta', 'template'].includes(tag)) continue;
      if (c.hasAttribute('data-cc-widget') || /(^|\\s)ccw/.test(c.getAttribute('class') || '')) continue;
      const src = tag === 'iframe' ? c.getAttribute('src') : null;  // another origin's frame: blocked too
      const blocked = c.matches(BLOCK) || (!!src && !src.startsWith('/') && !src.startsWith(location.origin + '/'));
      const inMask = masked || c.hasAttribute('contenteditable');
      let own = [...c.childNodes].filter((n) => n.nodeType === 3).map((n) => n.textContent).join('').replace(/\\s+/g, ' ').trim();
      if (inMask) own = mask(own);
      if (tag === 'textarea') own = '';  // its text is its value (rrweb rebuilds a textarea's value as its text)
      let value = null;
      if ((tag === 'input' || tag === 'textarea') && !blocked) value = mask(String(c.value || ''));
      out.push([tag, c.id || '', blocked ? 'BLOCKED' : own, value]);
      if (!blocked) walk(c, inMask);
    }
  }
  walk(document.body, false);
  return out;
}""" % BLOCK


def _http(url: str, body: Any = None) -> tuple[int, Any]:
    return http(url, body, token=TOKEN)


@pytest.fixture(scope="module")
def hub_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cobrowse")


@pytest.fixture(scope="module")
def hub(hub_dir: Path) -> Iterator[str]:
    with running_hub(hub_dir, "cobrowse", TOKEN, {"LOG_LEVEL": "DEBUG"}) as base:
        yield base


@pytest.fixture(scope="module")
def browser(hub: str) -> Iterator[Any]:
    with chromium() as b:
        yield b


class Frames:
    """Every WebSocket frame a page sends or receives (Playwright's ``websocket`` events)."""

    def __init__(self, page: Any) -> None:
        self.items: list[tuple[str, bytes]] = []
        page.on("websocket", self._ws)

    def _ws(self, ws: Any) -> None:
        ws.on("framesent", lambda p: self._add("sent", p))
        ws.on("framereceived", lambda p: self._add("received", p))

    def _add(self, way: str, payload: Any) -> None:
        self.items.append((way, payload.encode() if isinstance(payload, str) else bytes(payload)))

    def count(self, needle: str, way: str | None = None) -> int:
        return sum(1 for w, p in self.items if needle.encode() in p and (way is None or w == way))


def _leaks(blob: bytes, secret: str) -> list[str]:
    """Where ``secret`` shows in ``blob``: raw (any case), inside any base64 run, or in anything that inflates."""
    found = []
    low = secret.lower().encode()
    if low in blob.lower():
        found.append("raw")
    for run in re.findall(rb"[A-Za-z0-9+/_-]{16,}={0,2}", blob):
        for alt in (run, run.replace(b"-", b"+").replace(b"_", b"/")):
            for cut in range(4):
                piece = alt[cut:]
                try:
                    decoded = base64.b64decode(piece + b"=" * (-len(piece) % 4), validate=False)
                except Exception:  # noqa: BLE001
                    continue
                if low in decoded.lower():
                    found.append("base64")
    for wbits in (15, -15, 31):
        try:
            inflated = zlib.decompressobj(wbits).decompress(blob)
        except zlib.error:
            continue
        if low in inflated.lower():
            found.append("compressed")
    return found


def _login(page: Any, hub: str) -> None:
    expect = sync_api.expect
    page.goto(f"{hub}/console")
    page.get_by_test_id("login-username").fill("alice")
    page.get_by_test_id("login-password").fill("demo-password")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("connection")).to_have_attribute("data-state", "online")
    page.get_by_test_id("status-select").select_option("available")
    expect(page.get_by_test_id("status-select")).to_have_attribute("data-confirmed", "available")


def _chat(shop: Any, agent: Any, hub: str, name: str) -> int:
    """The customer writes, alice accepts; the conversation's id."""
    expect = sync_api.expect
    shop.goto(f"{hub}/shop")
    expect(shop.get_by_test_id("product").first).to_be_visible()
    shop.get_by_test_id("cc-launcher").click()
    shop.get_by_test_id("cc-name").fill(name)
    shop.get_by_test_id("cc-input").fill("Can you help me with the checkout?")
    shop.get_by_test_id("cc-send").click()
    offer = agent.get_by_test_id("offer")
    expect(offer).to_have_count(1)
    cid = int(offer.get_attribute("data-conversation-id"))
    offer.get_by_test_id("offer-accept").click()
    expect(agent.get_by_test_id("offer")).to_have_count(0)
    expect(shop.get_by_test_id("cc-agent-name")).to_contain_text("Alice")
    agent.get_by_test_id("conversation-item").filter(has_text=name).click()  # alice may have an older chat open
    expect(agent.locator("#chat-title")).to_have_text(name)
    return cid


def _customer_id(hub: str, name: str) -> int:
    status, found = _http(f"{hub}/api/customers?q={name.replace(' ', '%20')}")
    assert status == 200, found
    return int(next(c for c in found["customers"] if c["display_name"] == name)["id"])


def _cobrowse_timeline(hub: str, customer_id: int) -> list[dict[str, Any]]:
    status, page = _http(f"{hub}/api/customers/{customer_id}/timeline?kind=cobrowse&limit=50")
    assert status == 200, page
    return [i for i in page["items"] if i["kind"] == "cobrowse"]


def _replay_frame(agent: Any) -> Any:
    """The frame rrweb rebuilt the customer's page in (inside the sandboxed /console/cobrowse-frame)."""
    for f in agent.frames:
        parent = f.parent_frame
        if parent is not None and parent.url.endswith("/console/cobrowse-frame"):
            return f
    return None


def _wait_same(shop: Any, agent: Any, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    want: Any = None
    got: Any = None
    while time.monotonic() < deadline:
        want = shop.evaluate(SIGNATURE)
        frame = _replay_frame(agent)
        if frame is not None:
            try:
                got = frame.evaluate(SIGNATURE)
            except Exception:  # noqa: BLE001 - the frame is being rebuilt
                got = None
            if got == want:
                return want  # type: ignore[no-any-return]
        agent.wait_for_timeout(100)
    diff = [(i, a, b) for i, (a, b) in enumerate(zip(want or [], got or [])) if a != b][:10]
    pytest.fail(f"the replayed page differs from the customer's: {len(want or [])} vs {len(got or [])} elements; first differences: {diff}")


def test_refused_consent_records_and_sends_nothing(hub: str, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    agent_ctx, customer_ctx = browser.new_context(), browser.new_context()
    agent, shop = agent_ctx.new_page(), customer_ctx.new_page()
    errors: list[str] = []
    watch(agent, [], errors)
    watch(shop, [], errors)
    frames = Frames(shop)
    try:
        _login(agent, hub)
        cid = _chat(shop, agent, hub, "Rita Refuser")
        agent.get_by_test_id("cobrowse-open").click()
        expect(agent.get_by_test_id("cobrowse-status")).to_contain_text("Waiting for the customer")
        expect(shop.get_by_test_id("cc-cobrowse-consent")).to_be_visible()
        shop.get_by_test_id("cc-cobrowse-deny").click()
        expect(agent.get_by_test_id("cobrowse-view")).to_be_hidden()
        expect(shop.get_by_test_id("cc-cobrowse-consent")).to_be_hidden()
        shop.evaluate("() => { for (let i = 0; i < 20; i++) document.body.append(document.createElement('p')); }")
        shop.wait_for_timeout(1000)  # (not time.sleep: Playwright reports frames only while it runs)
        assert frames.count("cobrowse_events", "sent") == 0
        assert shop.evaluate("() => typeof window.ccCobrowseRecorder") == "undefined"  # never loaded
        assert shop.locator("[data-testid=cc-cobrowse-banner]").count() == 0
        timeline = _cobrowse_timeline(hub, _customer_id(hub, "Rita Refuser"))
        events = [i["payload"]["event"] for i in timeline]
        assert "consent_refused" in events and "requested" in events, timeline
        refused = next(i for i in timeline if i["payload"]["event"] == "consent_refused")
        assert refused["payload"]["reason"] == "declined" and refused["conversation_id"] == cid
        assert refused["agent_id"] is not None
        assert not errors, errors
    finally:
        agent_ctx.close()
        customer_ctx.close()


def test_live_view_matches_and_secrets_never_leave(hub: str, hub_dir: Path, browser: Any) -> None:
    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    ARTIFACTS.mkdir(exist_ok=True)
    agent_ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    customer_ctx = browser.new_context(viewport={"width": 1100, "height": 800})
    agent, shop = agent_ctx.new_page(), customer_ctx.new_page()
    errors: list[str] = []
    watch(agent, [], errors)
    watch(shop, [], errors)
    agent_frames, shop_frames = Frames(agent), Frames(shop)
    console: list[str] = []
    agent.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    shop_console: list[str] = []
    shop.on("console", lambda m: shop_console.append(f"{m.type}: {m.text}"))
    try:
        _login(agent, hub)
        _chat(shop, agent, hub, "Vera Viewer")
        assert _replay_frame(agent) is None or agent.get_by_test_id("cobrowse-view").is_hidden()

        # --- consent: nothing was sent before it
        agent.get_by_test_id("cobrowse-open").click()
        expect(shop.get_by_test_id("cc-cobrowse-consent")).to_be_visible()
        assert shop_frames.count("cobrowse_events") == 0
        shop.get_by_test_id("cc-cobrowse-allow").click()
        expect(shop.get_by_test_id("cc-cobrowse-banner")).to_contain_text("is viewing this page")
        expect(agent.get_by_test_id("cobrowse-view")).to_have_attribute("data-state", "live")
        start = _wait_same(shop, agent)
        assert len(start) > 50 and any(row[2] == "BLOCKED" for row in start)

        # --- a secret typed into every kind of field
        for test_id in ("checkout-name", "checkout-phone", "checkout-address", "checkout-card", "checkout-exp",
                        "checkout-cvc", "checkout-password", "checkout-otp", "checkout-loyalty", "checkout-gift"):
            shop.get_by_test_id(test_id).press_sequentially(SECRET, delay=5)
        shop.get_by_test_id("checkout-email").press_sequentially(SECRET + "@example.com", delay=5)
        shop.get_by_test_id("checkout-notes").click()
        shop.keyboard.type(SECRET, delay=5)
        shop.get_by_test_id("cc-input").press_sequentially(SECRET, delay=5)  # typed in the chat box, not sent
        shop.evaluate("(s) => { const p = document.createElement('p'); p.setAttribute('data-private', ''); p.textContent = s; document.getElementById('checkout').append(p); }", SECRET)
        # a frame of another origin added while recording (a payment form): blocked, its address never sent
        shop.evaluate("""(s) => {
          const f = document.createElement('iframe');
          f.src = 'https://payments.example/form?customer=' + s;
          f.setAttribute('data-testid', 'payment-frame');
          document.getElementById('checkout').append(f);
        }""", SECRET)
        after_typing = _wait_same(shop, agent)
        replayed = _replay_frame(agent)
        assert replayed.evaluate("() => [...document.querySelectorAll('iframe')].every((f) => f.classList.contains('cc-blocked') && !f.getAttribute('src'))")
        assert any(row[3] and row[3].startswith("****") for row in after_typing)  # masked values arrived

        # --- 100 scripted changes
        shop.evaluate("""async () => {
          const grid = document.getElementById('products');
          for (let i = 0; i < 100; i++) {
            const k = i % 4;
            if (k === 0) { const p = document.createElement('p'); p.className = 'note'; p.id = 'change-' + i; p.textContent = 'change ' + i; grid.after(p); }
            else if (k === 1) { const n = grid.querySelectorAll('.name')[i % grid.querySelectorAll('.name').length]; if (n) n.textContent = 'Renamed ' + i; }
            else if (k === 2) { const old = document.getElementById('change-' + (i - 2)); if (old) old.remove(); }
            else { document.querySelector('.hero h1').textContent = 'Headline ' + i; }
            if (i % 10 === 0) await new Promise((r) => setTimeout(r, 10));
          }
        }""")
        _wait_same(shop, agent)
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-agent.png"))

        # --- a late-joining view (the console reloads): it asks for a full snapshot and shows the same page
        agent.reload()
        expect(agent.get_by_test_id("connection")).to_have_attribute("data-state", "online")
        agent.get_by_test_id("conversation-item").filter(has_text="Vera Viewer").click()
        expect(agent.get_by_test_id("cobrowse-view")).to_have_attribute("data-state", "live")
        _wait_same(shop, agent)

        # --- the pointer: the agent clicks on the view, the customer sees a highlight
        overlay = agent.frame_locator("[data-testid=cobrowse-frame]").locator("#overlay")
        overlay.click(position={"x": 60, "y": 30})
        expect(shop.get_by_test_id("cc-cobrowse-highlight")).to_be_visible()

        # --- a navigation: the view follows within 3 s
        shop.get_by_test_id("shop-next").click()
        shop.wait_for_url(re.compile(r"view=delivery"))
        t0 = time.monotonic()
        expect(shop.get_by_test_id("product").first).to_be_visible()
        _wait_same(shop, agent, timeout=3.0)
        follow = time.monotonic() - t0
        print(f"the view followed the navigation in {follow:.2f} s")
        assert follow <= 3.0, f"the view followed the navigation in {follow:.1f} s"

        # --- the customer ends it: the recorder stops, the agent's view goes
        shop.get_by_test_id("cc-cobrowse-end").click()
        expect(shop.get_by_test_id("cc-cobrowse-banner")).to_have_count(0)
        expect(agent.get_by_test_id("cobrowse-view")).to_be_hidden(timeout=2_000)
        sent = shop_frames.count("cobrowse_events", "sent")
        shop.evaluate("() => { for (let i = 0; i < 20; i++) document.body.append(document.createElement('p')); }")
        shop.wait_for_timeout(1200)
        agent.wait_for_timeout(100)
        assert shop_frames.count("cobrowse_events", "sent") == sent  # nothing recorded after the end
        assert sent > 0 and agent_frames.count("cobrowse_events", "received") > 0

        # --- nothing masked left the customer's browser: frames of both pages, the hub's log, the database
        for who, frames in (("customer", shop_frames), ("agent", agent_frames)):
            for way, payload in frames.items:
                for secret in (SECRET, LINK_TOKEN):
                    where = _leaks(payload, secret)
                    assert not where, f"{secret!r} in a frame {way} by the {who}'s page ({where}): {payload[:300]!r}"
        log = (hub_dir / "hub.log").read_bytes()
        assert not _leaks(log, SECRET)
        for db in hub_dir.glob("cobrowse.db*"):
            assert not _leaks(db.read_bytes(), SECRET), db

        timeline = _cobrowse_timeline(hub, _customer_id(hub, "Vera Viewer"))
        by_event = {i["payload"]["event"]: i for i in timeline}
        assert {"requested", "consent_given", "ended"} <= set(by_event), timeline
        assert by_event["ended"]["payload"]["reason"] == "customer_ended"
        assert by_event["ended"]["payload"]["duration_seconds"] > 0
        assert not errors, errors
    except BaseException:
        print("agent frames:", [(f.url, f.parent_frame.url if f.parent_frame else None) for f in agent.frames])
        print("agent console:", console[-30:])
        print("shop console:", shop_console[-30:])
        print("shop frames:", [(w, p[:200]) for w, p in shop_frames.items if b"cobrowse" in p][-8:])
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-agent-failure.png"))
        shop.screenshot(path=str(ARTIFACTS / "cobrowse-customer-failure.png"))
        raise
    finally:
        agent_ctx.close()
        customer_ctx.close()


def _pdf(text: str) -> bytes:
    """A small valid one-page PDF that says ``text``."""
    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _png() -> bytes:
    """A real 2x2 PNG (the browser must be able to show it)."""
    import struct

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_a_pushed_pdf_opens_in_the_customers_page(hub: str, browser: Any) -> None:
    import hashlib

    expect = sync_api.expect
    expect.set_options(timeout=20_000)
    pdf = _pdf("Price sheet 2027")
    sup_ctx, agent_ctx, customer_ctx = browser.new_context(), browser.new_context(), browser.new_context()
    try:
        # --- the library: a supervisor uploads; the type is read from the bytes; an agent may not upload
        sup = sup_ctx.request
        assert sup.post(f"{hub}/auth/login", data={"username": "sam", "password": "demo-password"}).ok
        r = sup.post(f"{hub}/console/documents", multipart={"file": {"name": "price-sheet.pdf", "mimeType": "application/pdf", "buffer": pdf}})
        assert r.status == 201, r.text()
        doc = r.json()
        assert doc["content_type"] == "application/pdf" and doc["sha256"] == hashlib.sha256(pdf).hexdigest()
        r = sup.post(f"{hub}/console/documents", multipart={"file": {"name": "evil.pdf", "mimeType": "application/pdf", "buffer": b"<html><script>alert(1)</script>"}})
        assert r.status == 415
        agent, shop = agent_ctx.new_page(), customer_ctx.new_page()
        errors: list[str] = []
        watch(agent, [], errors)
        watch(shop, [], errors)
        _login(agent, hub)
        r = agent_ctx.request.post(f"{hub}/console/documents", multipart={"file": {"name": "a.pdf", "mimeType": "application/pdf", "buffer": pdf}})
        assert r.status == 403

        links: list[str] = []
        shop.on("request", lambda req: links.append(req.url) if "/documents/push/" in req.url else None)

        # --- alice pushes it into her chat; it opens in the customer's page (PDF.js), `opened` lands on the timeline
        _chat(shop, agent, hub, "Paula Pusher")
        expect(agent.get_by_test_id("doc-push")).to_be_visible()
        agent.get_by_test_id("doc-select").select_option(str(doc["id"]))
        agent.get_by_test_id("doc-push").click()
        card = shop.get_by_test_id("cc-document")
        expect(card).to_contain_text("price-sheet.pdf")
        expect(card).to_have_attribute("data-opened", "true")
        expect(card.get_by_test_id("cc-doc-page")).to_have_count(1)
        version = shop.evaluate("() => window.ccPdfViewer.version")
        assert tuple(int(x) for x in version.split(".")) >= (4, 2, 67), version
        with shop.expect_download() as dl:
            card.get_by_test_id("cc-document-download").click()
        assert Path(dl.value.path()).read_bytes() == pdf

        customer_id = _customer_id(hub, "Paula Pusher")
        deadline = time.monotonic() + 10
        events: dict[str, Any] = {}
        while time.monotonic() < deadline and not {"pushed", "delivered", "opened", "downloaded"} <= set(events):
            status, page = _http(f"{hub}/api/customers/{customer_id}/timeline?kind=document_push")
            events = {i["payload"]["event"]: i for i in page["items"]}
            shop.wait_for_timeout(200)
        assert {"pushed", "delivered", "opened", "downloaded"} <= set(events), events
        assert events["pushed"]["payload"]["sha256"] == doc["sha256"] and events["pushed"]["agent_id"] is not None

        # --- a file of alice's own ("Push my file…"): uploaded, sniffed, shown like a library document
        png = _png()
        agent.get_by_test_id("doc-own-file").set_input_files({"name": "my-photo.png", "mimeType": "image/png", "buffer": png})
        own = shop.get_by_test_id("cc-document").filter(has_text="my-photo.png")
        expect(own).to_have_attribute("data-opened", "true")
        expect(own.get_by_test_id("cc-document-image")).to_be_visible()
        agent.screenshot(path=str(ARTIFACTS / "cobrowse-own-file.png"))
        deadline = time.monotonic() + 10
        mine: list[Any] = []
        while time.monotonic() < deadline and not mine:
            status, page = _http(f"{hub}/api/customers/{customer_id}/timeline?kind=document_push")
            mine = [i for i in page["items"] if i["payload"].get("source") == "agent_file" and i["payload"]["event"] == "pushed"]
            shop.wait_for_timeout(200)
        assert mine and mine[0]["payload"]["sha256"] == hashlib.sha256(png).hexdigest(), mine
        # a script named .png is refused by its bytes
        agent.get_by_test_id("doc-own-file").set_input_files({"name": "x.png", "mimeType": "image/png", "buffer": b"<script>alert(1)</script>"})
        expect(agent.locator("#toasts .toast.error").filter(has_text="only PDF, PNG, JPEG and WebP")).to_have_count(1)

        # --- an order of hers, rendered by the hub as a PDF summary, pushed from the same list
        status, products = _http(f"{hub}/api/products")
        product = next(p for p in products["products"] if not p.get("options"))
        status, placed = _http(f"{hub}/api/orders", {"customer_id": customer_id, "lines": [{"sku": product["sku"], "quantity": 2}],
                                                      "delivery_address": "Main Street 1, Berlin", "phone": "+12125550181"})
        assert status == 201, placed
        order_id = placed["order"]["id"]
        agent.get_by_test_id("doc-select").focus()
        expect(agent.locator(f'#doc-select option[value="order:{order_id}"]')).to_have_count(1)
        agent.get_by_test_id("doc-select").select_option(f"order:{order_id}")
        agent.get_by_test_id("doc-push").click()
        summary = shop.get_by_test_id("cc-document").filter(has_text=f"order-{order_id}.pdf")
        expect(summary).to_have_attribute("data-opened", "true")
        expect(summary.get_by_test_id("cc-doc-page")).to_have_count(1)
        summary.get_by_test_id("cc-doc-page").screenshot(path=str(ARTIFACTS / "cobrowse-order-summary.png"))

        # --- the link opens nothing without this customer's visitor id
        assert links, "the widget fetched no document"
        other = browser.new_context()
        try:
            assert other.request.get(links[0]).status == 403  # no visitor id
            assert other.request.get(links[0], headers={"X-CC-Visitor": "someone_else_0001"}).status == 403
            assert other.request.get(links[0].split("&sig=")[0] + "&sig=" + "0" * 64).status == 404  # a forged link
        finally:
            other.close()
        assert not errors, errors
    finally:
        for ctx in (sup_ctx, agent_ctx, customer_ctx):
            ctx.close()
