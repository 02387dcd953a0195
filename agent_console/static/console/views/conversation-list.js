// "My conversations": one list for every channel, newest activity first, with a channel tag on each
// conversation, its unread count, filters (channel, queue, status) and a search box (customer name,
// address, loaded transcript text; an email's subject and addresses too). Each item is a real button; Up/Down/Home/End move between them.
// Each shows its queue, the time of its last message, "Needs reply" with how long the customer has waited when
// they spoke last, and "New" when it was accepted while another one was open. Sort: newest activity, or longest
// waiting first. The search also looks in the contact repository (GET /console/search: name, phone, email, order
// number) and lists the customers it finds under the conversations; one opens in the Customer tab.
// Owner of the `listFilter` slice: {query, channel, queue, status, sort}.

import { $, h, key } from "../core/dom.js";
import { epochMs, fold, humanize, when } from "../core/format.js";
import { api } from "../core/http.js";
import { showCustomer } from "./customer360.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { isCallConv } from "../model/calls.js";
import { channelInfo, knownChannelNames } from "../model/channels.js";
import { channelIcon } from "../channels/icons.js";
import { activeId, allConvs, convName, isNote, lastActivity, lastMessage, selectConv, senderOf } from "../model/conversations.js";

const EMPTY_FILTER = { query: "", channel: "", queue: "", status: "", sort: "activity" };
const listFilter = defineSlice("listFilter", { ...EMPTY_FILTER }, "views/conversation-list.js");

const items = new Map(); // conversation id -> {li, button}

const STATUSES = [
  ["", "All"],
  ["open", "Open"],
  ["needs_reply", "Needs reply"],
  ["closed", "Closed"],
];

/** An email's subject (a message's `extra.subject`), or "". */
function subjectOf(m) {
  const x = m.extra && typeof m.extra === "object" ? m.extra : null;
  return x && typeof x.subject === "string" ? x.subject : "";
}

/** The addresses an email names: its sender, recipients and copies. */
function addressesOf(m) {
  const x = m.extra && typeof m.extra === "object" ? m.extra : null;
  if (!x) return [];
  const one = (a) => (typeof a === "string" ? a : a && typeof a === "object" ? [a.name, a.address].filter((v) => typeof v === "string").join(" ") : "");
  return [x.from, x.reply_to, ...(Array.isArray(x.to) ? x.to : []), ...(Array.isArray(x.cc) ? x.cc : [])].map(one).filter(Boolean);
}

/** What the search reads of a message: its text, its files' names, and an email's subject and addresses. */
function messageText(m) {
  const names = Array.isArray(m.attachments) ? m.attachments.map((a) => a?.name).filter(Boolean) : [];
  return [subjectOf(m), m.text || "", ...names, ...addressesOf(m)].join(" ");
}

/** A message in one line: an email's subject, then its text. */
function lineOf(m) {
  const text = m.text || (Array.isArray(m.attachments) && m.attachments.length ? `Attachment: ${m.attachments[0]?.name || "file"}` : "");
  const subject = subjectOf(m);
  return subject ? `${subject} · ${text}` : text;
}

function previewOf(conv) {
  const last = lastMessage(conv);
  if (!last) return channelInfo(conv.channel, conv.channelLabel).label;
  return (isNote(conv, last) ? "Note: " : "") + lineOf(last);
}

/** The last message the customer can see is theirs: the agent owes a reply. */
function needsReply(conv) {
  return waitingSince(conv) > 0;
}

/** Since when the customer has waited for an answer (ms: their first message after the last agent or bot
 *  reply), or 0 when they have not (the agent spoke last, or nothing loaded yet). */
export function waitingSince(conv) {
  // never on a call (a phone call, a web callback, a click-to-call): the customer's lines there are the phone
  // menu's or the callback request's, and the agent answers by voice
  if (isCallConv(conv)) return 0;
  const shown = [...conv.messages.values()].filter((m) => !isNote(conv, m) && senderOf(m) !== "system").sort((a, b) => a.seq - b.seq);
  let since = 0;
  for (const m of shown) {
    if (senderOf(m) === "customer") since = since || epochMs(m.created_at) || 1;
    else since = 0;
  }
  return since;
}

