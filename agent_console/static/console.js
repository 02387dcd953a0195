// Agent console: one page, plain ES module, no build step.
// Protocol: docs/subsystems/realtime.md (Socket.IO namespace /agent, session cookie from POST /auth/login).
// Every piece of customer, agent or CRM data goes into the page as text (textContent / text nodes).

const $ = (id) => document.getElementById(id);

/** Build an element. props: class, data-*, aria-*, any attribute; children: nodes or strings (as text). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function randomId(n = 22) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const bytes = crypto.getRandomValues(new Uint8Array(n));
  return Array.from(bytes, (b) => alphabet[b & 63]).join("");
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
const shortFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

/** A compact time for lists: the time today, day and time this year, the full date before. */
function when(iso) {
  if (!iso) return "";
  const d = toDate(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return d.getFullYear() === now.getFullYear() ? shortFmt.format(d) : dateFmt.format(d);
}

function toDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso));
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : new Date(iso); // a date alone is a local day
}
function fmt(iso, f = timeFmt) {
  if (!iso) return "";
  const d = toDate(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : f.format(d);
}
function humanize(s) {
  return String(s ?? "").replace(/_/g, " ");
}
function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] || "?") + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

// ------------------------------------------------------------------ state

const state = {
  socket: null,
  agent: null,
  status: "offline",
  connectedOnce: false,
  offers: new Map(), // conversation id -> {data, node, receivedAt}
  convs: new Map(), // conversation id -> conversation record (see newConv)
  activeId: null,
  canned: null, // [{shortcut, text}] once loaded
  cannedIndex: 0,
  customerReq: 0,
};

function key(id) {
  return String(id);
}

function newConv(data) {
  const id = data.id ?? data.conversation_id;
  return {
    id,
    customerId: data.customer_id ?? data.customer?.id ?? null,
    customerName: data.customer?.display_name ?? data.customer_name ?? data.display_name ?? null,
    channel: data.channel ?? "web",
    queue: data.queue ?? null,
    status: data.status ?? "active",
    messages: new Map(), // seq -> message
    noteSeqs: new Set(),
    outbox: [], // [{client_msg_id, text}] replies not yet acknowledged
    inflight: new Set(),
    unread: 0,
    lastSeq: 0,
    closed: false,
    node: null,
  };
}

function convName(conv) {
  return conv.customerName || (conv.customerId != null ? `Customer #${conv.customerId}` : `Conversation #${conv.id}`);
}

// ------------------------------------------------------------------ small UI helpers

function toast(message, kind = "info") {
  const node = h("div", { class: `toast ${kind === "error" ? "error" : ""}`, role: "status", text: message });
  $("toasts").append(node);
  setTimeout(() => node.remove(), 4500);
}

function setConn(kind, label) {
  const el = $("conn-state");
  el.dataset.state = kind;
  el.querySelector(".conn-label").textContent = label;
}

