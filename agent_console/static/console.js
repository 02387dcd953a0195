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
  customerId: null, // the customer shown in the 360 (of the active conversation)
  customer: null, // {id, name, points} once the 360 has loaded
  tab: "orders", // right panel: "customer" or "orders"
  lookupReq: 0,
  detailReq: 0,
  orderForm: null, // the open "New order" form (see buildOrderForm)
  flash: null, // {customerId, orderId, detail}: "Order #N placed" shown in the 360
  transferConv: null, // conversation id the transfer dialog is for
  transferPending: null,
  transferAgents: new Map(), // agent id -> display name, from the directory
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
  closeTransfer();
  state.orderForm = null;
  state.flash = null;
  state.customerId = null;
  state.customer = null;
  render360Placeholder();
  renderCustomerPane();
  clearLookup();
  setTab("orders");
}

/** The session cookie is gone (idle timeout, logged out elsewhere): back to the login form. */
function sessionEnded() {
  if ($("app-view").hidden) return;
  teardown();
  showLogin("Your session has ended. Please sign in again.");
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
  socket.on("logged_out", () => {
    // the session was ended (a logout in another tab or browser, or its 12-hour limit)
    teardown();
    showLogin("Your session has ended. Please sign in again.");
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
    if (!conv) return;
    if (p.reason === "to_bot") {
      removeConv(conv);
    } else if (p.reason === "transferred") {
      // our own transfer's ack removes it as well; this covers another tab or a supervisor's transfer
      if (key(state.transferPending) !== key(conv.id)) toast(`${convName(conv)} was transferred`);
      removeConv(conv);
    } else {
      markClosed(conv);
    }
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
    conv.queue = fresh.queue ?? conv.queue;
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
    const conv = upsertConv({ ...data, id: data.id ?? offer.conversation_id, customer: offer.customer, customer_id: data.customer_id ?? offer.customer?.id, channel: data.channel ?? offer.channel, queue: data.queue ?? offer.queue });
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
  if (key(state.transferConv) === key(conv.id)) closeTransfer();
  if (state.orderForm && key(state.orderForm.customerId) === key(conv.customerId)) state.orderForm = null;
  if (key(conv.id) === key(state.activeId)) {
    state.activeId = null;
    showChat(null);
    state.customerReq++;
    state.customerId = null;
    state.customer = null;
    state.flash = null;
    render360Placeholder();
    renderCustomerPane();
    setTab("orders");
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
  for (const id of ["reply-input", "reply-send", "note-input", "note-send", "close-disposition", "close-note", "close-submit", "transfer-open", "handback"]) {
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
  if (k === "supervisor") return "note";
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
  if (note) {
    const label = m.handoff
      ? "bot handover — what the bot already knows (the customer does not see this)"
      : m.sender_kind === "supervisor"
        ? `whisper from ${m.sender_name || "a supervisor"} — the customer does not see this`
        : "internal note — the customer does not see this";
    node.append(h("div", { class: "note-label", text: label }));
  }
  node.append(h("div", { class: "bubble", text: m.text }));
  const draft = m.handoff && m.handoff.context && m.handoff.context.draft;
  if (draft && Array.isArray(draft.lines) && draft.lines.length) {
    const list = h("ul", { class: "handoff-draft", "data-testid": "handoff-draft" });
    for (const line of draft.lines) {
      if (!line || typeof line !== "object") continue;
      const opts = line.options && typeof line.options === "object" ? Object.values(line.options).join(", ") : "";
      list.append(h("li", { text: `${line.quantity ?? "?"} × ${line.name || line.sku || "?"}${opts ? ` (${opts})` : ""}` }));
    }
    node.append(list);
  }
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

// ------------------------------------------------------------------ HTTP (the /api/ routes accept the session cookie)

/** A JSON call to the hub: {ok, status, data}; status 0 when the hub could not be reached. */
async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  if (res.status === 401) sessionEnded();
  return { ok: res.ok, status: res.status, data };
}

const FIELD_LABELS = { delivery_address: "Delivery address", phone: "Phone", email: "Email", contact: "Contact", customer_id: "Customer", notes: "Notes", lines: "Lines" };

/** "lines[0].options.size" -> "Line 1 size"; "delivery_address" -> "Delivery address". */
function fieldLabel(field) {
  const m = /^lines\[(\d+)\](?:\.(?:options\.)?(.+))?$/.exec(String(field || ""));
  if (m) return `Line ${Number(m[1]) + 1}${m[2] ? ` ${humanize(m[2] === "sku" ? "product" : m[2])}` : ""}`;
  return FIELD_LABELS[field] || humanize(field);
}

/** A readable sentence for a failed call. */
function errorText(r, fallback = "Something went wrong.") {
  if (!r || r.status === 0) return "Cannot reach the hub. Check your connection and try again.";
  const d = r.data && typeof r.data === "object" ? r.data : {};
  const fields = Array.isArray(d.fields) ? d.fields.filter((f) => f && f.field) : [];
  if (fields.length) return fields.map((f) => `${fieldLabel(f.field)}: ${f.reason}`).join(". ");
  if (r.status >= 500) return `Something went wrong on our side (error ${r.status}). Please try again.`;
  return typeof d.message === "string" && d.message ? d.message : `${fallback} (error ${r.status})`;
}

const MONEY_EXPONENTS = { BHD: 3, CLP: 0, ISK: 0, JOD: 3, JPY: 0, KRW: 0, KWD: 3, OMR: 3, TND: 3, VND: 0 };

/** Minor units as the hub shows money: 1999 -> "19.99 EUR". */
function money(minor, currency = "EUR") {
  if (typeof minor !== "number" || !Number.isFinite(minor)) return "";
  const code = String(currency || "EUR").toUpperCase();
  const exp = MONEY_EXPONENTS[code] ?? 2;
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(Math.round(minor));
  if (exp === 0) return `${sign}${abs} ${code}`;
  return `${sign}${Math.floor(abs / 10 ** exp)}.${String(abs % 10 ** exp).padStart(exp, "0")} ${code}`;
}

function optionsText(options) {
  return Object.entries(options || {})
    .map(([k, v]) => `${humanize(k)} ${v}`)
    .join(" · ");
}

// ------------------------------------------------------------------ right panel: tabs

function setTab(name) {
  state.tab = name === "customer" ? "customer" : "orders";
  for (const [tab, pane] of [
    ["customer", "customer-pane"],
    ["orders", "orders-pane"],
  ]) {
    const on = tab === state.tab;
    $(`tab-${tab}`).setAttribute("aria-selected", on ? "true" : "false");
    $(`tab-${tab}`).tabIndex = on ? 0 : -1;
    $(pane).hidden = !on;
  }
}

function onTabKeydown(ev) {
  if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
  ev.preventDefault();
  const next = state.tab === "customer" ? "orders" : "customer";
  setTab(next);
  $(`tab-${next}`).focus();
}

// ------------------------------------------------------------------ order cards and details (shared)

/** A compact order card; with onOpen it is clickable (and keyboard operable). */
function orderCard(o, { testid = "order-item", onOpen = null } = {}) {
  const node = h(
    "li",
    { class: `order${onOpen ? " clickable" : ""}`, "data-testid": testid, "data-order-id": String(o.id), tabindex: onOpen ? "0" : null, role: onOpen ? "button" : null, title: onOpen ? "Show lines and history" : null },
    h(
      "span",
      { class: "order-head" },
      h("span", { class: "order-id", text: `#${o.id}` }),
      h("span", { class: "status", "data-status": o.status, text: humanize(o.status) }),
      o.overdue ? h("span", { class: "status overdue", "data-testid": "order-overdue", text: "overdue" }) : null,
    ),
    h("span", { class: "order-total", text: o.total ?? money(o.total_minor, o.currency) }),
    h("span", {
      class: "order-sub",
      text: [o.created_at ? `placed ${fmt(o.created_at, dateFmt)}` : null, o.promised_date ? `promised ${fmt(o.promised_date, dateFmt)}` : null, o.channel ? humanize(o.channel) : null]
        .filter(Boolean)
        .join(" · "),
    }),
  );
  if (onOpen) {
    node.addEventListener("click", () => onOpen(o, node));
    node.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" || ev.key === " ") {
        ev.preventDefault();
        onOpen(o, node);
      }
    });
  }
  return node;
}

function orderDetailNode(o) {
  const cur = o.currency || "EUR";
  const lines = o.lines || [];
  const events = o.events || [];
  const kv = (k, v) => (v ? h("li", {}, h("span", { class: "k", text: k }), h("span", { class: "v", text: v })) : null);
  return [
    h(
      "div",
      { class: "od-head" },
      h("strong", { text: `Order #${o.id}` }),
      h("span", { class: "muted small", text: o.customer_id != null ? `customer #${o.customer_id}` : "" }),
      h("button", { type: "button", class: "btn btn-ghost btn-sm od-close", "data-testid": "order-detail-close", text: "Hide", onclick: () => closeOrderDetail() }),
    ),
    h("h4", { text: `Lines (${lines.length})` }),
    h(
      "ul",
      { class: "od-lines" },
      lines.map((l) =>
        h(
          "li",
          { "data-testid": "order-line" },
          h("span", { class: "od-name" }, h("span", { text: l.name || l.sku }), l.options && Object.keys(l.options).length ? h("span", { class: "muted small", text: ` ${optionsText(l.options)}` }) : null),
          h("span", { class: "od-qty muted", text: `${l.quantity} × ${money(l.unit_price_minor, cur)}` }),
          h("span", { class: "od-amount", text: money(l.line_total_minor, cur) }),
        ),
      ),
    ),
    h(
      "ul",
      { class: "od-sums" },
      h("li", {}, h("span", { text: "Subtotal" }), h("span", { text: money(o.subtotal_minor, cur) })),
      h("li", {}, h("span", { text: "Shipping" }), h("span", { text: o.shipping_minor === 0 ? "free" : money(o.shipping_minor, cur) })),
      h("li", { class: "od-total" }, h("span", { text: "Total" }), h("span", { text: o.total ?? money(o.total_minor, cur) })),
    ),
    h("ul", { class: "kv od-kv" }, kv("Deliver to", o.delivery_address), kv("Promised", o.promised_date ? fmt(o.promised_date, dateFmt) + (o.overdue ? " (overdue)" : "") : ""), kv("Phone", o.contact_phone), kv("Email", o.contact_email), kv("Notes", o.notes)),
    h("h4", { text: "History" }),
    events.length
      ? h(
          "ol",
          { class: "timeline od-events" },
          events.map((e) =>
            h(
              "li",
              { class: "tl-item", "data-testid": "order-event" },
              h(
                "div",
                { class: "tl-head" },
                h("span", { class: "tl-kind", text: humanize(e.to_status) }),
                e.actor ? h("span", { class: "chip", text: e.actor }) : null,
                h("time", { class: "tl-time", datetime: e.occurred_at || null, title: fmt(e.occurred_at, dateTimeFmt), text: when(e.occurred_at) }),
              ),
              e.note ? h("div", { class: "tl-summary", text: e.note }) : null,
            ),
          ),
        )
      : h("p", { class: "muted small", text: "No history." }),
  ];
}

// ------------------------------------------------------------------ order lookup (order number, phone or email)

/** What the agent typed: digits (or #digits) are an order number, + or 7+ digits with separators a phone, @ an email. */
function classifyQuery(raw) {
  const text = String(raw || "").trim();
  if (!text) return { error: "Enter an order number, a phone number or an email address." };
  if (text.includes("@")) return { kind: "email", value: text, label: "email address" };
  const digits = text.replace(/\D/g, "");
  if (/^#?\s*\d+$/.test(text)) return { kind: "order", value: digits.replace(/^0+(?=\d)/, ""), label: "order" };
  if (/^\+[\d\s().-]+$/.test(text) || (digits.length >= 7 && /^[\d\s().-]+$/.test(text))) return { kind: "phone", value: text, label: "phone number" };
  return { error: "Not an order number, a phone number or an email address. Try 1042, +49 30 1234567 or name@example.com." };
}

function lookupError(message) {
  const el = $("order-search-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function clearLookup() {
  state.lookupReq++;
  state.detailReq++;
  lookupError("");
  $("order-results").replaceChildren();
  $("orders-hint").hidden = false;
}

async function lookupOrders(ev) {
  ev?.preventDefault();
  const q = classifyQuery($("order-search").value);
  setTab("orders");
  lookupError("");
  const req = ++state.lookupReq;
  state.detailReq++;
  if (q.error) {
    lookupError(q.error);
    return;
  }
  const list = $("order-results");
  $("orders-hint").hidden = true;
  list.replaceChildren(h("li", { class: "muted small", text: "Searching…" }));
  const button = $("order-search-submit");
  button.disabled = true;
  try {
    const path = q.kind === "order" ? `/api/orders/${encodeURIComponent(q.value)}` : `/api/orders?${q.kind}=${encodeURIComponent(q.value)}`;
    const r = await api(path);
    if (req !== state.lookupReq) return;
    if (!r.ok || !r.data) {
      list.replaceChildren();
      if (r.status === 404 && q.kind === "order") {
        const hint = q.value.length >= 7 ? " For a phone number, start with + or use spaces (+49 30 1234567)." : "";
        lookupError(`No order #${q.value}.${hint}`);
      } else if (r.status === 422 || r.status === 400) {
        lookupError(`That ${q.label} does not look right. ${errorText(r)}.`.replace(/\.\.$/, "."));
      } else {
        lookupError(errorText(r, "The search failed"));
      }
      return;
    }
    if (q.kind === "order") {
      showOrderResults([r.data.order], q);
      openOrderDetail(r.data.order, r.data.order);
    } else {
      showOrderResults(Array.isArray(r.data.orders) ? r.data.orders : [], q);
    }
  } finally {
    button.disabled = false;
  }
}

function showOrderResults(orders, q) {
  const list = $("order-results");
  $("orders-hint").hidden = true;
  if (!orders.length) {
    list.replaceChildren(h("li", { class: "muted small lookup-empty", "data-testid": "order-results-empty", text: `No orders for this ${q.label}.` }));
    return;
  }
  const summary = q.kind === "order" ? null : h("li", { class: "muted small lookup-summary", text: `${orders.length} order${orders.length === 1 ? "" : "s"} for ${q.value}` });
  list.replaceChildren(...[summary, ...orders.map((o) => orderCard(o, { testid: "order-result", onOpen: (order) => openOrderDetail(order) }))].filter(Boolean));
}

function closeOrderDetail() {
  state.detailReq++;
  const open = $("order-detail");
  if (open) {
    const card = open.previousElementSibling;
    card?.setAttribute("aria-expanded", "false");
    card?.classList.remove("open");
    open.remove();
    card?.focus();
  }
}

/** Show an order's lines and history under its card (fetched fresh unless given). */
async function openOrderDetail(order, full = null) {
  const list = $("order-results");
  const card = list.querySelector(`[data-testid="order-result"][data-order-id="${CSS.escape(String(order.id))}"]`);
  if (!card) return;
  const existing = $("order-detail");
  if (existing && existing.dataset.orderId === String(order.id) && !full) return; // already open
  existing?.previousElementSibling?.setAttribute("aria-expanded", "false");
  existing?.previousElementSibling?.classList.remove("open");
  existing?.remove();
  const detail = h("li", { id: "order-detail", class: "order-detail", "data-testid": "order-detail", "data-order-id": String(order.id), "aria-live": "polite" });
  card.after(detail);
  card.setAttribute("aria-expanded", "true");
  card.classList.add("open");
  if (full) {
    detail.replaceChildren(...orderDetailNode(full));
    return;
  }
  const req = ++state.detailReq;
  detail.replaceChildren(h("p", { class: "muted small", text: "Loading order…" }));
  const r = await api(`/api/orders/${encodeURIComponent(order.id)}`);
  if (req !== state.detailReq || !detail.isConnected) return;
  if (!r.ok || !r.data?.order) {
    detail.replaceChildren(h("p", { class: "form-error small", role: "alert", text: r.status === 404 ? `Order #${order.id} no longer exists.` : errorText(r, "Could not load the order") }));
    return;
  }
  detail.replaceChildren(...orderDetailNode(r.data.order));
}

/** An order card of the 360 was clicked: show it in the Orders tab, as if looked up by number. */
function showOrderFromCustomer(o) {
  $("order-search").value = String(o.id);
  lookupOrders();
}

// ------------------------------------------------------------------ customer 360

function render360Placeholder(message = "The customer's details appear here.") {
  $("customer-360").replaceChildren(h("p", { class: "muted small c360-placeholder", text: message }));
}

async function load360(customerId) {
  const req = ++state.customerReq;
  if (key(customerId) !== key(state.customerId)) {
    state.customer = null;
    state.flash = null;
    lookupError(""); // an old lookup's complaint is noise next to a new customer
  }
  state.customerId = customerId ?? null;
  setTab("customer");
  renderCustomerPane();
  if (customerId === null || customerId === undefined) return render360Placeholder("No customer record for this conversation.");
  render360Placeholder("Loading customer…");
  await fetch360(customerId, req);
}

/** Fetch and draw the 360; quietly (no "Loading…") when refreshing after an order. */
async function fetch360(customerId, req = ++state.customerReq) {
  const r = await api(`/api/customers/${encodeURIComponent(customerId)}`);
  if (req !== state.customerReq) return;
  if (!r.ok || !r.data) {
    if (state.customer && key(state.customer.id) === key(customerId)) return toast(errorText(r, "Could not refresh the customer"), "error");
    return render360Placeholder(r.status === 404 ? "Customer not found." : r.status === 0 ? "Could not load the customer." : `Could not load the customer (error ${r.status}).`);
  }
  render360(r.data);
}

function refresh360() {
  if (state.customerId !== null) fetch360(state.customerId);
}

/** The customer's best address of a kind: verified first, then the newest. */
function bestPoint(points, kind) {
  const of = points.filter((p) => p && p.kind === kind && p.value);
  of.sort((a, b) => Number(!!b.verified) - Number(!!a.verified) || String(b.created_at || "").localeCompare(String(a.created_at || "")));
  return of[0]?.value || "";
}

function render360(data) {
  const c = data.customer || {};
  const points = data.contact_points || [];
  const items = data.timeline?.items || data.timeline || [];
  const orders = data.orders || [];
  const name = c.display_name || `Customer #${c.id ?? ""}`;
  state.customer = { id: c.id ?? state.customerId, name, points };

  const newOrder = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "new-order-open", text: "New order", onclick: openNewOrder });
  const head = h(
    "div",
    { class: "c360-head" },
    h("div", { class: "avatar", "aria-hidden": "true", text: initials(name) }),
    h(
      "div",
      { class: "c360-who" },
      h("div", { class: "c360-name", "data-testid": "customer-name", text: name }),
      h("div", { class: "muted small", text: [c.tier ? `${humanize(c.tier)} tier` : null, c.created_at ? `since ${fmt(c.created_at, dateFmt)}` : null].filter(Boolean).join(" · ") }),
    ),
    newOrder,
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

  const flash = state.flash && key(state.flash.customerId) === key(state.customer.id) ? state.flash : null;
  const orderList = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: `Orders${orders.length ? ` (${orders.length})` : ""}` }),
    flash
      ? h(
          "div",
          { class: "flash", role: "status" },
          h("strong", { "data-testid": "new-order-result", text: `Order #${flash.orderId} placed` }),
          flash.detail ? h("span", { class: "small", text: flash.detail }) : null,
        )
      : null,
    orders.length
      ? h(
          "ul",
          { class: "orders" },
          orders.map((o) => orderCard(o, { testid: "order-item", onOpen: showOrderFromCustomer })),
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
  renderCustomerPane();
}

/** The Customer tab shows either the 360 or the open New order form of that customer. */
function renderCustomerPane() {
  const f = state.orderForm;
  const showForm = !!(f && f.open && state.customer && key(f.customerId) === key(state.customer.id));
  $("customer-360").hidden = showForm;
  $("new-order").hidden = !showForm;
  if (showForm) {
    if (f.node.parentNode !== $("new-order")) $("new-order").replaceChildren(f.node);
  } else {
    $("new-order").replaceChildren();
  }
}

// ------------------------------------------------------------------ new order for the customer

let productCache = null; // {at, products}

async function loadProducts() {
  if (productCache && Date.now() - productCache.at < 15000) return { ok: true, products: productCache.products };
  const r = await api("/api/products");
  const products = Array.isArray(r.data?.products) ? r.data.products : null;
  if (!r.ok || !products) return { ok: false, error: errorText(r, "Could not load the products") };
  productCache = { at: Date.now(), products };
  return { ok: true, products };
}

function errSlot(form, field, control = null) {
  const slot = h("p", { class: "field-error", "data-testid": "new-order-field-error", "data-field": field, role: "alert", hidden: true });
  slot._control = control;
  if (control) control._errSlot = slot;
  form.slots.push(slot);
  return slot;
}

function hideSlot(slot) {
  if (!slot) return;
  slot.hidden = true;
  slot.textContent = "";
  slot._control?.removeAttribute("aria-invalid");
}

function openNewOrder() {
  const c = state.customer;
  if (!c) return;
  if (!state.orderForm || key(state.orderForm.customerId) !== key(c.id)) state.orderForm = buildOrderForm(c);
  state.orderForm.open = true;
  state.flash = null;
  setTab("customer");
  renderCustomerPane();
  fillProducts(state.orderForm);
  state.orderForm.rows[0]?.product.focus();
}

function closeNewOrder() {
  state.orderForm = null;
  renderCustomerPane();
  $("customer-360").querySelector('[data-testid="new-order-open"]')?.focus();
}

function buildOrderForm(customer) {
  const f = {
    customerId: customer.id,
    customerName: customer.name,
    idempotencyKey: `console-${randomId(32)}`, // one per form: a double click or a retry cannot place a second order
    rows: [],
    slots: [],
    products: null,
    busy: false,
    open: true,
    quote: null,
  };
  f.linesBox = h("div", { class: "no-lines" });
  f.linesSlot = errSlot(f, "lines");
  f.addLine = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "new-order-add-line", text: "+ Add line", onclick: () => addOrderRow(f, true) });
  f.address = h("textarea", { id: "new-order-address", "data-testid": "new-order-address", rows: "2", maxlength: "500", autocomplete: "off", placeholder: "Street, postcode, city" });
  f.phone = h("input", { id: "new-order-phone", "data-testid": "new-order-phone", type: "tel", maxlength: "40", autocomplete: "off", value: bestPoint(customer.points, "phone") });
  f.email = h("input", { id: "new-order-email", "data-testid": "new-order-email", type: "email", maxlength: "254", autocomplete: "off", value: bestPoint(customer.points, "email") });
  f.error = h("p", { class: "form-error small", "data-testid": "new-order-error", role: "alert", hidden: true });
  f.quoteBox = h("div", { class: "no-quote", "data-testid": "new-order-quote-box", "aria-live": "polite", hidden: true });
  f.quoteBtn = h("button", { type: "button", class: "btn btn-ghost", "data-testid": "new-order-quote", text: "Get quote", onclick: () => getQuote(f) });
  f.submit = h("button", { type: "button", class: "btn btn-primary", "data-testid": "new-order-submit", text: "Place order", onclick: () => placeOrder(f) });

  f.node = h(
    "section",
    { class: "no", "aria-label": `New order for ${customer.name}` },
    h(
      "div",
      { class: "no-head" },
      h("div", {}, h("h3", { text: "New order" }), h("div", { class: "muted small", text: `for ${customer.name}` })),
      h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "new-order-cancel", text: "Cancel", onclick: closeNewOrder }),
    ),
    f.linesBox,
    f.linesSlot,
    h("div", { class: "no-add" }, f.addLine),
    h("label", { class: "no-field", for: "new-order-address" }, h("span", { text: "Delivery address" })),
    f.address,
    errSlot(f, "delivery_address", f.address),
    h("div", { class: "no-contact" },
      h("div", {}, h("label", { class: "no-field", for: "new-order-phone" }, h("span", { text: "Phone" })), f.phone, errSlot(f, "phone", f.phone)),
      h("div", {}, h("label", { class: "no-field", for: "new-order-email" }, h("span", { text: "Email" })), f.email, errSlot(f, "email", f.email)),
    ),
    errSlot(f, "contact"),
    f.quoteBox,
    f.error,
    h("div", { class: "no-actions" }, f.quoteBtn, f.submit),
  );
  // any edit makes the shown quote stale and clears that field's error
  const edited = (ev) => {
    hideSlot(ev.target._errSlot);
    if (ev.target.closest?.(".ol")) hideSlot(ev.target.closest(".ol")._row?.lineSlot);
    clearQuote(f);
  };
  f.node.addEventListener("input", edited);
  f.node.addEventListener("change", edited);
  addOrderRow(f, false);
  return f;
}