/** "2m", "1h 05m", "40s". */
export function ago(ms, now = Date.now()) {
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, "0")}m`;
}

/** Whether a conversation passes the filters; with a query, the message it matched (for the preview). */
function matches(conv, f) {
  if (f.channel && conv.channel !== f.channel) return { ok: false };
  if (f.queue && conv.queue !== f.queue) return { ok: false };
  if (f.status === "open" && conv.closed) return { ok: false };
  if (f.status === "closed" && !conv.closed) return { ok: false };
  if (f.status === "needs_reply" && (conv.closed || !needsReply(conv))) return { ok: false };
  const q = fold(f.query.trim());
  if (!q) return { ok: true };
  const words = q.split(/\s+/).filter(Boolean);
  const head = fold([convName(conv), conv.customerAddress || "", `#${conv.id}`].join(" "));
  const sorted = [...conv.messages.values()].sort((a, b) => b.seq - a.seq);
  const haystack = head + " " + sorted.map((m) => fold(messageText(m))).join(" ");
  if (!words.every((w) => haystack.includes(w))) return { ok: false };
  if (words.every((w) => head.includes(w))) return { ok: true };
  const hit = sorted.find((m) => words.some((w) => fold(messageText(m)).includes(w)));
  return { ok: true, hit };
}

function itemFor(conv) {
  const id = key(conv.id);
  let item = items.get(id);
  if (item) return item;
  const button = h("button", { type: "button", class: "conv-open", "data-testid": "conversation-open" });
  button.addEventListener("click", () => selectConv(conv.id));
  button.addEventListener("keydown", onItemKeydown);
  const li = h("li", { class: "conv-item", "data-testid": "conversation-item", "data-conversation-id": id }, button);
  item = { li, button };
  items.set(id, item);
  return item;
}

function renderItem(conv, f = listFilter.get()) {
  const { li, button } = itemFor(conv);
  const info = channelInfo(conv.channel, conv.channelLabel);
  const result = matches(conv, f);
  const isOpen = key(conv.id) === key(activeId());
  const at = lastActivity(conv);
  const preview = conv.closed ? "Closed" : result.hit ? lineOf(result.hit) || messageText(result.hit) : previewOf(conv);
  const named = convName(conv);
  // the full set is in the header; the address once (it is the name of a customer without one)
  const meta = conv.customerAddress && conv.customerAddress !== named ? conv.customerAddress : "";
  const waiting = !conv.closed ? waitingSince(conv) : 0;
  // the button's name is its own text (what a sighted agent reads, in that order), with commas and the unread
  // count for screen readers only: an aria-label would differ from the visible text (axe: label-content-name-mismatch)
  const spoken = (text) => h("span", { class: "sr-only", text });
  const time = at ? when(new Date(at).toISOString()) : "";
  button.replaceChildren(
    h(
      "span",
      { class: "conv-avatar", "data-testid": "channel-icon", "data-channel": info.name, "data-icon": info.icon, title: info.label, "aria-hidden": "true" },
      channelIcon(info.icon),
    ),
    h("span", { class: "conv-line" }, h("span", { class: "conv-name", text: named }), time ? spoken(", ") : null, h("span", { class: "conv-time", text: time })),
    h(
      "span",
      { class: "conv-meta" },
      spoken(", "),
      h("span", { class: "ch-pill", "data-testid": "channel-label", "data-icon": info.icon, title: info.label, text: info.short }),
      conv.queue ? spoken(", queue ") : null,
      conv.queue ? h("span", { class: "q-pill", "data-testid": "queue-label", text: humanize(conv.queue) }) : null,
      meta ? spoken(", ") : null,
      meta ? h("span", { class: "conv-meta-text", text: meta }) : null,
      conv.fresh ? spoken(", ") : null,
      conv.fresh ? h("span", { class: "fresh-pill", "data-testid": "fresh-label", text: "New" }) : null,
      waiting ? spoken(", ") : null,
      waiting ? h("span", { class: "reply-pill", "data-testid": "needs-reply", title: "The customer spoke last", text: `Needs reply · ${ago(waiting)}` }) : null,
    ),
    h(
      "span",
      { class: "conv-line" },
      spoken(", "),
      h("span", { class: `conv-preview${result.hit ? " hit" : ""}`, text: preview }),
      h("span", { class: "badge", "data-testid": "unread-badge", "aria-hidden": "true", text: conv.unread ? String(conv.unread) : "" }),
      conv.unread ? spoken(`, ${conv.unread} unread`) : null,
    ),
  );
  button.removeAttribute("aria-label");
  if (isOpen) button.setAttribute("aria-current", "true");
  else button.removeAttribute("aria-current");
  li.classList.toggle("active", isOpen);
  li.classList.toggle("closed", conv.closed);
  li.classList.toggle("unread", conv.unread > 0);
  li.classList.toggle("fresh", !!conv.fresh);
  li.dataset.waiting = waiting ? String(waiting) : "";
  li.dataset.channel = conv.channel;
  li.dataset.unread = String(conv.unread);
  li.hidden = !result.ok;
  return result.ok;
}