function chatError(message) {
  const el = $("chat-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function updateTitle() {
  let count = state.offers.size;
  for (const c of state.convs.values()) count += c.unread;
  document.title = (count ? `(${count}) ` : "") + "Agent console · Contact centre";
}

// ------------------------------------------------------------------ login / logout

function showLogin(message) {
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.textContent = message || "";
  err.hidden = !message;
  $("login-password").value = "";
  $("login-username").focus();
}

async function login(ev) {
  ev.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const err = $("login-error");
  err.hidden = true;
  if (!username || !password) {
    err.textContent = "Enter your username and password.";
    err.hidden = false;
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  try {
    const res = await fetch("/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (res.status === 401) {
      err.textContent = "wrong username or password";
      err.hidden = false;
      $("login-password").select();
      return;
    }
    if (!res.ok) {
      err.textContent = res.status === 429 ? "Too many attempts: wait a minute and try again." : `Could not sign in (error ${res.status}).`;
      err.hidden = false;
      return;
    }
    let body = {};
    try {
      body = await res.json();
    } catch {
      /* no body */
    }
    startApp(body.agent || body);
  } catch {
    err.textContent = "Cannot reach the hub. Check your connection.";
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  try {
    await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
  } catch {
    /* signed out locally anyway */
  }
  teardown();
  showLogin();
}

function teardown() {
  if (state.socket) {
    state.socket.removeAllListeners();
    state.socket.disconnect();
  }
  state.socket = null;
  state.connectedOnce = false;
  state.offers.clear();
  state.convs.clear();
  state.activeId = null;
  $("offers").replaceChildren();
  $("conversations").replaceChildren();
  $("transcript").replaceChildren();
  renderCounts();
  showChat(null);
  render360Placeholder();
}

// ------------------------------------------------------------------ socket

function loadIo() {
  if (typeof window.io === "function") return Promise.resolve(window.io);
  return new Promise((resolve, reject) => {
    const s = h("script", { src: "/static/vendor/socket.io.min.js" });
    s.onload = () => resolve(window.io);
    s.onerror = () => reject(new Error("could not load socket.io"));
    document.head.append(s);
  });
}

function showAgent(agent) {
  if (!agent) return;
  state.agent = { ...(state.agent || {}), ...agent };
  $("agent-name").textContent = state.agent.display_name || state.agent.username || "";
}

async function startApp(agent) {
  $("login-view").hidden = true;
  $("app-view").hidden = false;
  if (agent && (agent.username || agent.display_name)) showAgent(agent);
  setConn("connecting", "Connecting…");
  const io = await loadIo();
  if (state.socket) return;
  const socket = io("/agent", { withCredentials: true });
  state.socket = socket;

  socket.on("connect", () => {
    setConn("online", "Connected");
    if (state.connectedOnce) {
      for (const conv of state.convs.values()) if (!conv.closed) resume(conv);
    }
    state.connectedOnce = true;
  });
  socket.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    setConn("offline", "Reconnecting…");
    for (const conv of state.convs.values()) conv.inflight.clear();
  });
  socket.on("connect_error", async (err) => {
    if (socket.active) {
      setConn("offline", "Reconnecting…");
      return;
    }
    // refused by the hub: most likely the session is gone
    let authed = false;
    try {
      authed = (await fetch("/auth/me", { credentials: "same-origin" })).ok;
    } catch {
      /* hub unreachable */
    }
    if (!authed) {
      teardown();
      showLogin("Your session has ended. Please sign in again.");
    } else {
      setConn("offline", `Refused: ${err?.message || "error"}`);
      setTimeout(() => state.socket === socket && !socket.connected && socket.connect(), 5000);
    }
  });

  socket.on("hello", onHello);
  socket.on("offer", addOffer);
  socket.on("offer_revoked", (p) => removeOffer(p?.conversation_id));
  socket.on("message", onMessage);
  socket.on("typing", (p) => {
    if (p && key(p.conversation_id) === key(state.activeId)) setTyping(!!p.typing);
  });
  socket.on("conversation_closed", (p) => {
    const conv = p && state.convs.get(key(p.conversation_id));
    if (conv) markClosed(conv);
  });
}

function onHello(hello) {
  if (!hello) return;
  showAgent(hello.agent);
  setStatusUi(hello.status || "offline");

  // offers: the hub's list is the truth
  const offered = new Set();
  for (const offer of hello.offers || []) {
    offered.add(key(offer.conversation_id));
    addOffer(offer);
  }
  for (const id of [...state.offers.keys()]) if (!offered.has(id)) removeOffer(id);

  // conversations: merge with what we hold (a reconnect keeps the transcripts)
  if (Array.isArray(hello.conversations)) {
    const live = new Set();
    for (const data of hello.conversations) {
      const conv = upsertConv(data);
      if (!conv) continue;
      live.add(key(conv.id));
      for (const m of data.messages || []) addMessage(conv, m);
      if (!data.messages) resume(conv);
    }
    for (const conv of state.convs.values()) if (!live.has(key(conv.id)) && !conv.closed) markClosed(conv);
  }
  renderCounts();
  // after a reload, open the first chat instead of an empty screen
  if (state.activeId === null) {
    const first = [...state.convs.values()].find((c) => !c.closed);
    if (first) selectConv(first.id);
  }
}

function upsertConv(data) {
  const id = data?.id ?? data?.conversation_id;
  if (id === undefined || id === null) return null;
  let conv = state.convs.get(key(id));
  if (!conv) {
    conv = newConv(data);
    state.convs.set(key(id), conv);
  } else {
    const fresh = newConv(data);
    conv.customerId = fresh.customerId ?? conv.customerId;
    conv.customerName = fresh.customerName ?? conv.customerName;
    conv.channel = fresh.channel ?? conv.channel;
    conv.status = fresh.status ?? conv.status;
  }
  renderConvItem(conv);
  return conv;
}

function resume(conv) {
  const socket = state.socket;
  if (!socket?.connected) return;
  socket.timeout(10000).emit("resume", { conversation_id: conv.id, last_seq: conv.lastSeq }, (err, ack) => {
    if (err || !ack?.ok) return;
    for (const m of ack.messages || []) addMessage(conv, m);
    flushOutbox(conv);
  });
}

// ------------------------------------------------------------------ status

function setStatusUi(status) {
  state.status = status;
  $("status-select").value = status;
  $("status-select").dataset.confirmed = status; // what the hub last acknowledged
  $("status-dot").dataset.status = status;
}

function onStatusChange() {
  const select = $("status-select");
  const wanted = select.value;
  const previous = state.status;
  $("status-dot").dataset.status = wanted;
  if (!state.socket?.connected) {
    setStatusUi(previous);
    toast("Not connected: status unchanged", "error");
    return;
  }
  select.disabled = true;
  state.socket.timeout(10000).emit("set_status", { status: wanted }, (err, ack) => {
    select.disabled = false;
    if (err || !ack?.ok) {
      setStatusUi(previous);
      toast(ack?.error?.message || "Could not change status", "error");
      return;
    }
    setStatusUi(ack.status || wanted);
  });
}

// ------------------------------------------------------------------ offers

function addOffer(offer) {
  if (!offer || offer.conversation_id == null) return;
  const id = key(offer.conversation_id);
  if (state.convs.has(id) && !state.convs.get(id).closed) return; // already mine
  const existing = state.offers.get(id);
  if (existing) {
    existing.data = offer;
    return;
  }
  const name = offer.customer?.display_name || `Customer #${offer.customer?.id ?? "?"}`;
  const timer = h("span", { class: "offer-timer", "data-testid": "offer-countdown" });
  const bar = h("span");
  const accept = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "offer-accept", text: "Accept" });
  const decline = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "offer-decline", text: "Decline" });
  const meta = [humanize(offer.channel || "web"), offer.queue ? humanize(offer.queue) : null].filter(Boolean).join(" · ");
  const node = h(
    "div",
    { class: "offer", "data-testid": "offer", "data-conversation-id": id },
    h("div", { class: "offer-top" }, h("span", { class: "offer-name", text: name }), timer),
    h("div", { class: "offer-meta", text: meta }),
    offer.preview ? h("div", { class: "offer-preview", text: offer.preview }) : null,
    h("div", { class: "offer-bar" }, bar),
    h("div", { class: "offer-actions" }, accept, decline),
  );
  const entry = { data: offer, node, timer, bar, receivedAt: Date.now() / 1000 };
  accept.addEventListener("click", () => acceptOffer(entry, accept, decline));
  decline.addEventListener("click", () => declineOffer(entry, accept, decline));
  state.offers.set(id, entry);
  $("offers").prepend(node);
  tickOffers();
  renderCounts();
}