function clearQuote(f) {
  f.quote = null;
  f.quoteBox.hidden = true;
  f.quoteBox.replaceChildren();
}

async function fillProducts(f) {
  if (f.products) return;
  for (const row of f.rows) row.product.replaceChildren(h("option", { value: "", text: "Loading products…" }));
  const res = await loadProducts();
  if (state.orderForm !== f) return;
  if (!res.ok) {
    f.error.textContent = res.error;
    f.error.hidden = false;
    for (const row of f.rows) row.product.replaceChildren(h("option", { value: "", text: "Products unavailable" }));
    return;
  }
  f.products = res.products;
  f.bySku = new Map(res.products.map((p) => [p.sku, p]));
  for (const row of f.rows) fillProductSelect(f, row);
}

function fillProductSelect(f, row) {
  if (!f.products) return;
  const chosen = row.product.value;
  const groups = new Map();
  for (const p of f.products) {
    const cat = p.category || "other";
    if (!groups.has(cat)) groups.set(cat, []);
    groups.get(cat).push(p);
  }
  row.product.replaceChildren(
    h("option", { value: "", text: "Choose a product…" }),
    ...[...groups].map(([cat, items]) =>
      h(
        "optgroup",
        { label: humanize(cat) },
        items.map((p) => {
          const out = !(p.stock > 0) || p.in_stock === false;
          return h("option", { value: p.sku, disabled: out, text: `${p.name} · ${p.price || money(p.price_minor, p.currency)} · ${out ? "out of stock" : `${p.stock} left`}` });
        }),
      ),
    ),
  );
  row.product.value = chosen && f.bySku.has(chosen) ? chosen : "";
  renderRowOptions(f, row);
}

