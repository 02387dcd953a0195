/*
 * Contact-centre chat widget. One tag puts it on any page:
 *
 *   <script src="https://HUB/static/widget.js" data-hub="https://HUB" defer></script>
 *
 * Protocol: docs/subsystems/realtime.md (Socket.IO namespace /customer).
 * All customer, agent and bot text is inserted with textContent / createTextNode, never as HTML.
 * Styles are scoped under the `.ccw` root class (light DOM, so tests and host scripts can query it) and reset
 * what ordinary host-page element rules could change; a host rule marked !important still wins.
 */
(function () {
  "use strict";

  if (window.ccWidget) return; // loaded twice: keep the first

  var script = document.currentScript || document.querySelector('script[src*="widget.js"]');
  var scriptUrl = new URL((script && script.src) || "/static/widget.js", location.href);
  var hubAttr = script ? (script.getAttribute("data-hub") || "").trim() : "";
  var HUB = (hubAttr ? new URL(hubAttr, location.href) : scriptUrl).origin;

  var KEY_VISITOR = "cc_visitor_id";
  var KEY_LAST_SEQ = "cc_last_seq";
  var KEY_TRANSCRIPT = "cc_transcript"; // {conversation_id, messages:[...]}: lets a reload show the history at once
  var KEY_OUTBOX = "cc_outbox"; // messages typed while offline, resent with the same client_msg_id
  var KEY_PROFILE = "cc_profile"; // {name, email} given before the first message
  var KEY_QUEUE = "cc_queue"; // last {conversation_id, position, estimated_wait_seconds}: the hub re-sends it only on change
  var KEY_OPEN = "cc_open"; // the panel was open: a reload opens it again (issue 20)
  var MAX_CACHED = 200;
  var VISITOR_RE = /^[A-Za-z0-9_-]{8,128}$/;
  var ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  // ---------------------------------------------------------------- storage

  function load(key, fallback) {
    try {
      var raw = localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback;
    }
  }
  function save(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
    } catch (e) { /* private mode or full: the widget still works for this page */ }
  }
  function randomId(n) {
    var bytes = new Uint8Array(n);
    crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < n; i++) out += ALPHABET[bytes[i] & 63]; // 256 % 64 == 0: unbiased
    return out;
  }
  function visitorId() {
    var id = null;
    try { id = localStorage.getItem(KEY_VISITOR); } catch (e) { /* ignore */ }
    if (!id || !VISITOR_RE.test(id)) {
      id = randomId(24);
      try { localStorage.setItem(KEY_VISITOR, id); } catch (e) { /* ignore */ }
    }
    return id;
  }

  // ---------------------------------------------------------------- state

  var state = {
    visitorId: visitorId(),
    conversationId: null,
    lastSeq: 0,
    status: null, // conversation status from the server
    agentName: null,
    profile: load(KEY_PROFILE, { name: "", email: "" }),
    seen: new Map(), // conversation id -> Set of seq already rendered
    messages: [], // cached copy for reload
    outbox: load(KEY_OUTBOX, []), // [{client_msg_id, text}]: sent first to last, one at a time (flushOutbox)
    socket: null,
    connectedOnce: false,
    open: false,
    unread: 0,
  };

  (function restore() {
    var cached = load(KEY_TRANSCRIPT, null);
    var last = Number(load(KEY_LAST_SEQ, 0)) || 0;
    if (cached && Array.isArray(cached.messages)) {
      state.messages = cached.messages.filter(function (m) { return m && typeof m.seq === "number"; });
      state.conversationId = cached.conversation_id == null ? null : cached.conversation_id;
      state.lastSeq = last;
    } else {
      state.lastSeq = 0; // nothing to show: ask for the whole conversation
    }
    if (!Array.isArray(state.outbox)) state.outbox = [];
  })();

  function persist() {
    if (state.messages.length > MAX_CACHED) state.messages = state.messages.slice(-MAX_CACHED);
    save(KEY_TRANSCRIPT, { conversation_id: state.conversationId, messages: state.messages });
    save(KEY_LAST_SEQ, state.lastSeq);
    save(KEY_OUTBOX, state.outbox);
  }

  // ---------------------------------------------------------------- DOM helpers

  function el(tag, cls, attrs) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) node.setAttribute(k, attrs[k]);
    return node;
  }
  function text(node, value) {
    node.textContent = value == null ? "" : String(value);
    return node;
  }
  function fmtTime(iso) {
    var d = iso ? new Date(iso) : new Date();
    if (isNaN(d.getTime())) return "";
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  var CSS = [
    ".ccw{all:initial;position:fixed;right:24px;bottom:24px;z-index:2147483000;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;font-size:14px;line-height:1.4;color:#1f2328;}",
    // reset what a host page's element rules (button{...}, div{...}) could set: ours are more specific
    ".ccw *,.ccw *::before,.ccw *::after{box-sizing:border-box;margin:0;padding:0;border:0;background:transparent;box-shadow:none;font:inherit;color:inherit;letter-spacing:normal;text-transform:none;text-align:inherit;text-decoration:none;text-shadow:none;text-indent:0;float:none;width:auto;height:auto;min-width:auto;min-height:auto;max-width:none;max-height:none;}",
    ".ccw button{cursor:pointer;border:0;background:none;}",
    ".ccw .ccw-launcher{width:56px;height:56px;border-radius:50%;background:#2563eb;color:#fff;display:flex;align-items:center;justify-content:center;box-shadow:0 6px 20px rgba(15,23,42,.25);position:absolute;right:0;bottom:0;transition:transform .15s ease,background .15s ease;}",
    ".ccw .ccw-launcher:hover{background:#1d4ed8;transform:translateY(-1px);}",
    ".ccw .ccw-launcher:focus-visible{outline:3px solid #93c5fd;outline-offset:2px;}",
    ".ccw .ccw-launcher svg{width:26px;height:26px;fill:none;stroke:#fff;stroke-width:2;stroke-linecap:round;stroke-linejoin:round;}",
    ".ccw .ccw-badge{position:absolute;top:-2px;right:-2px;min-width:20px;height:20px;padding:0 6px;border-radius:10px;background:#dc2626;color:#fff;font-size:11px;font-weight:600;display:flex;align-items:center;justify-content:center;border:2px solid #fff;}",
    ".ccw .ccw-badge[hidden]{display:none;}",
    ".ccw .ccw-panel{position:absolute;right:0;bottom:72px;width:360px;height:520px;max-height:calc(100vh - 120px);background:#fff;border:1px solid #e5e7eb;border-radius:14px;box-shadow:0 16px 48px rgba(15,23,42,.22);display:flex;flex-direction:column;overflow:hidden;}",
    ".ccw .ccw-panel[hidden]{display:none;}",
    ".ccw .ccw-head{background:#2563eb;color:#fff;padding:14px 16px;display:flex;align-items:flex-start;gap:10px;}",
    ".ccw .ccw-head-main{flex:1;min-width:0;}",
    ".ccw .ccw-title{font-size:15px;font-weight:600;color:#fff;}",
    ".ccw .ccw-agent{font-size:12.5px;color:#eff6ff;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;}",
    ".ccw .ccw-agent:empty{display:none;}",
    ".ccw .ccw-status{font-size:12px;color:#eff6ff;display:flex;align-items:center;gap:6px;margin-top:2px;}",
    ".ccw .ccw-dot{width:8px;height:8px;border-radius:50%;background:#9ca3af;flex:none;}",
    ".ccw .ccw-status[data-state=online] .ccw-dot{background:#4ade80;}",
    ".ccw .ccw-status[data-state=connecting] .ccw-dot{background:#facc15;}",
    ".ccw .ccw-status[data-state=offline] .ccw-dot{background:#f87171;}",
    ".ccw .ccw-close{color:#fff;width:28px;height:28px;border-radius:6px;font-size:20px;line-height:28px;text-align:center;opacity:.85;}",
    ".ccw .ccw-close:hover{background:rgba(255,255,255,.15);opacity:1;}",
    ".ccw .ccw-queue{background:#eff6ff;color:#1e40af;font-size:12.5px;padding:8px 16px;border-bottom:1px solid #dbeafe;}",
    ".ccw .ccw-queue[hidden]{display:none;}",
    ".ccw .ccw-msgs>*{flex-shrink:0;}",
    ".ccw .ccw-msgs{flex:1;overflow-y:auto;padding:14px 14px 6px;background:#f8fafc;display:flex;flex-direction:column;gap:6px;}",
    ".ccw .ccw-empty{color:#5f6774;font-size:13px;text-align:center;margin:auto 12px;}",
    ".ccw .ccw-msg{display:flex;flex-direction:column;max-width:80%;}",
    ".ccw .ccw-msg[data-sender=customer]{align-self:flex-end;align-items:flex-end;}",
    ".ccw .ccw-msg[data-sender=agent],.ccw .ccw-msg[data-sender=bot]{align-self:flex-start;align-items:flex-start;}",
    ".ccw .ccw-msg[data-sender=system]{align-self:center;align-items:center;max-width:90%;}",
    ".ccw .ccw-who{font-size:11.5px;color:#5f6774;margin:0 4px 2px;}",
    ".ccw .ccw-buttons{display:flex;flex-wrap:wrap;gap:6px;margin-top:4px;}",
    ".ccw .ccw-buttons button{border:1px solid #2563eb;background:#fff;color:#2563eb;border-radius:14px;padding:4px 10px;font:inherit;font-size:13px;cursor:pointer;}",
    ".ccw .ccw-buttons button:disabled{opacity:.5;cursor:default;}",
    ".ccw .ccw-bubble{padding:8px 12px;border-radius:14px;white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;}",
    ".ccw .ccw-msg[data-sender=customer] .ccw-bubble{background:#2563eb;color:#fff;border-bottom-right-radius:4px;}",
    ".ccw .ccw-msg[data-sender=agent] .ccw-bubble,.ccw .ccw-msg[data-sender=bot] .ccw-bubble{background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:4px;}",
    ".ccw .ccw-msg[data-sender=system] .ccw-bubble{background:none;color:#5f6774;font-size:12.5px;padding:2px 8px;text-align:center;}",
    ".ccw .ccw-meta{font-size:11px;color:#5f6774;margin:2px 4px 0;}",
    ".ccw .ccw-msg.ccw-failed .ccw-meta{color:#dc2626;}",
    ".ccw .ccw-divider{align-self:stretch;text-align:center;font-size:11.5px;color:#5f6774;border-top:1px solid #e5e7eb;margin:8px 0 2px;padding-top:6px;}",
    ".ccw .ccw-typing{font-size:12px;color:#5f6774;padding:2px 16px 4px;min-height:20px;background:#f8fafc;font-style:italic;}",
    ".ccw .ccw-profile{padding:10px 14px 0;display:flex;gap:8px;border-top:1px solid #e5e7eb;}",
    ".ccw .ccw-profile[hidden]{display:none;}",
    ".ccw .ccw-field{flex:1;min-width:0;border:1px solid #d1d5db;border-radius:8px;padding:7px 10px;font-size:13px;background:#fff;outline:none;}",
    ".ccw .ccw-field:focus,.ccw .ccw-input:focus{border-color:#2563eb;box-shadow:0 0 0 3px rgba(37,99,235,.15);}",
    ".ccw .ccw-compose{display:flex;gap:8px;padding:10px 14px 14px;align-items:flex-end;}",
    ".ccw .ccw-profile:not([hidden])+.ccw-compose{padding-top:8px;}",
    ".ccw .ccw-profile[hidden]+.ccw-compose{border-top:1px solid #e5e7eb;}",
    ".ccw .ccw-input{flex:1;min-width:0;resize:none;border:1px solid #d1d5db;border-radius:10px;padding:9px 12px;max-height:96px;min-height:40px;background:#fff;outline:none;}",
    ".ccw .ccw-send{background:#2563eb;color:#fff;border-radius:10px;height:40px;padding:0 16px;font-weight:600;}",
    ".ccw .ccw-send:hover{background:#1d4ed8;}",
    ".ccw .ccw-send:disabled{background:#93c5fd;cursor:default;}",
    ".ccw .ccw-error{color:#b91c1c;font-size:12px;padding:0 16px 8px;}",
    ".ccw .ccw-error:empty{display:none;}",
    "@media (max-width:480px){.ccw{right:12px;bottom:12px;}.ccw .ccw-panel{position:fixed;inset:0;width:100vw;height:100vh;height:100dvh;max-height:none;border-radius:0;border:0;z-index:2147483001;}.ccw .ccw-head{padding-top:max(12px,env(safe-area-inset-top));}}",
    ".ccw .ccw-status[data-state=online][data-agents=none] .ccw-dot{background:#fbbf24;}",
    ".ccw .ccw-status[data-state=online][data-agents=unknown] .ccw-dot{background:#cbd5e1;}",
    ".ccw .ccw-bubble a{color:inherit;text-decoration:underline;}",
    // co-browsing: the consent prompt (in the panel), the banner while the agent views, the agent's pointer
    ".ccw .ccw-consent{margin:10px 14px;padding:12px;border:1px solid #bfdbfe;background:#eff6ff;border-radius:10px;font-size:13px;color:#1e3a8a;}",
    ".ccw .ccw-consent[hidden]{display:none;}",
    ".ccw .ccw-consent p{margin:0 0 8px;}",
    ".ccw .ccw-consent-actions{display:flex;gap:8px;}",
    ".ccw .ccw-consent-actions button{border-radius:8px;padding:6px 12px;font-weight:600;}",
    ".ccw .ccw-allow{background:#2563eb;color:#fff;}",
    ".ccw .ccw-deny{background:#fff;color:#1e3a8a;border:1px solid #93c5fd;}",
    ".ccw-cobrowse-banner{all:initial;position:fixed;left:50%;top:0;transform:translateX(-50%);z-index:2147483002;background:#b91c1c;color:#fff;font:600 13px system-ui,sans-serif;padding:6px 8px 6px 14px;border-radius:0 0 10px 10px;display:flex;gap:10px;align-items:center;box-shadow:0 4px 14px rgba(0,0,0,.25);}",
    ".ccw-cobrowse-banner button{all:initial;cursor:pointer;background:#fff;color:#b91c1c;font:600 12px system-ui,sans-serif;padding:4px 10px;border-radius:6px;}",
    ".ccw-cobrowse-pointer{all:initial;position:fixed;z-index:2147483003;width:18px;height:18px;margin:-9px 0 0 -9px;border-radius:50%;background:rgba(220,38,38,.45);border:2px solid #dc2626;pointer-events:none;transition:left .08s linear,top .08s linear;}",
    ".ccw .ccw-doc{align-self:stretch;border:1px solid #e5e7eb;background:#fff;border-radius:10px;padding:10px;display:flex;flex-direction:column;gap:8px;}",
    ".ccw .ccw-doc-head{display:flex;gap:8px;align-items:center;font-size:13px;}",
    ".ccw .ccw-doc-name{flex:1;min-width:0;font-weight:600;overflow:hidden;text-overflow:ellipsis;white-space:nowrap;}",
    ".ccw .ccw-doc-head button{border:1px solid #2563eb;color:#2563eb;border-radius:8px;padding:3px 8px;font-size:12px;}",
    ".ccw .ccw-doc-view{max-height:320px;overflow:auto;display:flex;flex-direction:column;gap:6px;align-items:center;background:#f1f5f9;border-radius:6px;}",
    ".ccw .ccw-doc-view img,.ccw .ccw-doc-view canvas{max-width:100%;height:auto;display:block;}",
    ".ccw-cobrowse-highlight{all:initial;position:fixed;z-index:2147483002;border:3px solid #dc2626;border-radius:6px;box-shadow:0 0 0 4px rgba(220,38,38,.25);pointer-events:none;}",
  ].join("\n");

  // ---------------------------------------------------------------- build the UI

  var ui = {};

  function build() {
    var style = el("style", null, { "data-cc-widget": "" });
    style.textContent = CSS;
    document.head.appendChild(style);

    var root = el("div", "ccw", { "data-cc-widget": "" });

    var launcher = el("button", "ccw-launcher", { type: "button", "data-testid": "cc-launcher", "aria-label": "Chat with us", "aria-expanded": "false" });
    var SVG = "http://www.w3.org/2000/svg";
    var icon = document.createElementNS(SVG, "svg");
    icon.setAttribute("viewBox", "0 0 24 24");
    icon.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(SVG, "path");
    path.setAttribute("d", "M21 12a8 8 0 0 1-11.6 7.1L4 20.5l1.4-4.6A8 8 0 1 1 21 12z");
    icon.appendChild(path);
    launcher.appendChild(icon);
    var badge = el("span", "ccw-badge", { "aria-hidden": "true" });
    badge.hidden = true;
    launcher.appendChild(badge);

    var panel = el("section", "ccw-panel", { "data-testid": "cc-panel", role: "dialog", "aria-label": "Chat" });
    panel.hidden = true;

    var head = el("header", "ccw-head");
    var headMain = el("div", "ccw-head-main");
    var title = text(el("div", "ccw-title"), "Chat with us");
    var agent = el("div", "ccw-agent", { "data-testid": "cc-agent-name" });
    var status = el("div", "ccw-status", { "data-testid": "cc-status", "data-state": "idle", role: "status" });
    status.appendChild(el("span", "ccw-dot"));
    var statusText = text(el("span"), "We usually reply in a few minutes");
    status.appendChild(statusText);
    headMain.appendChild(title);
    headMain.appendChild(agent);
    headMain.appendChild(status);
    var close = text(el("button", "ccw-close", { type: "button", "aria-label": "Minimise chat" }), "\u2013");
    head.appendChild(headMain);
    head.appendChild(close);

    var queue = el("div", "ccw-queue", { "data-testid": "cc-queue", "aria-live": "polite" });
    queue.hidden = true;

    var msgs = el("div", "ccw-msgs", { "data-testid": "cc-messages", "aria-live": "polite" });
    var empty = text(el("div", "ccw-empty"), "Hi! Ask us anything about products, orders or delivery.");
    msgs.appendChild(empty);

    var typing = el("div", "ccw-typing", { "data-testid": "cc-typing", "aria-live": "polite" });

    var profile = el("div", "ccw-profile");
    var name = el("input", "ccw-field", { type: "text", placeholder: "Name (optional)", autocomplete: "name", maxlength: "120", "data-testid": "cc-name" });
    var email = el("input", "ccw-field", { type: "email", placeholder: "Email (optional)", autocomplete: "email", maxlength: "254", "data-testid": "cc-email" });
    name.value = state.profile.name || "";
    email.value = state.profile.email || "";
    profile.appendChild(name);
    profile.appendChild(email);

    var compose = el("form", "ccw-compose");
    var input = el("textarea", "ccw-input", { rows: "1", placeholder: "Write a message\u2026", "data-testid": "cc-input", "aria-label": "Message", maxlength: "4000" });
    var send = text(el("button", "ccw-send", { type: "submit", "data-testid": "cc-send" }), "Send");
    compose.appendChild(input);
    compose.appendChild(send);
    var error = el("div", "ccw-error", { role: "alert" });

    panel.appendChild(head);
    panel.appendChild(queue);
    var consent = el("div", "ccw-consent", { role: "alertdialog", "aria-live": "assertive", "data-testid": "cc-cobrowse-consent" });
    consent.hidden = true;
    panel.appendChild(consent);
    panel.appendChild(msgs);
    panel.appendChild(typing);
    panel.appendChild(profile);
    panel.appendChild(compose);
    panel.appendChild(error);
    root.appendChild(panel);
    root.appendChild(launcher);
    document.body.appendChild(root);

    ui = { root: root, launcher: launcher, badge: badge, panel: panel, agent: agent, status: status, statusText: statusText,
      queue: queue, msgs: msgs, empty: empty, typing: typing, profile: profile, name: name, email: email,
      input: input, send: send, compose: compose, error: error, consent: consent };

    launcher.addEventListener("click", function () { setOpen(!state.open); });
    close.addEventListener("click", function () { setOpen(false); });
    compose.addEventListener("submit", function (ev) { ev.preventDefault(); submit(); });
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
    });
    input.addEventListener("input", function () { autosize(); typingChanged(); });
    panel.addEventListener("keydown", function (ev) { if (ev.key === "Escape") setOpen(false); });
  }

  function autosize() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 96) + "px";
  }

  function setOpen(open) {
    state.open = open;
    save(KEY_OPEN, open ? true : null);
    ui.panel.hidden = !open;
    ui.launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      state.unread = 0;
      renderBadge();
      scrollDown(true);
      ui.input.focus();
      // connect on open: the hub's session says whether anyone is there to answer (the header tells the truth)
      if (!state.socket) connect().catch(function () { /* the header says it */ });
    }
  }

  function renderBadge() {
    ui.badge.hidden = state.unread === 0;
    text(ui.badge, state.unread > 9 ? "9+" : String(state.unread));
  }

  /** Text with its http, https and mailto links as <a target=_blank rel="noopener noreferrer">, node by node
   *  (never innerHTML); anything else, and a URL with a user name in it, stays text. Same rules as the console's
   *  core/linkify.js. */
  function linkify(node, value) {
    var s = value == null ? "" : String(value);
    var re = /\b(?:https?:\/\/|mailto:|www\.)[^\s<>"'`]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/gi;
    var last = 0, m;
    while ((m = re.exec(s))) {
      var raw = m[0].replace(/[.,;:!?\]}'"\u00bb]+$/, "");
      if (/\)$/.test(raw) && raw.indexOf("(") < 0) raw = raw.replace(/\)+$/, "");
      var cand = /^www\./i.test(raw) ? "https://" + raw : !/^(?:https?:|mailto:)/i.test(raw) ? "mailto:" + raw : raw;
      var url = null;
      try { url = new URL(cand); } catch (e) { url = null; }
      if (!raw || !url || ["http:", "https:", "mailto:"].indexOf(url.protocol) < 0 || url.username || url.password || (url.protocol !== "mailto:" && !url.hostname)) continue;
      if (m.index > last) node.appendChild(document.createTextNode(s.slice(last, m.index)));
      var a = document.createElement("a");
      a.href = url.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = raw;
      node.appendChild(a);
      last = m.index + raw.length;
      re.lastIndex = last;
    }
    if (last < s.length) node.appendChild(document.createTextNode(s.slice(last)));
    return node;
  }

  function setStatus(kind, label) {
    ui.status.setAttribute("data-state", kind);
    text(ui.statusText, label);
  }

  /** The header's truth: {agents_available, estimated_wait_seconds} from the hub (the session's availability; a
   *  queue update's wait, where null means nobody serves now). Unknown (an older hub): a neutral line. */
  function setAvailability(a) {
    state.availability = a && typeof a === "object" ? a : null;
    showAvailability();
  }

  function showAvailability() {
    var a = state.availability;
    // data-state stays the connection's; data-agents says whether anyone is there to answer
    if (a === undefined) { setStatus("online", "Checking who is available\u2026"); ui.status.setAttribute("data-agents", "unknown"); return; }
    if (!a) { setStatus("online", "We usually reply in a few minutes"); ui.status.setAttribute("data-agents", "unknown"); return; }
    var n = a.agents_available;
    var wait = a.estimated_wait_seconds;
    if (n === 0 || (n == null && wait == null)) {
      setStatus("online", "No one is available right now. Leave a message: we answer as soon as someone is back.");
      ui.status.setAttribute("data-agents", "none");
    } else {
      var mins = typeof wait === "number" && isFinite(wait) ? Math.max(1, Math.ceil(wait / 60)) : null;
      setStatus("online", "Agents available now" + (mins ? " \u00b7 reply in about " + mins + " min" : ""));
      ui.status.setAttribute("data-agents", "available");
    }
  }

  function setAgent(name) {
    state.agentName = name || null;
    text(ui.agent, name ? "You are chatting with " + name : "");
  }

  function setQueue(q) {
    if (!q || q.position == null) {
      ui.queue.hidden = true;
      text(ui.queue, "");
      return;
    }
    var label = "You are number " + q.position + " in the queue";
    var wait = q.estimated_wait_seconds;
    if (typeof wait === "number" && isFinite(wait) && wait >= 0) {
      label += ", about " + Math.max(1, Math.ceil(wait / 60)) + " min";
    } else {
      label += ". An agent will be with you as soon as one is free";
    }
    text(ui.queue, label);
    ui.queue.hidden = false;
  }

  function showError(msg) {
    text(ui.error, msg || "");
  }

  function updateProfileVisibility() {
    // name / email are asked only before the first message
    ui.profile.hidden = state.messages.length > 0 || state.outbox.length > 0 || state.conversationId != null;
  }

  function nearBottom() {
    var m = ui.msgs;
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }
  function scrollDown(force) {
    if (force || nearBottom()) ui.msgs.scrollTop = ui.msgs.scrollHeight;
  }

  // ---------------------------------------------------------------- messages

  function seenSet(conversationId) {
    var key = String(conversationId);
    if (!state.seen.has(key)) state.seen.set(key, new Set());
    return state.seen.get(key);
  }

  function senderKind(m) {
    var k = m.sender_kind;
    return k === "customer" || k === "agent" || k === "bot" || k === "system" ? k : "system";
  }

  function messageNode(m, pending) {
    var kind = senderKind(m);
    var node = el("div", "ccw-msg", { "data-testid": "cc-message", "data-sender": kind });
    if (!pending) {
      node.setAttribute("data-seq", String(m.seq));
      node.setAttribute("data-conversation-id", String(m.conversation_id));
    }
    if (m.client_msg_id) node.setAttribute("data-client-msg-id", m.client_msg_id);
    if ((kind === "agent" || kind === "bot") && m.sender_name) node.appendChild(text(el("div", "ccw-who"), m.sender_name));
    node.appendChild(linkify(el("div", "ccw-bubble"), m.text));
    if (kind === "bot" && !pending && Array.isArray(m.buttons) && m.buttons.length) {
      var row = el("div", "ccw-buttons", { "data-testid": "cc-buttons" });
      m.buttons.forEach(function (b) {
        if (!b || typeof b.title !== "string") return;
        var button = text(el("button", "", { type: "button" }), b.title);
        button.addEventListener("click", function () {
          row.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
          sendText(b.title, typeof b.payload === "string" ? b.payload : null);
        });
        row.appendChild(button);
      });
      node.appendChild(row);
    }
    if (kind !== "system") {
      node.appendChild(text(el("div", "ccw-meta"), pending ? "sending\u2026" : fmtTime(m.created_at)));
    }
    return node;
  }

  function findByClientId(id) {
    if (!id) return null;
    var nodes = ui.msgs.querySelectorAll('[data-testid="cc-message"]');
    for (var i = 0; i < nodes.length; i++) if (nodes[i].getAttribute("data-client-msg-id") === id) return nodes[i];
    return null;
  }

  /** Put a stored message in its place (by conversation, then seq), exactly once. */
  function addMessage(m, opts) {
    if (!m || typeof m.seq !== "number" || m.conversation_id == null) return false;
    var seen = seenSet(m.conversation_id);
    if (seen.has(m.seq)) {
      // it may still be our own pending bubble (ack lost, echo arrived): settle it
      var dup = findByClientId(m.client_msg_id);
      if (dup && !dup.hasAttribute("data-seq")) dup.remove();
      return false;
    }
    seen.add(m.seq);
    if (ui.empty.parentNode) ui.empty.remove();
    var stick = nearBottom();

    var pendingNode = findByClientId(m.client_msg_id);
    if (pendingNode && !pendingNode.hasAttribute("data-seq")) pendingNode.remove();
    settleOutbox(m.client_msg_id);

    var node = messageNode(m, false);
    // insert before the first rendered message that comes later, pending bubbles stay last
    var nodes = ui.msgs.querySelectorAll('[data-testid="cc-message"]');
    var before = null;
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      if (!n.hasAttribute("data-seq")) { before = n; break; }
      var cid = n.getAttribute("data-conversation-id");
      if (cid === String(m.conversation_id) && Number(n.getAttribute("data-seq")) > m.seq) { before = n; break; }
    }
    ui.msgs.insertBefore(node, before);

    if (!(opts && opts.fromCache)) {
      state.messages.push(m);
      if (String(m.conversation_id) === String(state.conversationId) && m.seq > state.lastSeq) state.lastSeq = m.seq;
      persist();
      if (!state.open && senderKind(m) !== "customer") { state.unread += 1; renderBadge(); }
    }
    updateProfileVisibility();
    if (stick || senderKind(m) === "customer") scrollDown(true);
    return true;
  }

  function addDivider(label) {
    ui.msgs.appendChild(text(el("div", "ccw-divider"), label));
    scrollDown(false);
  }

  function addPending(entry) {
    if (findByClientId(entry.client_msg_id)) return;
    if (ui.empty.parentNode) ui.empty.remove();
    ui.msgs.appendChild(messageNode({ sender_kind: "customer", text: entry.text, client_msg_id: entry.client_msg_id }, true));
    scrollDown(true);
  }

  function markFailed(clientMsgId, message) {
    var node = findByClientId(clientMsgId);
    if (!node) return;
    node.classList.add("ccw-failed");
    var meta = node.querySelector(".ccw-meta");
    if (meta) text(meta, "Not sent: " + (message || "error"));
  }

  function settleOutbox(clientMsgId) {
    if (!clientMsgId) return;
    var before = state.outbox.length;
    state.outbox = state.outbox.filter(function (e) { return e.client_msg_id !== clientMsgId; });
    if (state.outbox.length !== before) save(KEY_OUTBOX, state.outbox);
  }

  function switchConversation(conversationId) {
    if (conversationId == null || String(conversationId) === String(state.conversationId)) return;
    var hadOne = state.conversationId != null && state.messages.length > 0;
    state.conversationId = conversationId;
    state.lastSeq = 0;
    // keep only the current conversation in the cache; earlier ones stay on screen until reload
    state.messages = state.messages.filter(function (m) { return String(m.conversation_id) === String(conversationId); });
    state.messages.forEach(function (m) { if (m.seq > state.lastSeq) state.lastSeq = m.seq; });
    if (hadOne) addDivider("New conversation");
    persist();
  }

  // ---------------------------------------------------------------- socket

  function loadSocketIo() {
    if (typeof window.io === "function") return Promise.resolve(window.io);
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = new URL("vendor/socket.io.min.js", scriptUrl).href;
      s.async = true;
      s.onload = function () { typeof window.io === "function" ? resolve(window.io) : reject(new Error("socket.io missing")); };
      s.onerror = function () { reject(new Error("could not load socket.io")); };
      document.head.appendChild(s);
    });
  }

  var connecting = null;
  function connect() {
    if (state.socket) return Promise.resolve(state.socket);
    if (connecting) return connecting;
    setStatus("connecting", "Connecting\u2026");
    connecting = loadSocketIo().then(function (io) {
      var socket = io(HUB + "/customer", {
        auth: function (cb) {
          cb(withIdentity({ visitor_id: state.visitorId, name: state.profile.name || "", email: state.profile.email || "", last_seq: state.lastSeq }));
        },
        reconnectionDelayMax: 8000,
      });
      state.socket = socket;
      wire(socket);
      return socket;
    }, function (err) {
      connecting = null;
      setStatus("offline", "Chat is unavailable right now");
      showError(err.message);
      throw err;
    });
    return connecting;
  }

  function wire(socket) {
    socket.on("connect", function () {
      showAvailability(); // the session's availability says the truth (it may arrive before this event)
      showError("");
      if (state.connectedOnce && state.conversationId != null) {
        // back after a drop: fetch whatever we missed
        var conversationAtResume = state.conversationId;
        socket.timeout(10000).emit("resume", { last_seq: state.lastSeq }, function (err, ack) {
          if (err || !ack || !ack.ok || !Array.isArray(ack.messages)) return;
          if (String(conversationAtResume) !== String(state.conversationId)) return;
          ack.messages.forEach(function (m) { addMessage(m); });
        });
      }
      state.connectedOnce = true;
    });

    // the hub lost its shared state for a while (Redis) and has it back: what another hub process sent
    // meanwhile may not have reached us live, so catch up as after a reconnect
    socket.on("resync", function () {
      if (state.conversationId == null) return;
      var conversationAtResume = state.conversationId;
      socket.timeout(10000).emit("resume", { last_seq: state.lastSeq }, function (err, ack) {
        if (err || !ack || !ack.ok || !Array.isArray(ack.messages)) return;
        if (String(conversationAtResume) !== String(state.conversationId)) return;
        ack.messages.forEach(function (m) { addMessage(m); });
      });
    });

    socket.on("disconnect", function (reason) {
      resetFlush();
      setTyping(false);
      state.availability = undefined; // the next session says it again
      if (reason === "io client disconnect") return;
      setStatus("offline", "Reconnecting\u2026 messages will be sent when you are back online");
    });

    socket.on("connect_error", function (err) {
      if (identityRefused(socket, err)) return;
      var msg = (err && (err.data && err.data.message)) || (err && err.message) || "connection failed";
      if (socket.active) {
        setStatus("offline", "Reconnecting\u2026");
      } else {
        // refused by the hub (not a network problem): it will not retry by itself
        setStatus("offline", "Chat is unavailable: " + msg);
        setTimeout(function () { if (!socket.connected) socket.connect(); }, 15000);
      }
    });

    socket.on("session", function (s) {
      if (!s) return;
      identitySession(s);
      var sent = state.lastSeq;
      var conversationId = s.conversation_id;
      if (conversationId != null && String(conversationId) !== String(state.conversationId)) {
        switchConversation(conversationId);
        if (sent > 0) {
          // our last_seq belonged to another conversation: fetch this one whole
          socket.timeout(10000).emit("resume", { last_seq: 0 }, function (err, ack) {
            if (!err && ack && ack.ok && Array.isArray(ack.messages)) ack.messages.forEach(function (m) { addMessage(m); });
          });
        }
      }
      if (conversationId == null && state.conversationId != null) {
        // the conversation we remember was closed while we were away
        conversationEnded();
      }
      state.status = s.status || null;
      setAvailability(s.availability);
      (s.messages || []).forEach(function (m) { addMessage(m); });
      setAgent(s.agent_name || null);
      var lastQueue = load(KEY_QUEUE, null);
      if (s.status === "queued" && !s.agent_name && lastQueue && String(lastQueue.conversation_id) === String(conversationId)) setQueue(lastQueue);
      else setQueue(null);
      flushOutbox();
      if (conversationId != null || load(KEY_COB_LINK, null)) cobrowseResume(socket);
    });

    socket.on("message", function (m) {
      if (!m) return;
      if (m.conversation_id != null && String(m.conversation_id) !== String(state.conversationId)) switchConversation(m.conversation_id);
      addMessage(m);
      if (m.sender_kind === "agent") setTyping(false);
    });

    socket.on("queue", function (q) {
      if (state.agentName || !q) return;
      setAvailability({ agents_available: q.estimated_wait_seconds == null ? 0 : null, estimated_wait_seconds: q.estimated_wait_seconds });
      setQueue(q);
      save(KEY_QUEUE, { conversation_id: q.conversation_id == null ? state.conversationId : q.conversation_id, position: q.position, estimated_wait_seconds: q.estimated_wait_seconds });
    });

    socket.on("agent_joined", function (p) {
      setQueue(null);
      save(KEY_QUEUE, null);
      setAgent(p && p.agent_name);
    });

    socket.on("typing", function (p) {
      setTyping(!!(p && p.typing), p && p.agent_name);
    });

    socket.on("cobrowse_request", function (p) { cobrowseAsk(p); });
    socket.on("cobrowse_ended", function (p) { cobrowseEnded(p); });
    socket.on("cobrowse_checkout", function (p) { if (cob.recorder && p && p.session_id === cob.sessionId) cob.recorder.checkout(); });
    socket.on("cobrowse_pointer", function (p) { if (p && p.session_id === cob.sessionId) cobrowsePointer(p); });
    socket.on("cobrowse_control_request", function (p) { controlAsk(p); });
    socket.on("cobrowse_control_state", function (p) { if (p && p.session_id === cob.sessionId) setControl(p.control === "granted"); });
    socket.on("cobrowse_control_action", function (p) { controlAct(p); });

    socket.on("document", function (p) { showDocument(p); });

    socket.on("closed", function (p) {
      if (p && p.conversation_id != null && state.conversationId != null && String(p.conversation_id) !== String(state.conversationId)) return;
      conversationEnded();
    });
  }

  function conversationEnded() {
    setQueue(null);
    setTyping(false);
    setAgent(null);
    state.status = "closed";
    addDivider("This conversation has ended. Write again any time.");
    // the next message opens a new conversation, numbered from seq 1
    state.conversationId = null;
    state.lastSeq = 0;
    state.messages = [];
    persist();
  }

  var typingTimer = null;
  function setTyping(on, who) {
    clearTimeout(typingTimer);
    text(ui.typing, on ? (who || state.agentName || "Agent") + " is typing\u2026" : "");
    if (on) typingTimer = setTimeout(function () { text(ui.typing, ""); }, 10000);
  }

  // our own typing: one `typing: true` when it starts, `typing: false` 2 s after the last key
  var meTyping = false;
  var meTypingTimer = null;
  function emitTyping(on) {
    if (meTyping === on) return;
    meTyping = on;
    if (state.socket && state.socket.connected && state.conversationId != null) state.socket.emit("typing", { typing: on });
  }
  function typingChanged() {
    if (!ui.input.value.trim()) { clearTimeout(meTypingTimer); emitTyping(false); return; }
    emitTyping(true);
    clearTimeout(meTypingTimer);
    meTypingTimer = setTimeout(function () { emitTyping(false); }, 2000);
  }

  // ---------------------------------------------------------------- sending

  function clientMsgId() {
    return "c-" + randomId(22);
  }

  function submit() {
    var body = ui.input.value.replace(/\s+$/, "");
    if (!body.trim()) return;
    showError("");
    if (!ui.profile.hidden) {
      var profile = { name: ui.name.value.trim(), email: ui.email.value.trim() };
      var changed = profile.name !== (state.profile.name || "") || profile.email !== (state.profile.email || "");
      state.profile = profile;
      save(KEY_PROFILE, profile);
      // name and email travel in the connection's auth: connect again so the hub sees them. Also while the
      // first handshake is under way: its auth may already have gone out without them (the hub would then know
      // this visitor as "Visitor", and the agent's offer would not carry the name they typed)
      if (changed && state.socket) {
        resetFlush();
        state.socket.disconnect();
        state.socket.connect();
      }
    }
    ui.input.value = "";
    autosize();
    clearTimeout(meTypingTimer);
    emitTyping(false);
    sendText(body, null);
    updateProfileVisibility();
  }

  /** Queue a message (and a bot button's payload, if any) in the outbox and send it. */
  function sendText(body, payload) {
    var entry = { client_msg_id: clientMsgId(), text: body };
    if (payload) entry.payload = payload;
    state.outbox.push(entry);
    save(KEY_OUTBOX, state.outbox);
    addPending(entry);
    if (!state.socket) connect(); // the session event flushes the outbox
    else flushOutbox();
  }

  // The outbox goes out one message at a time, in order: the next is emitted when the previous one's ack
  // is in (the hub may handle a socket's events concurrently, so a burst could be stored out of order, and
  // it limits each socket to a burst of messages, then a few a second: docs/subsystems/realtime.md).
  // A `rate_limited` refusal keeps the message first in line, still pending, and sends it again (same
  // client_msg_id: the hub stores it once) after the ack's `retry_after`; any other refusal fails it.
  var sending = null; // the attempt emitted and not yet acknowledged: {client_msg_id}
  var flushTimer = null; // a wait before the outbox goes on (rate_limited, or an ack that never came)

  function flushLater(ms) {
    clearTimeout(flushTimer);
    flushTimer = setTimeout(function () { flushTimer = null; flushOutbox(); }, ms);
  }

  /** Stop pacing: the socket dropped (a new connection has a new limit, and unanswered emits are lost). */
  function resetFlush() {
    sending = null;
    clearTimeout(flushTimer);
    flushTimer = null;
  }

  function flushOutbox() {
    var socket = state.socket;
    if (!socket || !socket.connected || sending || flushTimer) return;
    state.outbox.forEach(addPending);
    var entry = state.outbox[0];
    if (!entry) return;
    var attempt = sending = { client_msg_id: entry.client_msg_id };
    var data = { client_msg_id: entry.client_msg_id, text: entry.text };
    if (entry.payload) data.payload = entry.payload;
    socket.timeout(15000).emit("message", data, function (err, ack) {
      if (sending !== attempt) return; // the socket dropped meanwhile: the outbox was sent again from its start
      sending = null;
      if (err) {
        // no answer (connection dropped?): it stays first in the outbox and goes again, same id
        if (socket.connected) flushLater(2000);
        return;
      }
      if (ack && ack.ok && ack.message) {
        var m = ack.message;
        if (m.conversation_id != null && String(m.conversation_id) !== String(state.conversationId)) switchConversation(m.conversation_id);
        addMessage(m);
        settleOutbox(entry.client_msg_id); // (addMessage settles it too, unless it was already shown)
        flushOutbox();
        return;
      }
      if (ack && ack.ok) {
        // accepted without a message body: at least stop saying "sending"
        settleOutbox(entry.client_msg_id);
        var node = findByClientId(entry.client_msg_id);
        var meta = node && node.querySelector(".ccw-meta");
        if (meta) text(meta, "sent");
        flushOutbox();
        return;
      }
      var error = (ack && ack.error) || {};
      if (error.code === "rate_limited" || error.code === "unavailable") {
        // over the hub's rate (not stored), or the hub degraded for a moment: this one and those after it wait, still pending
        var wait = Number(error.retry_after);
        if (!isFinite(wait) || wait <= 0) wait = 1;
        flushLater(Math.min(wait, 60) * 1000 + 50);
        return;
      }
      settleOutbox(entry.client_msg_id);
      markFailed(entry.client_msg_id, error.message || error.code || "the message was refused");
      showError(error.message || "Your message could not be sent.");
      flushOutbox();
    });
  }

  // ---------------------------------------------------------------- signed identity and "Your orders" (issue 19)
  // A shop whose customer is logged in passes a token its server signed (docs/security.md, "Signed customer
  // identity"): `data-identity="TOKEN"` on the script tag, or `ccWidget.identify(token)` (null: log out). It goes
  // in the connection's auth; the hub answers a verified session (`verified: true`) or refuses the connection
  // with an `identity_*` code, and then the widget goes on anonymously and fires `cc-identity-refused` on
  // window. Only a verified customer gets the "Your orders" view (the hub's `orders` event). The transcript kept
  // in localStorage belongs to one owner (a customer, or the anonymous visitor): another owner starts clean.

  var KEY_OWNER = "cc_owner";
  var ACCOUNT_CSS = [
    ".ccw .ccw-account{display:flex;align-items:center;gap:8px;padding:6px 16px;border-bottom:1px solid #e5e7eb;background:#f8fafc;font-size:12.5px;color:#374151;}",
    ".ccw .ccw-account[hidden]{display:none;}",
    ".ccw .ccw-account-who{flex:1;min-width:0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;}",
    ".ccw .ccw-orders-toggle{color:#1d4ed8;font-weight:600;text-decoration:underline;padding:2px 4px;border-radius:4px;}",
    ".ccw .ccw-orders-toggle:focus-visible{outline:2px solid #2563eb;outline-offset:1px;}",
    ".ccw .ccw-orders{flex:1;overflow-y:auto;padding:10px 14px;background:#fff;display:flex;flex-direction:column;gap:8px;}",
    ".ccw .ccw-orders[hidden]{display:none;}",
    ".ccw .ccw-order{border:1px solid #e5e7eb;border-radius:10px;padding:8px 10px;}",
    ".ccw .ccw-order-head{display:flex;justify-content:space-between;gap:8px;font-weight:600;}",
    ".ccw .ccw-order-meta{font-size:12px;color:#5f6774;}",
    ".ccw .ccw-order-late{color:#b91c1c;font-weight:600;}",
    ".ccw .ccw-orders-note{color:#5f6774;font-size:13px;}",
  ];
  CSS = CSS + "\n" + ACCOUNT_CSS.join("\n");

  state.identity = script ? (script.getAttribute("data-identity") || "").trim() || null : null;
  state.verified = false;
  (function claimCache() {
    var owner = ownerOf(state.identity);
    if (load(KEY_OWNER, "anon") !== owner) {
      save(KEY_OWNER, owner);
      state.messages = []; state.conversationId = null; state.lastSeq = 0; state.outbox = [];
      persist();
      save(KEY_QUEUE, null);
    }
  })();

  /** Whose cache a token means: "c:<customer_id>" read from its payload (only to keep caches apart: the hub checks it). */
  function ownerOf(token) {
    if (!token) return "anon";
    try {
      var part = token.split(".")[0].replace(/-/g, "+").replace(/_/g, "/");
      var payload = JSON.parse(atob(part + "===".slice((part.length + 3) % 4)));
      return "c:" + String(payload.customer_id);
    } catch (e) {
      return "c:?";
    }
  }

  function withIdentity(auth) {
    if (state.identity) auth.identity = state.identity;
    return auth;
  }

  /** Forget what another owner saw: messages on screen and in storage, the outbox, the queue line. */
  function resetTranscript() {
    state.messages = []; state.conversationId = null; state.lastSeq = 0; state.outbox = []; state.seen = new Map();
    persist();
    save(KEY_QUEUE, null);
    if (ui.msgs) {
      ui.msgs.replaceChildren(ui.empty);
      setAgent(null);
      setQueue(null);
      updateProfileVisibility();
    }
  }

  function setOwner(token) {
    var owner = ownerOf(token);
    if (load(KEY_OWNER, "anon") !== owner) {
      save(KEY_OWNER, owner);
      resetTranscript();
    }
  }

  function identify(token) {
    token = typeof token === "string" && token.trim() ? token.trim() : null;
    if (token === state.identity) return;
    state.identity = token;
    setOwner(token);
    setVerified(false, "");
    if (state.socket) {
      resetFlush();
      state.socket.disconnect();
      state.socket.connect();
    } else if (token) {
      connect().catch(function () { /* the header says it */ });
    }
  }

  function identitySession(s) {
    setVerified(!!s.verified, s.display_name || "");
  }

  /** The hub refused our identity token: go on anonymously, say so, and tell the host page (it may sign a new one). */
  function identityRefused(socket, err) {
    var data = (err && err.data) || {};
    var code = typeof data.code === "string" ? data.code : "";
    if (code.indexOf("identity_") !== 0) return false;
    state.identity = null;
    setOwner(null);
    setVerified(false, "");
    showError(data.message || "Your shop login could not be verified; you are chatting as a guest.");
    try {
      window.dispatchEvent(new CustomEvent("cc-identity-refused", { detail: { code: code, message: data.message || "" } }));
    } catch (e) { /* an old browser: the error line says it */ }
    setTimeout(function () { if (!socket.connected) socket.connect(); }, 0);
    return true;
  }

  var account = {};

  function buildAccount() {
    var bar = el("div", "ccw-account", { "data-testid": "cc-account" });
    bar.hidden = true;
    var who = el("span", "ccw-account-who");
    var toggle = text(el("button", "ccw-orders-toggle", { type: "button", "aria-expanded": "false", "data-testid": "cc-orders-button" }), "Your orders");
    bar.appendChild(who);
    bar.appendChild(toggle);
    var list = el("div", "ccw-orders", { "data-testid": "cc-orders", role: "region", "aria-label": "Your orders", "aria-live": "polite" });
    list.hidden = true;
    ui.panel.insertBefore(list, ui.msgs);
    ui.panel.insertBefore(bar, list);
    account = { bar: bar, who: who, toggle: toggle, list: list };
    toggle.addEventListener("click", function () { showOrders(list.hidden); });
  }

  function setVerified(on, name) {
    state.verified = on;
    if (!account.bar) return;
    account.bar.hidden = !on;
    text(account.who, on ? "Signed in" + (name ? " as " + name : "") : "");
    if (!on) showOrders(false);
  }

  var ordersReq = 0;
  function showOrders(open) {
    if (!account.list) return;
    account.list.hidden = !open;
    ui.msgs.hidden = open;
    account.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    text(account.toggle, open ? "Back to chat" : "Your orders");
    if (!open) { ordersReq++; return; }
    var req = ++ordersReq;
    account.list.replaceChildren(text(el("p", "ccw-orders-note"), "Loading your orders\u2026"));
    var socket = state.socket;
    if (!socket || !socket.connected) {
      account.list.replaceChildren(text(el("p", "ccw-orders-note"), "Not connected: try again in a moment."));
      return;
    }
    socket.timeout(10000).emit("orders", {}, function (err, ack) {
      if (req !== ordersReq) return;
      if (err || !ack || !ack.ok || !Array.isArray(ack.orders)) {
        var why = (ack && ack.error && ack.error.message) || "Your orders could not be loaded.";
        account.list.replaceChildren(text(el("p", "ccw-orders-note"), why));
        return;
      }
      renderOrders(ack.orders);
    });
  }

  function fmtDate(iso) {
    var d = iso ? new Date(iso) : null;
    return d && !isNaN(d.getTime()) ? d.toLocaleDateString() : "";
  }

  function renderOrders(orders) {
    if (!orders.length) {
      account.list.replaceChildren(text(el("p", "ccw-orders-note"), "You have no orders yet."));
      return;
    }
    account.list.replaceChildren.apply(account.list, orders.map(function (o) {
      var item = el("article", "ccw-order", { "data-testid": "cc-order", "data-order-id": String(o.id) });
      var head = el("div", "ccw-order-head");
      head.appendChild(text(el("span"), "Order #" + o.id));
      head.appendChild(text(el("span"), o.total || ""));
      item.appendChild(head);
      var status = String(o.status || "").replace(/_/g, " ");
      var meta = [status, o.created_at ? "placed " + fmtDate(o.created_at) : ""].filter(Boolean).join(" \u00b7 ");
      item.appendChild(text(el("div", "ccw-order-meta"), meta));
      if (o.promised_date) {
        var line = text(el("div", "ccw-order-meta"), "Expected by " + fmtDate(o.promised_date));
        if (o.overdue) line.appendChild(text(el("span", "ccw-order-late"), " \u00b7 late"));
        item.appendChild(line);
      }
      return item;
    }));
  }


  // ---------------------------------------------------------------- call me back (issue 15: docs/subsystems/callback.md)
  //
  // Self-contained: its own bar, form, styles and storage key; it talks to the hub's public POST/DELETE
  // /api/callbacks and GET /api/callbacks/slots. Everything the customer or the hub wrote is set with textContent.

  var KEY_CALLBACK = "cc_callback"; // {id, token, number, when}: the booked callback, to show and cancel it after a reload
  var PHONE_TYPING_RE = /^\+?[0-9 ().-]{0,24}$/;
  var PHONE_DONE_RE = /^\+?[0-9 ().-]*[0-9][0-9 ().-]*$/;
  var CALLBACK_CSS = [
    ".ccw .ccw-cb-bar{display:flex;justify-content:flex-end;padding:4px 16px;border-bottom:1px solid #e5e7eb;background:#f8fafc;}",
    ".ccw .ccw-cb-toggle{font:inherit;font-size:12.5px;border:0;background:none;color:#1d4ed8;cursor:pointer;padding:2px 0;}",
    ".ccw .ccw-cb{padding:12px 16px;display:flex;flex-direction:column;gap:8px;border-bottom:1px solid #e5e7eb;font-size:13px;}",
    ".ccw .ccw-cb[hidden]{display:none;}",
    ".ccw .ccw-cb label{display:flex;flex-direction:column;gap:3px;color:#374151;}",
    ".ccw .ccw-cb input,.ccw .ccw-cb select{font:inherit;padding:6px 8px;border:1px solid #cbd5e1;border-radius:6px;}",
    ".ccw .ccw-cb input[aria-invalid=true]{border-color:#b91c1c;}",
    ".ccw .ccw-cb-hint{color:#5f6774;font-size:12px;min-height:1em;}",
    ".ccw .ccw-cb-hint.bad{color:#b91c1c;}",
    ".ccw .ccw-cb-actions{display:flex;gap:8px;}",
    ".ccw .ccw-cb-actions button{font:inherit;padding:6px 12px;border-radius:6px;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer;}",
    ".ccw .ccw-cb-actions button.ccw-cb-cancel{background:#fff;color:#1d4ed8;}",
    ".ccw .ccw-cb-done{color:#14532d;}",
  ].join("\n");
  var cb = {};

  function buildCallback() {
    var style = el("style", null, { "data-cc-widget": "" });
    style.textContent = CALLBACK_CSS;
    document.head.appendChild(style);
    var bar = el("div", "ccw-cb-bar");
    var toggle = text(el("button", "ccw-cb-toggle", { type: "button", "aria-expanded": "false", "data-testid": "cc-callback-button" }), "Call me back");
    bar.appendChild(toggle);
    var box = el("div", "ccw-cb", { "data-testid": "cc-callback", role: "region", "aria-label": "Call me back" });
    box.hidden = true;
    var form = el("form", "ccw-cb-form");
    var phoneLabel = text(el("label"), "Your phone number");
    var phone = el("input", null, { type: "tel", autocomplete: "tel", maxlength: "24", required: "", "data-testid": "cc-callback-phone" });
    phoneLabel.appendChild(phone);
    var whenLabel = text(el("label"), "When");
    var when = el("select", null, { "data-testid": "cc-callback-when" });
    when.appendChild(text(el("option", null, { value: "now" }), "As soon as possible"));
    whenLabel.appendChild(when);
    var topicLabel = text(el("label"), "What about? (optional)");
    var topic = el("input", null, { type: "text", maxlength: "300", "data-testid": "cc-callback-topic" });
    topicLabel.appendChild(topic);
    var hint = el("div", "ccw-cb-hint", { role: "status", "aria-live": "polite", "data-testid": "cc-callback-hint" });
    var actions = el("div", "ccw-cb-actions");
    var submit = text(el("button", null, { type: "submit", "data-testid": "cc-callback-submit" }), "Call me");
    actions.appendChild(submit);
    form.appendChild(phoneLabel);
    form.appendChild(whenLabel);
    form.appendChild(topicLabel);
    form.appendChild(actions);
    var done = el("div", "ccw-cb-done", { "data-testid": "cc-callback-done", "aria-live": "polite" });
    done.hidden = true;
    var cancel = text(el("button", "ccw-cb-cancel", { type: "button", "data-testid": "cc-callback-cancel" }), "Cancel the callback");
    var doneActions = el("div", "ccw-cb-actions");
    doneActions.appendChild(cancel);
    box.appendChild(form);
    box.appendChild(done);
    box.appendChild(doneActions);
    box.appendChild(hint);
    ui.panel.insertBefore(box, ui.msgs);
    ui.panel.insertBefore(bar, box);
    cb = { bar: bar, toggle: toggle, box: box, form: form, phone: phone, when: when, topic: topic, hint: hint, submit: submit,
      done: done, cancel: cancel, doneActions: doneActions, slotsLoaded: false };

    toggle.addEventListener("click", function () { showCallback(box.hidden); });
    phone.addEventListener("input", function () { checkPhone(false); });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); sendCallback(); });
    cancel.addEventListener("click", cancelCallback);
    renderBooked(load(KEY_CALLBACK, null));
  }

  function showCallback(open) {
    cb.box.hidden = !open;
    cb.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    text(cb.toggle, open ? "Back to chat" : "Call me back");
    ui.msgs.hidden = open;
    if (open && !cb.slotsLoaded) loadSlots();
  }

  function checkPhone(final) {
    var value = cb.phone.value.trim();
    var ok = final ? PHONE_DONE_RE.test(value) && value.replace(/[^0-9]/g, "").length >= 7 : PHONE_TYPING_RE.test(value);
    cb.phone.setAttribute("aria-invalid", ok ? "false" : "true");
    setHint(ok ? "" : "Digits only, with the country code if you are abroad (e.g. +1 415 555 0142).", !ok);
    return ok;
  }

  function setHint(words, bad) {
    text(cb.hint, words);
    cb.hint.className = "ccw-cb-hint" + (bad ? " bad" : "");
  }

  function loadSlots() {
    fetch(HUB + "/api/callbacks/slots", { credentials: "omit" }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
      if (!body || !Array.isArray(body.slots)) return;
      cb.slotsLoaded = true;
      if (body.open_now === false && body.next_opening) {
        // closed now: "now" is booked at the next opening (the hub does it); say so before the customer sends
        var opens = new Date(body.next_opening);
        var opensText = isNaN(opens.getTime()) ? "" : opens.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
        var nowOption = cb.when.querySelector('option[value="now"]');
        if (nowOption) text(nowOption, "When we open" + (opensText ? " (" + opensText + ")" : ""));
        setHint("We are closed now" + (opensText ? ": we will call you when we open, " + opensText + ", or choose a time below." : "."), false);
      }
      body.slots.slice(0, 150).forEach(function (iso) {
        var d = new Date(iso);
        if (isNaN(d.getTime())) return;
        // shown in the customer's own time zone; sent back as the hub's UTC time
        cb.when.appendChild(text(el("option", null, { value: String(iso) }), d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" })));
      });
    }).catch(function () { /* "now" still works */ });
  }

  function sendCallback() {
    if (!checkPhone(true)) return;
    cb.submit.disabled = true;
    setHint("Sending\u2026", false);
    var body = { number: cb.phone.value.trim(), when: cb.when.value || "now" };
    if (cb.topic.value.trim()) body.topic = cb.topic.value.trim();
    fetch(HUB + "/api/callbacks", { method: "POST", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }, function () { return { ok: false, body: null }; }); })
      .then(function (res) {
        cb.submit.disabled = false;
        if (!res.ok || !res.body || !res.body.callback) {
          setHint((res.body && res.body.message) || "Your request could not be sent: please try again.", true);
          return;
        }
        var c = res.body.callback;
        var booked = { id: c.id, token: res.body.cancel_token, number: c.number, when: c.requested_for || "now", queue: res.body.queue || null,
          closed: !!res.body.closed };
        save(KEY_CALLBACK, booked);
        setHint("", false);
        renderBooked(booked);
      }, function () {
        cb.submit.disabled = false;
        setHint("Not connected: please try again in a moment.", true);
      });
  }

  function renderBooked(booked) {
    var has = !!(booked && booked.id && booked.token);
    cb.form.hidden = has;
    cb.done.hidden = !has;
    cb.doneActions.hidden = !has;
    if (!has) return;
    var line = "We will call you " + (booked.when === "now" ? "as soon as an agent is free" : "at " + new Date(booked.when).toLocaleString()) + " on " + booked.number + ".";
    if (booked.closed && booked.when !== "now") {
      line = "We are closed now: we will call you when we open, at " + new Date(booked.when).toLocaleString() + ", on " + booked.number + ".";
    }
    var q = booked.queue;
    if (q && q.position) {
      line += " You are number " + q.position + " in the queue";
      if (q.estimated_wait_seconds) line += ", about " + Math.max(1, Math.round(q.estimated_wait_seconds / 60)) + " min";
      line += ".";
    }
    text(cb.done, line);
  }

  function cancelCallback() {
    var booked = load(KEY_CALLBACK, null);
    if (!booked || !booked.id) { renderBooked(null); return; }
    cb.cancel.disabled = true;
    fetch(HUB + "/api/callbacks/" + encodeURIComponent(booked.id), { method: "DELETE", credentials: "omit", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ token: booked.token }) })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, body: j }; }, function () { return { ok: r.ok, body: null }; }); })
      .then(function (res) {
        cb.cancel.disabled = false;
        save(KEY_CALLBACK, null);
        renderBooked(null);
        setHint(res.ok ? "Your callback is cancelled." : (res.body && res.body.message) || "It could not be cancelled (it may be under way).", !res.ok);
      }, function () {
        cb.cancel.disabled = false;
        setHint("Not connected: please try again in a moment.", true);
      });
  }

  // ---------------------------------------------------------------- co-browsing (docs/subsystems/cobrowse.md)
  // Nothing is recorded or sent before the customer accepts. The recorder (rrweb, with the privacy options) is
  // a separate script loaded only then; the hub relays what it records to the agent who holds this chat.

  var cob = { sessionId: null, recorder: null, control: false, bannerText: null, revoke: null, agentName: null, banner: null, pointer: null, highlight: null, promptTimer: null, loading: null };

  function loadRecorder() {
    if (window.ccCobrowseRecorder) return Promise.resolve(window.ccCobrowseRecorder);
    if (cob.loading) return cob.loading;
    cob.loading = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = HUB + "/static/console/dist/cobrowse-recorder.js";
      s.async = true;
      s.onload = function () { window.ccCobrowseRecorder ? resolve(window.ccCobrowseRecorder) : reject(new Error("recorder missing")); };
      s.onerror = function () { cob.loading = null; reject(new Error("could not load the co-browsing recorder")); };
      document.head.appendChild(s);
    });
    return cob.loading;
  }

  // A consent prompt in the widget (co-browsing, then guided control): the question as text, Allow / No thanks
  // (test ids <testid>-question, -allow, -deny), the widget opened and Allow focused; onAnswer(true|false).
  function askConsent(testid, question, allowLabel, onAnswer) {
    var box = ui.consent;
    box.replaceChildren();
    box.appendChild(text(el("p", null, { "data-testid": testid + "-question" }), question));
    var actions = el("div", "ccw-consent-actions");
    var allow = text(el("button", "ccw-allow", { type: "button", "data-testid": testid + "-allow" }), allowLabel);
    var deny = text(el("button", "ccw-deny", { type: "button", "data-testid": testid + "-deny" }), "No thanks");
    actions.appendChild(allow);
    actions.appendChild(deny);
    box.appendChild(actions);
    box.hidden = false;
    setOpen(true);
    allow.focus();
    allow.addEventListener("click", function () { onAnswer(true); });
    deny.addEventListener("click", function () { onAnswer(false); });
  }

  function cobrowseAsk(p) {
    if (!p || !p.session_id || p.state !== "pending") return;
    if (cob.recorder && cob.sessionId === p.session_id) return;
    cob.sessionId = p.session_id;
    var who = p.agent_name || "The agent";
    var sessionId = p.session_id;
    askConsent("cc-cobrowse", who + " would like to see this page with you, to help. They will see this tab only, never what you type: fields stay hidden. You can stop at any time.",
      "Allow", function (yes) { answer(sessionId, yes); });
    clearTimeout(cob.promptTimer);
    var left = (Number(p.consent_deadline) || 0) * 1000 - Date.now();
    cob.promptTimer = setTimeout(hidePrompt, Math.max(1000, Math.min(60000, left || 60000)));
  }

  function hidePrompt() {
    clearTimeout(cob.promptTimer);
    ui.consent.hidden = true;
    ui.consent.replaceChildren();
  }

  function answer(sessionId, accept) {
    hidePrompt();
    var socket = state.socket;
    if (!socket) return;
    socket.timeout(10000).emit("cobrowse_consent", { session_id: sessionId, accept: accept }, function (err, ack) {
      if (err || !ack || !ack.ok) {
        if (accept) showError((ack && ack.error && ack.error.message) || "Co-browsing could not start");
        return;
      }
      if (accept && ack.session && ack.session.state === "live") startRecording(ack.session);
      if (!accept) cob.sessionId = null;
    });
  }

  function startRecording(session) {
    if (cob.recorder && cob.sessionId === session.session_id) return;
    cob.sessionId = session.session_id;
    showBanner(session.agent_name);
    setControl(session.control === "granted"); // a new page of a session with control given
    loadRecorder().then(function (rec) {
      if (cob.sessionId !== session.session_id || cob.recorder) return; // ended while loading
      cob.recorder = rec.start({
        send: function (piece) {
          var socket = state.socket;
          if (!socket || !socket.connected || cob.sessionId !== session.session_id) return false;
          piece.session_id = session.session_id;
          socket.timeout(15000).emit("cobrowse_events", piece, function (err, ack) {
            if (!err && ack && !ack.ok && ack.error && ack.error.code === "not_found") stopRecording();
          });
          return true;
        },
      });
    }, function (err) {
      showError(err.message);
      endCobrowse();
    });
  }

  function stopRecording() {
    save(KEY_COB_LINK, null);
    cob.control = false;
    if (cob.recorder) { try { cob.recorder.stop(); } catch (e) { /* already stopped */ } }
    cob.recorder = null;
    cob.sessionId = null;
    hidePrompt();
    if (cob.banner) { cob.banner.remove(); cob.banner = null; }
    if (cob.pointer) { cob.pointer.remove(); cob.pointer = null; }
    if (cob.highlight) { cob.highlight.remove(); cob.highlight = null; }
  }

  function endCobrowse() {
    var sessionId = cob.sessionId;
    stopRecording(); // at once: nothing more is recorded
    if (sessionId && state.socket) state.socket.timeout(10000).emit("cobrowse_end", { session_id: sessionId }, function () {});
  }

  function cobrowseEnded(p) {
    if (!p || (cob.sessionId && p.session_id !== cob.sessionId)) return;
    var wasLive = !!cob.recorder;
    stopRecording();
    if (wasLive) addDivider("Co-browsing has ended");
  }

  function showBanner(agentName) {
    if (cob.banner) return;
    var bar = el("div", "ccw-cobrowse-banner", { role: "status", "data-cc-widget": "", "data-testid": "cc-cobrowse-banner" });
    cob.agentName = agentName || "The agent";
    cob.bannerText = text(el("span", null, { "data-testid": "cc-cobrowse-banner-text" }), cob.agentName + " is viewing this page");
    bar.appendChild(cob.bannerText);
    cob.revoke = text(el("button", null, { type: "button", "data-testid": "cc-control-revoke" }), "Take back control");
    cob.revoke.style.display = "none"; // the banner's buttons are "all: initial": the hidden attribute would not hide it
    cob.revoke.addEventListener("click", revokeControl);
    bar.appendChild(cob.revoke);
    var stop = text(el("button", null, { type: "button", "data-testid": "cc-cobrowse-end" }), "End");
    stop.addEventListener("click", endCobrowse);
    bar.appendChild(stop);
    document.body.appendChild(bar);
    cob.banner = bar;
  }

  // Guided control: a second, separate consent. With it the agent may scroll, click and fill on this page; the
  // recorder refuses masked and blocked elements whatever arrives, and the customer takes control back at any time.
  function controlAsk(p) {
    if (!p || !cob.recorder || p.session_id !== cob.sessionId || cob.control) return;
    var sessionId = p.session_id;
    askConsent("cc-control", cob.agentName + " asks to guide you on this page: to scroll, click and fill in ordinary fields for you. Never card, password or code fields. You can take control back at any time.",
      "Allow control", function (grant) {
        hidePrompt();
        if (!state.socket) return;
        state.socket.timeout(10000).emit("cobrowse_control", { session_id: sessionId, grant: grant }, function (err, ack) {
          if (!err && ack && ack.ok && ack.session) setControl(ack.session.control === "granted");
        });
      });
  }

  function setControl(on) {
    cob.control = !!on && !!cob.sessionId;
    if (cob.bannerText) text(cob.bannerText, cob.agentName + (cob.control ? " is guiding you on this page" : " is viewing this page"));
    if (cob.revoke) cob.revoke.style.display = cob.control ? "" : "none";
  }

  function revokeControl() {
    var sessionId = cob.sessionId;
    setControl(false); // at once: nothing more is applied
    if (sessionId && state.socket) state.socket.timeout(10000).emit("cobrowse_control_revoke", { session_id: sessionId }, function () {});
  }

  function controlAct(p) {
    if (!p || !cob.recorder || p.session_id !== cob.sessionId) return;
    var result = cob.control ? cob.recorder.control(p) : { ok: false, reason: "not_granted" };
    if (state.socket) state.socket.timeout(10000).emit("cobrowse_control_result", { session_id: p.session_id, id: p.id, ok: !!result.ok, reason: result.reason || null }, function () {});
  }

  function cobrowsePointer(p) {
    if (!cob.recorder) return;
    if (p.hide) { if (cob.pointer) cob.pointer.style.display = "none"; return; }
    if (!cob.pointer) {
      cob.pointer = el("div", "ccw-cobrowse-pointer", { "data-cc-widget": "", "aria-hidden": "true", "data-testid": "cc-cobrowse-pointer" });
      document.body.appendChild(cob.pointer);
    }
    cob.pointer.style.display = "block";
    cob.pointer.style.left = p.x + "px";
    cob.pointer.style.top = p.y + "px";
    if (p.highlight) {
      var target = document.elementFromPoint(p.x, p.y);
      if (!target || target.closest("[data-cc-widget]")) return;
      var r = target.getBoundingClientRect();
      if (!cob.highlight) {
        cob.highlight = el("div", "ccw-cobrowse-highlight", { "data-cc-widget": "", "aria-hidden": "true", "data-testid": "cc-cobrowse-highlight" });
        document.body.appendChild(cob.highlight);
      }
      var hl = cob.highlight;
      hl.style.display = "block";
      hl.style.left = (r.left - 4) + "px";
      hl.style.top = (r.top - 4) + "px";
      hl.style.width = (r.width + 8) + "px";
      hl.style.height = (r.height + 8) + "px";
      clearTimeout(cob.highlightTimer);
      cob.highlightTimer = setTimeout(function () { if (cob.highlight) cob.highlight.style.display = "none"; }, 3000);
    }
  }

  // On a call: the agent reads out a six-digit code; typing it here is the caller's consent and links this browser
  // to the call's co-browsing session (only that: nothing of the call's conversation comes here).
  var KEY_COB_LINK = "cc_cobrowse_link"; // this browser joined a call's session with a code: the next page resumes it
  var CODE_CSS = [
    ".ccw .ccw-code-bar{display:flex;justify-content:center;padding:0 16px 8px;}",
    ".ccw .ccw-code-toggle{font:inherit;font-size:12px;border:0;background:none;color:#1d4ed8;cursor:pointer;padding:2px 0;text-decoration:underline;}",
    ".ccw .ccw-code{display:flex;gap:8px;padding:0 14px 10px;align-items:center;flex-wrap:wrap;}",
    ".ccw .ccw-code[hidden]{display:none;}",
    ".ccw .ccw-code input{font:600 15px ui-monospace,monospace;letter-spacing:.15em;width:9em;padding:6px 8px;border:1px solid #cbd5e1;border-radius:6px;}",
    ".ccw .ccw-code button{font:inherit;font-size:13px;padding:6px 12px;border-radius:6px;border:1px solid #1d4ed8;background:#1d4ed8;color:#fff;cursor:pointer;}",
    ".ccw .ccw-code button:disabled{opacity:.6;cursor:default;}",
    ".ccw .ccw-code-hint{flex-basis:100%;font-size:12px;color:#5f6774;min-height:1em;}",
    ".ccw .ccw-code-hint.bad{color:#b91c1c;}",
  ].join("\n");
  var codeUi = null;

  function buildCodeEntry() {
    var style = el("style", null, { "data-cc-widget": "" });
    style.textContent = CODE_CSS;
    document.head.appendChild(style);
    var bar = el("div", "ccw-code-bar");
    var toggle = text(el("button", "ccw-code-toggle", { type: "button", "aria-expanded": "false", "data-testid": "cc-code-toggle" }), "Have a code from our agent?");
    bar.appendChild(toggle);
    var form = el("form", "ccw-code", { "data-testid": "cc-code-form", "aria-label": "Code from our agent" });
    form.hidden = true;
    var input = el("input", null, { type: "text", inputmode: "numeric", autocomplete: "off", maxlength: "7", placeholder: "123 456",
      "aria-label": "The six-digit code the agent read out", "data-testid": "cc-code-input" });
    var submit = text(el("button", null, { type: "submit", "data-testid": "cc-code-submit" }), "Show my page");
    var hint = text(el("div", "ccw-code-hint", { role: "status", "aria-live": "polite", "data-testid": "cc-code-hint" }),
      "The agent will see this tab (never what you type) until you press End.");
    form.appendChild(input);
    form.appendChild(submit);
    form.appendChild(hint);
    ui.panel.appendChild(bar);
    ui.panel.appendChild(form);
    codeUi = { bar: bar, toggle: toggle, form: form, input: input, submit: submit, hint: hint };
    toggle.addEventListener("click", function () {
      form.hidden = !form.hidden;
      toggle.setAttribute("aria-expanded", form.hidden ? "false" : "true");
      if (!form.hidden) input.focus();
    });
    form.addEventListener("submit", function (ev) { ev.preventDefault(); joinWithCode(); });
  }

  function codeHint(msg, bad) {
    text(codeUi.hint, msg);
    codeUi.hint.className = "ccw-code-hint" + (bad ? " bad" : "");
  }

  function joinWithCode() {
    var raw = codeUi.input.value.trim();
    if (!/^[0-9]{3}[ -]?[0-9]{3}$/.test(raw)) { codeHint("Type the six digits the agent read out to you.", true); return; }
    codeUi.submit.disabled = true;
    codeHint("Checking the code\u2026", false);
    connect().then(function (socket) {
      socket.timeout(10000).emit("cobrowse_join", { code: raw }, function (err, ack) {
        codeUi.submit.disabled = false;
        if (err || !ack) { codeHint("No answer: please try again.", true); return; }
        if (!ack.ok) {
          var e = ack.error || {};
          if (e.code === "rate_limited") codeHint("Too many wrong codes: please try again in " + Math.ceil((Number(e.retry_after) || 60) / 60) + " min.", true);
          else codeHint(e.code === "not_found" ? "That code is not valid: ask the agent for a new one." : "That is not a code: six digits, please.", true);
          return;
        }
        codeUi.input.value = "";
        codeUi.form.hidden = true;
        codeUi.toggle.setAttribute("aria-expanded", "false");
        codeHint("The agent will see this tab (never what you type) until you press End.", false);
        if (ack.session && ack.session.state === "live") {
          startRecording(ack.session);
          save(KEY_COB_LINK, true);
        }
      });
    }, function () { codeUi.submit.disabled = false; codeHint("Not connected: please try again in a moment.", true); });
  }

  /** On every (re)connect: a live session goes on (a new page of the same chat), a pending one asks again. */
  function cobrowseResume(socket) {
    socket.timeout(10000).emit("cobrowse_status", {}, function (err, ack) {
      if (err || !ack || !ack.ok) return;
      var s = ack.session;
      if (!s) { if (cob.recorder || cob.sessionId) stopRecording(); return; }
      if (s.state === "live") {
        if (cob.recorder && cob.sessionId === s.session_id) cob.recorder.checkout(); // the agent missed events
        else startRecording(s);
      } else if (s.state === "pending") cobrowseAsk(s);
    });
  }

  // ---------------------------------------------------------------- pushed documents (docs/subsystems/cobrowse.md)
  // The agent pushed a file of the shop's library: shown inline (images natively, PDFs with PDF.js loaded only
  // then), with a download button. The link works for 15 minutes and only with this widget's visitor id.

  var docs = {};
  function docEvent(pushId, event) {
    if (state.socket) state.socket.timeout(10000).emit("document_event", { push_id: pushId, event: event }, function () {});
  }
  function fetchDoc(p, download) {
    return fetch(HUB + p.url + (download ? "&download=1" : ""), { headers: { "X-CC-Visitor": state.visitorId }, credentials: "omit" })
      .then(function (r) { if (!r.ok) throw new Error(r.status === 410 ? "The link has expired" : "The document could not be opened"); return r.arrayBuffer(); });
  }
  function loadPdfViewer() {
    if (window.ccPdfViewer) return Promise.resolve(window.ccPdfViewer);
    return new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = HUB + "/static/console/dist/cobrowse-pdf.js";
      s.async = true;
      s.onload = function () { window.ccPdfViewer ? resolve(window.ccPdfViewer) : reject(new Error("PDF viewer missing")); };
      s.onerror = function () { reject(new Error("could not load the PDF viewer")); };
      document.head.appendChild(s);
    });
  }
  function showDocument(p) {
    if (!p || typeof p.push_id !== "string" || typeof p.url !== "string" || p.url.indexOf("/documents/push/") !== 0 || docs[p.push_id]) return;
    docs[p.push_id] = true;
    docEvent(p.push_id, "delivered");
    var card = el("div", "ccw-doc", { "data-testid": "cc-document", "data-push-id": p.push_id });
    var head = el("div", "ccw-doc-head");
    head.appendChild(text(el("span", "ccw-doc-name"), (p.agent_name ? p.agent_name + " shared: " : "") + (p.name || "document")));
    var download = text(el("button", null, { type: "button", "data-testid": "cc-document-download" }), "Download");
    head.appendChild(download);
    var view = el("div", "ccw-doc-view", { "data-testid": "cc-document-view" });
    var status = text(el("div", "ccw-doc-status", { "data-testid": "cc-document-status" }), "Opening\u2026");
    card.appendChild(head);
    card.appendChild(status);
    card.appendChild(view);
    ui.msgs.appendChild(card);
    setOpen(true);
    scrollDown(true);
    download.addEventListener("click", function () {
      fetchDoc(p, true).then(function (buf) {
        var a = document.createElement("a");
        a.href = URL.createObjectURL(new Blob([buf], { type: "application/octet-stream" }));
        a.download = p.name || "document";
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); }, 10000);
      }, function (err) { text(status, err.message); });
    });
    fetchDoc(p, false).then(function (buf) {
      if (p.content_type === "application/pdf") {
        return loadPdfViewer().then(function (viewer) {
          return viewer.render(new Uint8Array(buf), view, { workerSrc: HUB + "/static/console/dist/pdf.worker.min.mjs", width: 300 });
        }).then(function (r) { text(status, r.pages + (r.pages === 1 ? " page" : " pages")); });
      }
      if (/^image\/(png|jpeg|webp)$/.test(p.content_type)) {
        var img = el("img", null, { alt: p.name || "document", "data-testid": "cc-document-image" });
        return new Promise(function (resolve, reject) {
          img.onload = resolve;
          img.onerror = function () { reject(new Error("The image could not be shown")); };
          img.src = URL.createObjectURL(new Blob([buf], { type: p.content_type }));
          view.appendChild(img);
        }).then(function () { text(status, ""); });
      }
      throw new Error("This kind of document cannot be shown");
    }).then(function () {
      card.setAttribute("data-opened", "true");
      docEvent(p.push_id, "opened"); // first render
    }, function (err) { text(status, err.message || "The document could not be opened"); });
  }

  // ---------------------------------------------------------------- start

  function start() {
    build();
    buildAccount();
    buildCallback(); // the "call me back" form (issue 15)
    buildCodeEntry(); // "Have a code from our agent?": co-browsing on a call (issue 17)
    state.messages.slice().sort(function (a, b) { return a.seq - b.seq; }).forEach(function (m) { addMessage(m, { fromCache: true }); });
    state.outbox.forEach(addPending);
    updateProfileVisibility();
    // returning visitors (history or unsent messages) connect at once; new ones when they open the chat
    if (state.messages.length || state.outbox.length || state.conversationId != null || load(KEY_COB_LINK, null)) connect();
    if (load(KEY_OPEN, null) === true) setOpen(true); // it was open before the reload
  }

  window.ccWidget = {
    open: function () { setOpen(true); },
    close: function () { setOpen(false); },
    get socket() { return state.socket; },
    get visitorId() { return state.visitorId; },
    identify: function (token) { identify(token); },
  };

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