function removeOffer(conversationId) {
  if (conversationId === undefined || conversationId === null) return;
  const entry = state.offers.get(key(conversationId));
  if (!entry) return;
  entry.node.remove();
  state.offers.delete(key(conversationId));
  renderCounts();
}

function tickOffers() {
  const now = Date.now() / 1000;
  for (const [id, entry] of state.offers) {
    const expires = Number(entry.data.expires_at) || 0;
    const left = Math.max(0, Math.round(expires - now));
    const total = Math.max(1, expires - entry.receivedAt);
    entry.timer.textContent = `${left}s`;
    entry.timer.classList.toggle("urgent", left <= 5);
    entry.bar.style.width = `${Math.max(0, Math.min(100, ((expires - now) / total) * 100))}%`;
    if (expires && now > expires + 1) removeOffer(id); // it has gone to someone else
  }
}
setInterval(tickOffers, 1000);

function acceptOffer(entry, ...buttons) {
  const socket = state.socket;
  if (!socket?.connected) return toast("Not connected", "error");
  buttons.forEach((b) => (b.disabled = true));
  const offer = entry.data;
  socket.timeout(10000).emit("accept", { conversation_id: offer.conversation_id }, (err, ack) => {
    buttons.forEach((b) => (b.disabled = false));
    if (err || !ack?.ok) {
      toast(ack?.error?.message || "Could not accept: it may have gone to someone else", "error");
      if (ack?.error?.code === "conflict" || ack?.error?.code === "not_found") removeOffer(offer.conversation_id);
      return;
    }
    removeOffer(offer.conversation_id);
    const data = ack.conversation || { id: offer.conversation_id };
    const conv = upsertConv({ ...data, id: data.id ?? offer.conversation_id, customer: offer.customer, customer_id: data.customer_id ?? offer.customer?.id, channel: data.channel ?? offer.channel });
    conv.closed = false;
    for (const m of data.messages || []) addMessage(conv, m);
    selectConv(conv.id);
  });
}