function addOrderRow(f, focus) {
  const row = { optionSels: new Map(), optionSlots: [] };
  row.product = h("select", { "data-testid": "new-order-product", class: "ol-product" });
  row.qty = h("input", { type: "number", min: "1", max: "100", step: "1", value: "1", inputmode: "numeric", "data-testid": "new-order-quantity", class: "ol-qty" });
  row.optsBox = h("div", { class: "ol-opts" });
  row.price = h("span", { class: "ol-price muted small" });
  row.remove = h("button", { type: "button", class: "icon-btn", "data-testid": "new-order-remove-line", text: "×" });
  row.productSlot = errSlot(f, "", row.product);
  row.qtySlot = errSlot(f, "", row.qty);
  row.optionsSlot = errSlot(f, "");
  row.lineSlot = errSlot(f, "");
  row.node = h(
    "div",
    { class: "ol", "data-testid": "new-order-line" },
    h("div", { class: "ol-top" }, row.product, row.remove),
    row.productSlot,
    row.optsBox,
    row.optionsSlot,
    h("div", { class: "ol-bottom" }, h("label", { class: "ol-qty-label" }, h("span", { text: "Qty" }), row.qty), row.price),
    row.qtySlot,
    row.lineSlot,
  );
  row.node._row = row;
  row.product.addEventListener("change", () => renderRowOptions(f, row));
  row.qty.addEventListener("input", () => renderRowPrice(f, row));
  row.remove.addEventListener("click", () => {
    f.rows = f.rows.filter((r) => r !== row);
    f.slots = f.slots.filter((s) => !row.node.contains(s));
    row.node.remove();
    if (!f.rows.length) addOrderRow(f, true);
    renumberRows(f);
    clearQuote(f);
  });
  f.rows.push(row);
  f.linesBox.append(row.node);
  if (f.products) fillProductSelect(f, row);
  else row.product.replaceChildren(h("option", { value: "", text: "Loading products…" }));
  renumberRows(f);
  clearQuote(f);
  if (focus) row.product.focus();
  return row;
}