/** Draw every item, keep them in activity order (newest first) without losing the keyboard focus. */
function renderAll() {
  const f = listFilter.get();
  const list = $("conversations");
  const convs = allConvs();
  let shown = 0;
  for (const conv of convs) if (renderItem(conv, f)) shown++;
  const byActivity = (a, b) => lastActivity(b) - lastActivity(a) || b.acceptedAt - a.acceptedAt || Number(b.id) - Number(a.id);
  // longest waiting: those owing a reply first, the oldest unanswered message first; then by activity
  const wait = (c) => (c.closed ? 0 : waitingSince(c)) || Infinity;
  const byWaiting = (a, b) => wait(a) - wait(b) || byActivity(a, b);
  const order = convs.sort(f.sort === "waiting" ? byWaiting : byActivity).map((c) => items.get(key(c.id)).li);
  const current = [...list.children];
  if (order.length !== current.length || order.some((li, i) => current[i] !== li)) {
    const focused = document.activeElement;
    list.replaceChildren(...order);
    if (focused && focused !== document.activeElement && list.contains(focused)) focused.focus({ preventScroll: true });
  }
  renderChrome(convs.length, shown);
}

function renderChrome(total, shown) {
  const f = listFilter.get();
  const filtering = !!(f.query.trim() || f.channel || f.queue || f.status || f.sort !== "activity");
  $("conversations-empty").hidden = total > 0;
  // the search box is always there (it finds customers too); the filters once there is something to filter
  $("conv-filter-row").hidden = total === 0 && !filtering;
  $("conversations-no-match").hidden = !(total > 0 && shown === 0);
  $("conv-filter-summary").textContent = filtering ? `${shown} of ${total} conversation${total === 1 ? "" : "s"} shown` : "";
  const unread = allConvs().reduce((n, c) => n + c.unread, 0);
  const badge = $("unread-total");
  badge.textContent = String(unread);
  badge.hidden = unread === 0;
  badge.setAttribute("aria-label", `${unread} unread`);
  renderFilterOptions();
}

function setOptions(select, options, value) {
  const wanted = options.map(([v, t]) => `${v}\u0000${t}`).join("\u0001");
  if (select.dataset.options !== wanted) {
    select.replaceChildren(...options.map(([v, t]) => h("option", { value: v, text: t })));
    select.dataset.options = wanted;
  }
  select.value = options.some(([v]) => v === value) ? value : "";
}

function renderFilterOptions() {
  const f = listFilter.get();
  const convs = allConvs();
  const names = [...new Set([...knownChannelNames(), ...convs.map((c) => c.channel), f.channel].filter(Boolean))];
  setOptions($("conv-filter-channel"), [["", "All"], ...names.map((n) => [n, channelInfo(n, convs.find((c) => c.channel === n)?.channelLabel).label])], f.channel);
  const queues = [...new Set([...convs.map((c) => c.queue), f.queue].filter(Boolean))].sort();
  setOptions($("conv-filter-queue"), [["", "All"], ...queues.map((q) => [q, humanize(q)])], f.queue);
  setOptions($("conv-filter-status"), STATUSES, f.status);
  $("conv-sort").value = f.sort === "waiting" ? "waiting" : "activity";
}

// ---------- customers in the contact repository (GET /console/search)

let searchTimer = null;
let searchSeq = 0;

