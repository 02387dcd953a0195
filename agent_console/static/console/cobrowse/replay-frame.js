// The co-browsing live view, inside the console's replay frame (/console/cobrowse-frame).
// The frame's CSP allows this script only (no inline script, no connections). rrweb's Replayer rebuilds the
// customer's page in an inner iframe sandboxed `allow-same-origin` only (no scripts: the customer's HTML never
// runs; rrweb also turns <script> into <noscript>). The console posts the
// page events here ({type: "events", events}); a Meta event starts a new replayer (a full snapshot
// follows), so the view's memory is bounded by the time between checkouts (a Replayer keeps every event it
// was given).
// The agent's pointer over the view goes back to the console as {type: "pointer", x, y, highlight}.
// With guided control granted (the console says {type: "control", on: true}), a click names the element under it by
// its id in the recording ({type: "control-click", target, label}) and the wheel scrolls the customer's page
// ({type: "control-scroll", x, y}); the customer's browser decides whether the element may be touched.

import { Replayer } from "rrweb";

const host = document.getElementById("replay");
const overlay = document.getElementById("overlay");
const status = document.getElementById("status");
let replayer = null;
let size = { width: 1024, height: 768 };
let scale = 1;
let controlling = false;

const RULES = [
  // blocked elements (card, password, one-time-code fields, data-private, the chat widget): an empty box
  ".cc-blocked,.rr-block{background:repeating-linear-gradient(45deg,#e5e7eb 0 8px,#f3f4f6 8px 16px)!important;outline:1px dashed #9ca3af!important;}",
  // cross-origin iframes: a labelled blank
  "iframe.cc-blocked,iframe.cc-cobrowse-xorigin{background:#f3f4f6 url(\"data:image/svg+xml;utf8,<svg xmlns='http://www.w3.org/2000/svg' width='260' height='40'><text x='10' y='25' font-family='sans-serif' font-size='14' fill='%236b7280'>Embedded page (not shown)</text></svg>\") no-repeat center!important;}",
];

function post(msg) {
  window.parent.postMessage(msg, location.origin);
}

function fit() {
  const wrapper = host.querySelector(".replayer-wrapper");
  scale = Math.min(1, (window.innerWidth - 4) / size.width, (window.innerHeight - 4) / size.height);
  if (!(scale > 0)) scale = 1;
  if (wrapper) {
    wrapper.style.transformOrigin = "0 0";
    wrapper.style.transform = `scale(${scale})`;
  }
  overlay.style.width = `${size.width * scale}px`;
  overlay.style.height = `${size.height * scale}px`;
  host.style.width = `${size.width * scale}px`;
  host.style.height = `${size.height * scale}px`;
}

function teardown() {
  if (replayer) {
    try {
      replayer.pause();
      replayer.destroy?.();
    } catch {
      /* already gone */
    }
  }
  replayer = null;
  host.replaceChildren();
}

function rebuild(meta, sentAt) {
  teardown();
  size = { width: meta.data?.width || 1024, height: meta.data?.height || 768 };
  replayer = new Replayer([], {
    root: host,
    liveMode: true,
    mouseTail: false,
    showWarning: false,
    showDebug: false,
    triggerFocus: false,
    insertStyleRules: RULES,
  });
  replayer.on("resize", (d) => {
    if (d && d.width && d.height) {
      size = { width: d.width, height: d.height };
      fit();
    }
  });
  // The replay's clock comes from the customer's first batch (the one with this Meta): "now" on their clock is when
  // they sent it, so an event is due that long (its timestamp - the batch's send time) after the view started on
  // ours. Only their clock is ever compared with itself: skew between the machines adds no lag, and the time the
  // full snapshot took to serialise is not added to every later event. A late event is applied at once.
  replayer.startLive(Math.max(meta.timestamp, sentAt || 0));
  replayer.addEvent(meta);
  status.textContent = "";
  fit();
}

function add(event, sentAt) {
  if (!event || typeof event !== "object" || typeof event.type !== "number" || typeof event.timestamp !== "number") return;
  if (event.type === 4) return rebuild(event, sentAt); // Meta: a checkout (a full snapshot follows)
  if (!replayer) return; // waiting for a full snapshot
  replayer.addEvent(event);
}

window.addEventListener("message", (ev) => {
  if (ev.source !== window.parent || ev.origin !== location.origin) return;
  const msg = ev.data;
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "events" && Array.isArray(msg.events)) {
    for (const e of msg.events) {
      try {
        add(e, Number(msg.sentAt) || 0);
      } catch (err) {
        console.warn("co-browse replay:", err);
      }
    }
    post({ type: "applied", count: msg.events.length, at: msg.at });
  } else if (msg.type === "ping") {
    post({ type: "ready" });
  } else if (msg.type === "control") {
    controlling = msg.on === true;
    overlay.style.cursor = controlling ? "pointer" : "crosshair";
  } else if (msg.type === "reset") {
    teardown();
    status.textContent = msg.text || "Waiting for the customer's page…";
  }
});
window.addEventListener("resize", fit);

let lastPointer = 0;
function pointer(ev, highlight) {
  const rect = overlay.getBoundingClientRect();
  const x = (ev.clientX - rect.left) / scale;
  const y = (ev.clientY - rect.top) / scale;
  const now = performance.now();
  if (!highlight && now - lastPointer < 50) return;
  lastPointer = now;
  post({ type: "pointer", x: Math.round(x), y: Math.round(y), highlight });
}
overlay.addEventListener("mousemove", (ev) => pointer(ev, false));
/** The element of the replayed page under the agent's click, by its id in the recording. */
function targetAt(ev) {
  const doc = replayer?.iframe?.contentDocument;
  if (!doc) return null;
  const rect = overlay.getBoundingClientRect();
  const el = doc.elementFromPoint((ev.clientX - rect.left) / scale, (ev.clientY - rect.top) / scale);
  if (!el) return null;
  const id = replayer.getMirror().getId(el);
  if (!(id > 0)) return null;
  const name = el.getAttribute("name") || el.getAttribute("data-testid") || "";
  return { target: id, label: el.tagName.toLowerCase() + (name ? ` "${name.slice(0, 40)}"` : "") };
}

overlay.addEventListener("click", (ev) => {
  if (controlling) {
    const t = targetAt(ev);
    if (t) post({ type: "control-click", ...t });
    return;
  }
  pointer(ev, true);
});
let lastScroll = 0;
overlay.addEventListener("wheel", (ev) => {
  if (!controlling) return;
  ev.preventDefault();
  const win = replayer?.iframe?.contentWindow;
  if (!win) return;
  const now = performance.now();
  if (now - lastScroll < 100) return;
  lastScroll = now;
  post({ type: "control-scroll", x: Math.max(0, Math.round(win.scrollX + ev.deltaX)), y: Math.max(0, Math.round(win.scrollY + ev.deltaY * 2)) });
}, { passive: false });
overlay.addEventListener("mouseleave", () => post({ type: "pointer", x: 0, y: 0, hide: true }));

post({ type: "ready" });