/** Field names follow the line's position, as the API reports them (lines[0].quantity ...). */
function renumberRows(f) {
  f.rows.forEach((row, i) => {
    const p = `lines[${i}]`;
    row.node.dataset.index = String(i);
    row.product.setAttribute("aria-label", `Line ${i + 1}: product`);
    row.qty.setAttribute("aria-label", `Line ${i + 1}: quantity`);
    row.remove.setAttribute("aria-label", `Remove line ${i + 1}`);
    row.remove.hidden = f.rows.length === 1;
    row.productSlot.dataset.field = `${p}.sku`;
    row.qtySlot.dataset.field = `${p}.quantity`;
    row.optionsSlot.dataset.field = `${p}.options`;
    row.lineSlot.dataset.field = p;
    for (const [name, sel] of row.optionSels) {
      sel.setAttribute("aria-label", `Line ${i + 1}: ${humanize(name)}`);
      sel._errSlot.dataset.field = `${p}.options.${name}`;
    }
  });
}

function renderRowOptions(f, row) {
  const product = f.bySku?.get(row.product.value);
  const previous = new Map([...row.optionSels].map(([n, s]) => [n, s.value]));
  f.slots = f.slots.filter((s) => !row.optionSlots.includes(s));
  row.optionSels = new Map();
  row.optionSlots = [];
  const nodes = [];
  for (const [name, values] of Object.entries(product?.options || {})) {
    if (!Array.isArray(values) || !values.length) continue;
    const sel = h(
      "select",
      { "data-testid": `new-order-option-${name}`, "data-option": name },
      h("option", { value: "", text: `${humanize(name)}…` }),
      values.map((v) => h("option", { value: String(v), text: String(v) })),
    );
    if (previous.has(name) && values.includes(previous.get(name))) sel.value = previous.get(name);
    const slot = errSlot(f, "", sel);
    row.optionSlots.push(slot);
    row.optionSels.set(name, sel);
    nodes.push(h("label", { class: "ol-opt" }, h("span", { text: humanize(name) }), sel, slot));
  }
  row.optsBox.replaceChildren(...nodes);
  row.optsBox.hidden = !nodes.length;
  hideSlot(row.productSlot);
  hideSlot(row.optionsSlot);
  renumberRows(f);
  renderRowPrice(f, row);
}