function declineOffer(entry, ...buttons) {
  const socket = state.socket;
  const offer = entry.data;
  buttons.forEach((b) => (b.disabled = true));
  if (!socket?.connected) {
    removeOffer(offer.conversation_id);
    return;
  }
  socket.timeout(10000).emit("decline", { conversation_id: offer.conversation_id }, () => removeOffer(offer.conversation_id));
}

function renderCounts() {
  const n = state.offers.size;
  const count = $("offer-count");
  count.textContent = String(n);
  count.hidden = n === 0;
  $("offers-empty").hidden = n > 0;
  const openConvs = [...state.convs.values()];
  $("conversations-empty").hidden = openConvs.length > 0;
  updateTitle();
}

// ------------------------------------------------------------------ conversation list

function lastMessage(conv) {
  let best = null;
  for (const m of conv.messages.values()) if (!best || m.seq > best.seq) best = m;
  return best;
}

function renderConvItem(conv) {
  if (!conv.node) {
    conv.node = h("li", { class: "conv-item", "data-testid": "conversation-item", "data-conversation-id": key(conv.id), tabindex: "0", role: "button" });
    conv.node.addEventListener("click", () => selectConv(conv.id));
    conv.node.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        selectConv(conv.id);
      }
    });
    $("conversations").prepend(conv.node);
  }
  const last = lastMessage(conv);
  const preview = last ? (conv.noteSeqs.has(last.seq) ? "Note: " : "") + last.text : humanize(conv.channel);
  conv.node.replaceChildren(
    h("span", { class: "conv-name", text: convName(conv) }),
    h("span", { class: "badge", "data-testid": "unread-badge", text: conv.unread ? String(conv.unread) : "" }),
    h("span", { class: "conv-preview", text: conv.closed ? "Closed" : preview }),
  );
  conv.node.classList.toggle("active", key(conv.id) === key(state.activeId));
  conv.node.classList.toggle("closed", conv.closed);
  renderCounts();
}

function selectConv(id) {
  const conv = state.convs.get(key(id));
  if (!conv) return;
  const previous = state.activeId;
  if (previous !== null && key(previous) !== key(id)) stopTyping();
  state.activeId = conv.id;
  conv.unread = 0;
  for (const c of state.convs.values()) renderConvItem(c);
  showChat(conv);
  renderTranscript(conv);
  if (!conv.messages.size) resume(conv);
  if (previous === null || key(previous) !== key(id)) load360(conv.customerId);
  $("reply-input").focus();
}

function markClosed(conv) {
  conv.closed = true;
  renderConvItem(conv);
  if (key(conv.id) === key(state.activeId)) {
    showChat(conv);
    setTyping(false);
  }
}

function removeConv(conv) {
  conv.node?.remove();
  state.convs.delete(key(conv.id));
  if (key(conv.id) === key(state.activeId)) {
    state.activeId = null;
    showChat(null);
    render360Placeholder();
  }
  renderCounts();
}

// ------------------------------------------------------------------ active conversation

function showChat(conv) {
  $("chat-empty").hidden = !!conv;
  $("chat-active").hidden = !conv;
  chatError("");
  setTyping(false);
  if (!conv) return;
  $("chat-title").textContent = convName(conv);
  $("chat-sub").textContent = [humanize(conv.channel), conv.queue ? humanize(conv.queue) : null, `#${conv.id}`, conv.closed ? "closed" : null]
    .filter(Boolean)
    .join(" · ");
  for (const id of ["reply-input", "reply-send", "note-input", "note-send", "close-disposition", "close-note", "close-submit"]) {
    $(id).disabled = conv.closed;
  }
}

function isNote(conv, m) {
  return (
    m.internal === true ||
    m.is_note === true ||
    m.note === true ||
    m.kind === "note" ||
    m.sender_kind === "note" ||
    m.visibility === "internal" ||
    conv.noteSeqs.has(m.seq)
  );
}