async function searchCustomers(query) {
  const q = query.trim();
  const mine = ++searchSeq;
  const box = $("customer-hits-wrap");
  if (q.length < 2) {
    box.hidden = true;
    $("customer-hits").replaceChildren();
    return;
  }
  const r = await api(`/console/search?q=${encodeURIComponent(q)}`);
  if (mine !== searchSeq) return; // a newer search started
  const found = r.ok && Array.isArray(r.data?.customers) ? r.data.customers : [];
  const how = { name: "name", email: "email", phone: "phone", order: "order" };
  $("customer-hits").replaceChildren(
    ...found.map((c) => {
      const orders = `${c.orders} order${c.orders === 1 ? "" : "s"}`;
      const matched = c.matched === "order" && c.order_id ? `order #${c.order_id}` : how[c.matched] || "";
      const b = h(
        "button",
        { type: "button", class: "hit", "data-testid": "customer-hit", "data-customer-id": c.id },
        h("span", { class: "hit-name", text: `${c.display_name} (#${c.id})` }),
        h("span", { class: "small muted", text: `${orders}${matched ? ` · matched by ${matched}` : ""}` }),
      );
      b.addEventListener("click", () => showCustomer(c.id));
      return h("li", {}, b);
    }),
  );
  $("customer-hits-empty").hidden = found.length > 0;
  $("customer-hits-scope").hidden = r.data?.scope !== "mine";
  box.hidden = false;
}

function setFilter(patch) {
  listFilter.set({ ...listFilter.get(), ...patch }, { type: "filter" });
}

function onItemKeydown(ev) {
  if (!["ArrowDown", "ArrowUp", "Home", "End"].includes(ev.key)) return;
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return; // Alt+↓/↑ are the shortcuts' (open the next/previous one)
  const buttons = [...$("conversations").querySelectorAll(".conv-item:not([hidden]) .conv-open")];
  const i = buttons.indexOf(ev.currentTarget);
  if (i < 0 || !buttons.length) return;
  ev.preventDefault();
  const next = ev.key === "Home" ? 0 : ev.key === "End" ? buttons.length - 1 : Math.max(0, Math.min(buttons.length - 1, i + (ev.key === "ArrowDown" ? 1 : -1)));
  buttons[next].focus();
}

function onConversations(_, change) {
  if (change.type === "removed") {
    items.get(key(change.conv.id))?.li.remove();
    items.delete(key(change.conv.id));
  } else if (change.type === "reset") {
    items.clear();
    $("conversations").replaceChildren();
  } else if (change.type === "status" || change.type === "outbox") {
    return; // nothing of the list changes
  }
  renderAll();
}

export function wire() {
  subscribe("conversations", onConversations);
  subscribe("active", renderAll);
  subscribe("listFilter", renderAll);
  subscribe("channels", renderAll);
  $("conv-search").addEventListener("input", (ev) => {
    setFilter({ query: ev.target.value });
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => searchCustomers(ev.target.value), 300);
  });
  $("conv-sort").addEventListener("change", (ev) => setFilter({ sort: ev.target.value }));
  $("conv-search").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape" && ev.target.value) {
      ev.preventDefault();
      ev.target.value = "";
      setFilter({ query: "" });
      searchCustomers("");
    }
  });
  $("conv-filter-channel").addEventListener("change", (ev) => setFilter({ channel: ev.target.value }));
  $("conv-filter-queue").addEventListener("change", (ev) => setFilter({ queue: ev.target.value }));
  $("conv-filter-status").addEventListener("change", (ev) => setFilter({ status: ev.target.value }));
  $("conv-filter-clear").addEventListener("click", () => {
    $("conv-search").value = "";
    setFilter({ ...EMPTY_FILTER });
    searchCustomers("");
    $("conv-search").focus();
  });
  subscribe("session", (s, change) => {
    if (change.type !== "signed_out") return;
    $("conv-search").value = "";
    listFilter.set({ ...EMPTY_FILTER }, { type: "reset" });
  });
  // a clock for "10:42" against "yesterday": redraw the times once a minute
  // and the "Needs reply · 2m" waits every 15 s
  setInterval(() => read("session").signedIn && allConvs().length && renderAll(), 15 * 1000);
  renderAll();
}