function renderRowPrice(f, row) {
  const product = f.bySku?.get(row.product.value);
  const qty = Number(row.qty.value);
  if (!product) {
    row.price.textContent = "";
    return;
  }
  const each = money(product.price_minor, product.currency);
  const whole = Number.isInteger(qty) && qty >= 1 && qty <= 100;
  row.price.textContent = whole ? money(product.price_minor * qty, product.currency) : `${each} each`;
  row.price.title = whole ? `${qty} × ${each}` : "";
}

/** The request body for /api/orders and /api/orders/quote, from what the form shows. */
function orderBody(f, withCustomer) {
  const lines = f.rows.map((row) => {
    const options = {};
    for (const [name, sel] of row.optionSels) if (sel.value) options[name] = sel.value;
    const raw = row.qty.value.trim();
    const n = Number(raw);
    return { sku: row.product.value, quantity: raw !== "" && Number.isFinite(n) ? n : null, options };
  });
  const body = { lines, delivery_address: f.address.value.trim() };
  if (withCustomer) {
    body.customer_id = f.customerId;
    body.channel = "chat";
  }
  const phone = f.phone.value.trim();
  const email = f.email.value.trim();
  if (phone) body.phone = phone;
  if (email) body.email = email;
  return body;
}

function clearFormErrors(f) {
  f.slots.forEach(hideSlot);
  f.error.hidden = true;
  f.error.textContent = "";
}