function senderOf(m) {
  const k = m.sender_kind;
  return ["customer", "agent", "bot", "system", "note"].includes(k) ? k : "system";
}

function messageNode(conv, m, { pending = false } = {}) {
  const note = !pending && isNote(conv, m);
  const sender = senderOf(m) === "note" ? "agent" : senderOf(m);
  const node = h("div", {
    class: `msg${note ? " note" : ""}`,
    "data-testid": "message",
    "data-sender": sender,
    "data-seq": pending ? null : String(m.seq),
    "data-internal": note ? "true" : null,
    "data-client-msg-id": m.client_msg_id || null,
  });
  if (note) node.append(h("div", { class: "note-label", text: "internal note — the customer does not see this" }));
  node.append(h("div", { class: "bubble", text: m.text }));
  if (sender !== "system") {
    const who = m.sender_name || (sender === "customer" ? convName(conv) : sender === "bot" ? "Bot" : "");
    const meta = pending ? "sending…" : [who, fmt(m.created_at)].filter(Boolean).join(" · ");
    node.append(h("div", { class: "msg-meta", text: meta }));
  }
  return node;
}

function renderTranscript(conv) {
  const box = $("transcript");
  const nodes = [...conv.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => messageNode(conv, m));
  for (const entry of conv.outbox) nodes.push(messageNode(conv, { sender_kind: "agent", text: entry.text, client_msg_id: entry.client_msg_id }, { pending: true }));
  box.replaceChildren(...nodes);
  box.scrollTop = box.scrollHeight;
}

/** Add a stored message to a conversation exactly once (by seq); draw it if the conversation is open. */
function addMessage(conv, m, { note = false } = {}) {
  if (!m || typeof m.seq !== "number") return false;
  if (note) conv.noteSeqs.add(m.seq);
  const settled = settleOutbox(conv, m.client_msg_id);
  if (conv.messages.has(m.seq)) {
    if (settled && key(conv.id) === key(state.activeId)) renderTranscript(conv);
    return false;
  }
  conv.messages.set(m.seq, m);
  if (m.seq > conv.lastSeq) conv.lastSeq = m.seq;
  if (key(conv.id) === key(state.activeId)) {
    const box = $("transcript");
    const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    const pendingNode = m.client_msg_id ? box.querySelector(`[data-client-msg-id="${CSS.escape(m.client_msg_id)}"]:not([data-seq])`) : null;
    pendingNode?.remove();
    if (isNote(conv, m)) box.querySelector(".msg.note.pending")?.remove();
    const node = messageNode(conv, m);
    let before = null;
    for (const other of box.querySelectorAll('[data-testid="message"]')) {
      const seq = other.getAttribute("data-seq");
      if (seq === null || Number(seq) > m.seq) {
        before = other;
        break;
      }
    }
    box.insertBefore(node, before);
    if (stick || senderOf(m) !== "customer") box.scrollTop = box.scrollHeight;
  } else if (senderOf(m) === "customer") {
    conv.unread += 1;
  }
  if (document.hidden && senderOf(m) === "customer" && key(conv.id) === key(state.activeId)) conv.unread += 1;
  renderConvItem(conv);
  return true;
}

function onMessage(m) {
  if (!m || m.conversation_id == null) return;
  let conv = state.convs.get(key(m.conversation_id));
  if (!conv) conv = upsertConv({ id: m.conversation_id }); // e.g. accepted in another tab
  if (senderOf(m) === "customer" && key(conv.id) === key(state.activeId)) setTyping(false);
  addMessage(conv, m);
}

document.addEventListener("visibilitychange", () => {
  if (document.hidden || state.activeId === null) return;
  const conv = state.convs.get(key(state.activeId));
  if (conv?.unread) {
    conv.unread = 0;
    renderConvItem(conv);
  }
});

let typingTimer = null;
function setTyping(on) {
  clearTimeout(typingTimer);
  const conv = state.convs.get(key(state.activeId));
  $("typing").textContent = on && conv ? `${convName(conv)} is typing…` : "";
  if (on) typingTimer = setTimeout(() => ($("typing").textContent = ""), 10000);
}

// ---- replies

function activeConv() {
  return state.activeId === null ? null : state.convs.get(key(state.activeId)) || null;
}