/** Put each 422 field error next to its field (lines[0].quantity, delivery_address ...); the rest in the form error. */
function showFormErrors(f, r, fallback) {
  clearFormErrors(f);
  const fields = Array.isArray(r.data?.fields) ? r.data.fields.filter((e) => e && e.field) : [];
  const unplaced = [];
  let first = null;
  for (const e of fields) {
    const field = String(e.field);
    let slot = null;
    for (let name = field; name && !slot; ) {
      slot = f.slots.find((s) => s.dataset.field === name && s.isConnected) || null;
      const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
      name = cut > 0 ? name.slice(0, cut) : "";
    }
    if (!slot) {
      unplaced.push(`${fieldLabel(field)}: ${e.reason}`);
      continue;
    }
    let reason = String(e.reason ?? "invalid");
    if (field.endsWith(".sku") && reason === "required") reason = "choose a product";
    const text = slot.dataset.field === field ? reason : `${fieldLabel(field)}: ${reason}`;
    slot.textContent = slot.hidden || !slot.textContent ? text : `${slot.textContent}; ${text}`;
    slot.hidden = false;
    slot._control?.setAttribute("aria-invalid", "true");
    first = first || slot._control || slot;
  }
  const messages = [];
  if (fields.length && unplaced.length < fields.length) messages.push("Please check the highlighted fields.");
  messages.push(...unplaced);
  if (!fields.length) messages.push(errorText(r, fallback));
  f.error.textContent = messages.join(" ");
  f.error.hidden = false;
  if (first && typeof first.focus === "function" && first.tagName !== "P") first.focus();
}