function sendReply() {
  const conv = activeConv();
  const input = $("reply-input");
  const text = input.value.replace(/\s+$/, "");
  if (!conv || conv.closed || !text.trim()) return;
  chatError("");
  const entry = { client_msg_id: `a-${randomId()}`, text };
  conv.outbox.push(entry);
  const box = $("transcript");
  box.append(messageNode(conv, { sender_kind: "agent", text, client_msg_id: entry.client_msg_id }, { pending: true }));
  box.scrollTop = box.scrollHeight;
  input.value = "";
  closeCanned();
  stopTyping();
  flushOutbox(conv);
}

function settleOutbox(conv, clientMsgId) {
  if (!clientMsgId) return false;
  const before = conv.outbox.length;
  conv.outbox = conv.outbox.filter((e) => e.client_msg_id !== clientMsgId);
  conv.inflight.delete(clientMsgId);
  return conv.outbox.length !== before;
}

function flushOutbox(conv) {
  const socket = state.socket;
  if (!socket?.connected || conv.closed) return;
  for (const entry of [...conv.outbox]) {
    if (conv.inflight.has(entry.client_msg_id)) continue;
    conv.inflight.add(entry.client_msg_id);
    socket.timeout(15000).emit("reply", { conversation_id: conv.id, client_msg_id: entry.client_msg_id, text: entry.text }, (err, ack) => {
      conv.inflight.delete(entry.client_msg_id);
      if (err) {
        if (socket.connected) setTimeout(() => flushOutbox(conv), 2000); // same client_msg_id: the hub dedupes
        return;
      }
      if (ack?.ok) {
        if (ack.message) addMessage(conv, ack.message);
        else settleOutbox(conv, entry.client_msg_id);
        return;
      }
      settleOutbox(conv, entry.client_msg_id);
      const node = $("transcript").querySelector(`[data-client-msg-id="${CSS.escape(entry.client_msg_id)}"]:not([data-seq])`);
      if (node) {
        node.classList.add("failed");
        node.querySelector(".msg-meta").textContent = `Not sent: ${ack?.error?.message || "error"}`;
      }
      chatError(ack?.error?.message || "The reply was not sent.");
    });
  }
}

// ---- typing (debounced: true when it starts, false 2 s after the last key)

let meTyping = false;
let meTypingConv = null;
let meTypingTimer = null;
function emitTyping(conv, on) {
  if (!conv || (meTyping === on && key(meTypingConv) === key(conv.id))) return;
  meTyping = on;
  meTypingConv = conv.id;
  if (state.socket?.connected && !conv.closed) state.socket.emit("typing", { conversation_id: conv.id, typing: on });
}
function stopTyping() {
  clearTimeout(meTypingTimer);
  if (meTyping && meTypingConv !== null) {
    const conv = state.convs.get(key(meTypingConv));
    if (conv) emitTyping(conv, false);
  }
  meTyping = false;
}
function onReplyInput() {
  const conv = activeConv();
  const value = $("reply-input").value;
  updateCanned(value);
  if (!conv) return;
  if (!value.trim() || value.startsWith("/")) {
    stopTyping();
    return;
  }
  emitTyping(conv, true);
  clearTimeout(meTypingTimer);
  meTypingTimer = setTimeout(() => emitTyping(conv, false), 2000);
}

// ---- internal notes

function sendNote() {
  const conv = activeConv();
  const input = $("note-input");
  const text = input.value.trim();
  if (!conv || conv.closed || !text) return;
  if (!state.socket?.connected) return chatError("Not connected: the note was not saved.");
  chatError("");
  const box = $("transcript");
  const pending = messageNode(conv, { sender_kind: "agent", text }, { pending: true });
  pending.classList.add("note", "pending");
  pending.prepend(h("div", { class: "note-label", text: "internal note — the customer does not see this" }));
  box.append(pending);
  box.scrollTop = box.scrollHeight;
  input.value = "";
  state.socket.timeout(10000).emit("note", { conversation_id: conv.id, text }, (err, ack) => {
    if (err || !ack?.ok) {
      pending.classList.add("failed");
      pending.querySelector(".msg-meta").textContent = `Not saved: ${ack?.error?.message || "no answer"}`;
      return;
    }
    if (ack.message) {
      pending.remove();
      if (!addMessage(conv, ack.message, { note: true }) && key(conv.id) === key(state.activeId)) renderTranscript(conv);
    } else {
      pending.classList.remove("pending");
      pending.querySelector(".msg-meta").textContent = `${state.agent?.display_name || "You"} · ${fmt(new Date().toISOString())}`;
    }
  });
}