function setFormBusy(f, busy, label) {
  f.busy = busy;
  f.quoteBtn.disabled = busy;
  f.submit.disabled = busy;
  f.addLine.disabled = busy;
  f.node.setAttribute("aria-busy", busy ? "true" : "false");
  if (label) (label === "quote" ? f.quoteBtn : f.submit).textContent = busy ? (label === "quote" ? "Quoting…" : "Placing…") : label === "quote" ? "Get quote" : "Place order";
}

async function getQuote(f) {
  if (f.busy) return;
  clearFormErrors(f);
  clearQuote(f);
  setFormBusy(f, true, "quote");
  const r = await api("/api/orders/quote", { method: "POST", body: orderBody(f, false) });
  setFormBusy(f, false, "quote");
  if (state.orderForm !== f) return;
  if (!r.ok || !r.data) return showFormErrors(f, r, "Could not get a quote");
  renderQuote(f, r.data);
}

function renderQuote(f, q) {
  f.quote = q;
  const first = f.bySku?.get(q.lines?.[0]?.sku);
  const cur = first?.currency || "EUR";
  f.quoteBox.replaceChildren(
    h("h4", { text: "Quote" }),
    h(
      "ul",
      { class: "od-lines" },
      (q.lines || []).map((l) =>
        h(
          "li",
          { "data-testid": "new-order-quote-line" },
          h("span", { class: "od-name" }, h("span", { text: `${l.quantity} × ${l.name || l.sku}` }), l.options && Object.keys(l.options).length ? h("span", { class: "muted small", text: ` ${optionsText(l.options)}` }) : null),
          h("span", { class: "od-qty muted", text: money(l.unit_price_minor, cur) }),
          h("span", { class: "od-amount", text: money(l.line_total_minor, cur) }),
        ),
      ),
    ),
    h(
      "ul",
      { class: "od-sums" },
      h("li", {}, h("span", { text: "Subtotal" }), h("span", { text: money(q.subtotal_minor, cur) })),
      h("li", {}, h("span", { text: "Shipping" }), h("span", { "data-testid": "new-order-quote-shipping", text: q.shipping_minor === 0 ? "free" : money(q.shipping_minor, cur) })),
      h("li", { class: "od-total" }, h("span", { text: "Total" }), h("span", { "data-testid": "new-order-quote-total", text: money(q.total_minor, cur) })),
      h("li", {}, h("span", { text: "Estimated delivery" }), h("span", { "data-testid": "new-order-quote-delivery", text: q.estimated_delivery ? fmt(q.estimated_delivery, dateFmt) : "—" })),
    ),
  );
  f.quoteBox.hidden = false;
  f.quoteBox.scrollIntoView({ block: "nearest" });
}

async function placeOrder(f) {
  if (f.busy) return; // the same Idempotency-Key guards the hub side as well
  clearFormErrors(f);
  setFormBusy(f, true, "place");
  const r = await api("/api/orders", { method: "POST", body: orderBody(f, true), headers: { "Idempotency-Key": f.idempotencyKey } });
  setFormBusy(f, false, "place");
  if (!r.ok || !r.data?.order) {
    if (state.orderForm === f) showFormErrors(f, r, "The order was not placed");
    return;
  }
  const o = r.data.order;
  productCache = null; // stock changed
  state.flash = { customerId: f.customerId, orderId: o.id, detail: [o.total, o.promised_date ? `delivery by ${fmt(o.promised_date, dateFmt)}` : null].filter(Boolean).join(" · ") };
  if (state.orderForm === f) state.orderForm = null;
  const conv = activeConv();
  if (conv && !conv.closed && key(conv.customerId) === key(f.customerId)) $("close-disposition").value = "order_placed";
  toast(`Order #${o.id} placed`);
  renderCustomerPane();
  if (state.customer && key(state.customer.id) === key(f.customerId)) {
    refresh360();
    // show the banner at once, before the refreshed 360 arrives
    const section = $("customer-360").querySelectorAll(".c360-section")[1];
    if (section && !section.querySelector('[data-testid="new-order-result"]')) {
      section.querySelector("h3")?.after(h("div", { class: "flash", role: "status" }, h("strong", { "data-testid": "new-order-result", text: `Order #${o.id} placed` }), h("span", { class: "small", text: state.flash.detail })));
    }
  }
}

// ------------------------------------------------------------------ transfer