// ---- close

function closeConv(ev) {
  ev.preventDefault();
  const conv = activeConv();
  if (!conv || conv.closed) return;
  if (!state.socket?.connected) return chatError("Not connected: try again in a moment.");
  const disposition = $("close-disposition").value;
  const note = $("close-note").value.trim();
  const button = $("close-submit");
  button.disabled = true;
  state.socket.timeout(10000).emit("close", { conversation_id: conv.id, disposition, note }, (err, ack) => {
    button.disabled = false;
    if (err || !ack?.ok) {
      chatError(ack?.error?.message || "Could not close the conversation.");
      return;
    }
    stopTyping();
    $("close-note").value = "";
    $("close-disposition").value = "resolved";
    toast(`Closed ${convName(conv)} (${humanize(disposition)})`);
    removeConv(conv);
  });
}

// ------------------------------------------------------------------ canned responses

async function loadCanned() {
  if (state.canned) return state.canned;
  try {
    const res = await fetch("/console/canned.json", { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = res.ok ? await res.json() : [];
    state.canned = Array.isArray(data) ? data.filter((c) => c && typeof c.text === "string") : [];
  } catch {
    state.canned = [];
  }
  return state.canned;
}

function cannedMatches(value) {
  const q = value.slice(1).trim().toLowerCase();
  return (state.canned || [])
    .filter((c) => {
      const shortcut = String(c.shortcut || "").replace(/^\//, "").toLowerCase();
      return !q || shortcut.startsWith(q) || shortcut.includes(q) || c.text.toLowerCase().includes(q);
    })
    .slice(0, 8);
}

async function updateCanned(value) {
  if (!value.startsWith("/") || value.includes("\n")) return closeCanned();
  await loadCanned();
  const current = $("reply-input").value;
  if (!current.startsWith("/")) return closeCanned();
  const items = cannedMatches(current);
  const picker = $("canned");
  state.cannedIndex = Math.min(state.cannedIndex, Math.max(0, items.length - 1));
  picker.replaceChildren(
    ...(items.length
      ? items.map((c, i) => {
          const b = h(
            "button",
            { type: "button", class: "canned-item", role: "option", "data-testid": "canned-item", "aria-selected": i === state.cannedIndex ? "true" : "false" },
            h("span", { class: "canned-key", text: `/${String(c.shortcut || "").replace(/^\//, "")}` }),
            h("span", { class: "canned-text", text: c.text }),
          );
          b.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep focus in the box
          b.addEventListener("click", () => chooseCanned(c));
          return b;
        })
      : [h("div", { class: "canned-empty", text: state.canned?.length ? "No canned response matches." : "No canned responses." })]),
  );
  picker.hidden = false;
  picker._items = items;
}

function closeCanned() {
  const picker = $("canned");
  picker.hidden = true;
  picker.replaceChildren();
  picker._items = [];
  state.cannedIndex = 0;
}

function chooseCanned(item) {
  const input = $("reply-input");
  input.value = item.text;
  closeCanned();
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
}

function onReplyKeydown(ev) {
  const picker = $("canned");
  if (!picker.hidden && picker._items?.length) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = picker._items.length;
      state.cannedIndex = (state.cannedIndex + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
      picker.querySelectorAll(".canned-item").forEach((b, i) => b.setAttribute("aria-selected", i === state.cannedIndex ? "true" : "false"));
      return;
    }
    if (ev.key === "Enter" || ev.key === "Tab") {
      ev.preventDefault();
      chooseCanned(picker._items[state.cannedIndex]);
      return;
    }
  }
  if (ev.key === "Escape" && !picker.hidden) {
    ev.preventDefault();
    closeCanned();
    return;
  }
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendReply();
  }
}

// ------------------------------------------------------------------ customer 360

function render360Placeholder(message = "The customer's details appear here.") {
  $("customer-360").replaceChildren(h("p", { class: "muted small c360-placeholder", text: message }));
}

async function load360(customerId) {
  const req = ++state.customerReq;
  if (customerId === null || customerId === undefined) return render360Placeholder("No customer record for this conversation.");
  render360Placeholder("Loading customer…");
  try {
    const res = await fetch(`/api/customers/${encodeURIComponent(customerId)}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (req !== state.customerReq) return;
    if (!res.ok) return render360Placeholder(res.status === 404 ? "Customer not found." : `Could not load the customer (error ${res.status}).`);
    const data = await res.json();
    if (req !== state.customerReq) return;
    render360(data);
  } catch {
    if (req === state.customerReq) render360Placeholder("Could not load the customer.");
  }
}

function render360(data) {
  const c = data.customer || {};
  const points = data.contact_points || [];
  const items = data.timeline?.items || data.timeline || [];
  const orders = data.orders || [];
  const name = c.display_name || `Customer #${c.id ?? ""}`;

  const head = h(
    "div",
    { class: "c360-head" },
    h("div", { class: "avatar", "aria-hidden": "true", text: initials(name) }),
    h(
      "div",
      {},
      h("div", { class: "c360-name", "data-testid": "customer-name", text: name }),
      h("div", { class: "muted small", text: [c.tier ? `${humanize(c.tier)} tier` : null, c.created_at ? `since ${fmt(c.created_at, dateFmt)}` : null].filter(Boolean).join(" · ") }),
    ),
  );

  const contact = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: "Contact points" }),
    points.length
      ? h(
          "ul",
          { class: "kv" },
          points.map((p) =>
            h(
              "li",
              { "data-testid": "contact-point" },
              h("span", { class: "k", text: humanize(p.kind) }),
              h("span", { class: "v", text: p.value }),
              p.verified ? h("span", { class: "verified", text: "✓ verified" }) : null,
            ),
          ),
        )
      : h("p", { class: "muted small", text: "None on file." }),
  );

  const orderList = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: `Orders${orders.length ? ` (${orders.length})` : ""}` }),
    orders.length
      ? h(
          "ul",
          { class: "orders" },
          orders.map((o) =>
            h(
              "li",
              { class: "order", "data-testid": "order-item", "data-order-id": String(o.id) },
              h(
                "span",
                { class: "order-head" },
                h("span", { class: "order-id", text: `#${o.id}` }),
                h("span", { class: `status${o.overdue ? " overdue" : ""}`, "data-status": o.status, text: o.overdue ? `${humanize(o.status)} · overdue` : humanize(o.status) }),
              ),
              h("span", { class: "order-total", text: o.total ?? (o.total_minor != null ? `${(o.total_minor / 100).toFixed(2)} ${o.currency || ""}` : "") }),
              h("span", { class: "order-sub", text: [o.created_at ? `placed ${fmt(o.created_at, dateFmt)}` : null, o.promised_date ? `due ${fmt(o.promised_date, dateFmt)}` : null, o.channel ? humanize(o.channel) : null].filter(Boolean).join(" · ") }),
            ),
          ),
        )
      : h("p", { class: "muted small", text: "No orders yet." }),
  );

  const timeline = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: "Timeline" }),
    items.length
      ? h(
          "ul",
          { class: "timeline" },
          items.map((i) =>
            h(
              "li",
              { class: "tl-item", "data-testid": "timeline-item" },
              h(
                "div",
                { class: "tl-head" },
                h("span", { class: "tl-kind", text: humanize(i.kind) }),
                i.channel ? h("span", { class: "chip", text: humanize(i.channel) }) : null,
                h("time", { class: "tl-time", datetime: i.occurred_at || i.created_at || null, title: fmt(i.occurred_at || i.created_at, dateTimeFmt), text: when(i.occurred_at || i.created_at) }),
              ),
              i.summary ? h("div", { class: "tl-summary", text: i.summary }) : null,
            ),
          ),
        )
      : h("p", { class: "muted small", text: "No earlier contact." }),
  );

  $("customer-360").replaceChildren(head, contact, orderList, timeline);
}

// ------------------------------------------------------------------ wiring

function wire() {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  $("status-select").addEventListener("change", onStatusChange);
  $("reply-send").addEventListener("click", sendReply);
  $("reply-input").addEventListener("keydown", onReplyKeydown);
  $("reply-input").addEventListener("input", onReplyInput);
  $("reply-input").addEventListener("blur", () => setTimeout(closeCanned, 150));
  $("note-send").addEventListener("click", sendNote);
  $("note-input").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.isComposing) {
      ev.preventDefault();
      sendNote();
    }
  });
  $("close-form").addEventListener("submit", closeConv);
}

async function init() {
  wire();
  let me = null;
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) me = await res.json().catch(() => ({}));
  } catch {
    /* not signed in or hub down: the login form says the rest */
  }
  if (me) startApp(me.agent || me);
  else showLogin();
}

init();