function transferError(message) {
  const el = $("transfer-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function closeTransfer() {
  const dialog = $("transfer-dialog");
  state.transferConv = null;
  if (dialog.open) dialog.close();
}

function updateTransferSubmit() {
  $("transfer-submit").disabled = !($("transfer-queue").value || $("transfer-agent").value) || state.transferPending !== null;
}

function handBack() {
  const conv = activeConv();
  if (!conv || conv.closed || !state.socket) return;
  $("handback").disabled = true;
  state.socket.timeout(10000).emit("handback", { conversation_id: conv.id }, (err, ack) => {
    $("handback").disabled = false;
    if (err || !ack || !ack.ok) {
      toast((ack && ack.error && ack.error.message) || "could not hand the chat back to the bot", "error");
      return;
    }
    toast(`${convName(conv)} is back with the bot`);
    removeConv(conv);
  });
}

async function openTransfer() {
  const conv = activeConv();
  if (!conv || conv.closed) return;
  const dialog = $("transfer-dialog");
  const queueSel = $("transfer-queue");
  const agentSel = $("transfer-agent");
  state.transferConv = conv.id;
  transferError("");
  $("transfer-sub").textContent = `${convName(conv)} · #${conv.id}. The customer keeps their place in line.`;
  $("transfer-note").value = "";
  queueSel.replaceChildren(h("option", { value: "", text: "Loading…" }));
  agentSel.replaceChildren(h("option", { value: "", text: "Loading…" }));
  queueSel.disabled = agentSel.disabled = true;
  updateTransferSubmit();
  if (!dialog.open) dialog.showModal();
  const r = await api("/console/directory.json");
  if (key(state.transferConv) !== key(conv.id) || !dialog.open) return;
  if (!r.ok || !r.data) {
    queueSel.replaceChildren(h("option", { value: "", text: "—" }));
    agentSel.replaceChildren(h("option", { value: "", text: "—" }));
    transferError(errorText(r, "Could not load the queues and colleagues"));
    return;
  }
  const queues = Array.isArray(r.data.queues) ? r.data.queues.filter((q) => typeof q === "string") : [];
  queueSel.replaceChildren(
    h("option", { value: "", text: queues.length ? "Choose a queue…" : "No queues" }),
    ...queues.map((q) => h("option", { value: q, text: humanize(q) + (q === conv.queue ? " (current)" : "") })),
  );
  const rank = { available: 0, busy: 1, wrap_up: 2, away: 2, offline: 3 };
  const agents = (Array.isArray(r.data.agents) ? r.data.agents : []).filter((a) => a && a.id != null);
  agents.sort((a, b) => (rank[a.status] ?? 2) - (rank[b.status] ?? 2) || String(a.display_name).localeCompare(String(b.display_name)));
  state.transferAgents = new Map(agents.map((a) => [String(a.id), a.display_name || `Agent #${a.id}`]));
  agentSel.replaceChildren(
    h("option", { value: "", text: agents.length ? "Choose a colleague…" : "No colleagues" }),
    ...agents.map((a) =>
      h("option", {
        value: String(a.id),
        disabled: a.status === "offline", // an offline colleague would leave the customer waiting
        text: `${a.display_name || `Agent #${a.id}`} — ${humanize(a.status || "offline")}${a.role && a.role !== "agent" ? ` · ${a.role}` : ""}`,
      }),
    ),
  );
  queueSel.disabled = agentSel.disabled = false;
  updateTransferSubmit();
  queueSel.focus();
}

function submitTransfer(ev) {
  ev.preventDefault();
  const conv = state.convs.get(key(state.transferConv));
  if (!conv || conv.closed) return closeTransfer();
  const queue = $("transfer-queue").value;
  const agentId = $("transfer-agent").value;
  if (!queue && !agentId) return transferError("Choose a queue or a colleague.");
  if (!state.socket?.connected) return transferError("Not connected: try again in a moment.");
  const note = $("transfer-note").value.trim();
  const payload = agentId ? { conversation_id: conv.id, agent_id: Number(agentId), note } : { conversation_id: conv.id, queue, ...(note ? { note } : {}) };
  const where = agentId ? state.transferAgents.get(agentId) || "a colleague" : `the ${humanize(queue)} queue`;
  transferError("");
  state.transferPending = conv.id;
  updateTransferSubmit();
  $("transfer-submit").textContent = "Transferring…";
  state.socket.timeout(10000).emit("transfer", payload, (err, ack) => {
    state.transferPending = null;
    $("transfer-submit").textContent = "Transfer";
    updateTransferSubmit();
    if (err || !ack?.ok) {
      if (!$("transfer-dialog").open) {
        if (state.convs.get(key(conv.id)) === conv) toast(ack?.error?.message || "The transfer failed", "error");
        return;
      }
      transferError(err ? "No answer from the hub. Check the connection and try again." : ack?.error?.message || "The transfer failed.");
      return;
    }
    if (key(state.transferConv) === key(conv.id)) closeTransfer();
    toast(`Transferred ${convName(conv)} to ${where}`);
    if (state.convs.get(key(conv.id)) === conv) removeConv(conv);
  });
}

function wireTransfer() {
  const dialog = $("transfer-dialog");
  $("transfer-open").addEventListener("click", openTransfer);
  $("handback").addEventListener("click", handBack);
  $("transfer-form").addEventListener("submit", submitTransfer);
  $("transfer-cancel").addEventListener("click", closeTransfer);
  dialog.addEventListener("close", () => {
    state.transferConv = null;
    $("transfer-open").focus();
  });
  $("transfer-queue").addEventListener("change", () => {
    if ($("transfer-queue").value) $("transfer-agent").value = "";
    transferError("");
    updateTransferSubmit();
  });
  $("transfer-agent").addEventListener("change", () => {
    if ($("transfer-agent").value) $("transfer-queue").value = "";
    transferError("");
    updateTransferSubmit();
  });
}

// ------------------------------------------------------------------ keep an active agent signed in

// The session cookie has a 30-minute idle timeout and only /auth/me renews it; the socket does not.
// Renew it every few minutes while the agent is actually using the console.
let lastActivity = Date.now();
let lastRenewal = Date.now();
for (const type of ["keydown", "pointerdown"]) document.addEventListener(type, () => (lastActivity = Date.now()), { capture: true, passive: true });
setInterval(async () => {
  if ($("app-view").hidden || lastActivity <= lastRenewal || Date.now() - lastRenewal < 5 * 60 * 1000) return;
  lastRenewal = Date.now();
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) sessionEnded();
  } catch {
    /* offline: the socket's reconnect logic reports it */
  }
}, 60 * 1000);

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
  $("order-search-form").addEventListener("submit", lookupOrders);
  $("order-search").addEventListener("input", () => lookupError(""));
  $("tab-customer").addEventListener("click", () => setTab("customer"));
  $("tab-orders").addEventListener("click", () => setTab("orders"));
  $("tab-customer").addEventListener("keydown", onTabKeydown);
  $("tab-orders").addEventListener("keydown", onTabKeydown);
  wireTransfer();
  setTab("orders");
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
