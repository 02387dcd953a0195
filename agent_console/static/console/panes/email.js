// The email pane: an email thread as a list of messages, and a composer (docs/subsystems/console.md, "Email").
//
// Each message shows From / To / Cc / Subject, its new text with the quoted history folded behind "show
// quoted text" (extra.quote_at), the labels "possibly spoofed" (extra.spoofed: DMARC/DKIM failed) and
// "automatic reply" (extra.auto), the files that were not kept (extra.omitted, in words) and its files as
// download links. The HTML version, on request, is an <iframe sandbox=""> whose src is the hub's
// GET /console/conversations/{id}/messages/{seq}/html (sanitised on ingest, served with a CSP sandbox); remote
// images stay off until the agent clicks "Load remote images" (?images=1).
// The header of the pane has the thread's subject and the first-response clock (from queued_at until the
// first agent reply, against the queue's sl_target_seconds).
// The composer: plain text (Enter is a new line, Ctrl+Enter sends) with a formatted preview, copies (CC,
// checked addresses, sent as the reply's `cc`), files (panes/attach.js) and canned responses ("/").
//
// Every piece of email content goes into the page as text; the HTML only ever in the sandboxed frame.
// State: the conversation records are the model's; this pane keeps per message what is unfolded (quote,
// HTML, remote images) and per conversation the draft (text, CC).

import { h, key, svg } from "../core/dom.js";
import { bytes, dateTimeFmt, epochMs, fmt } from "../core/format.js";
import { mediaUrl } from "../core/media.js";
import * as socket from "../core/socket.js";
import { subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";
import { channelInfo } from "../model/channels.js";
import { activeConv, addMessage, convName, isActive, isNote, queueReply, senderOf } from "../model/conversations.js";
import { currentAgent } from "../session.js";
import { cannedKeydown, closeCanned, updateCanned } from "../views/canned.js";
import { ticksNode } from "./transcript.js";
import { createAttacher } from "./attach.js";

export const MAX_CC = 10; // the hub takes at most ten copies
const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[^\s@<>()",;:\\[\]]+\.[^\s@<>()",;:\\[\]]+$/;

const AUTO_WORDS = {
  out_of_office: "automatic reply: out of office",
  auto_reply: "automatic reply",
  list: "automatic: mailing list",
  bounce: "automatic: delivery failure report",
};

// ------------------------------------------------------------------ pure helpers (no DOM of the page)

/** The email parts of a message (its `extra`), or null. */
export function emailOf(m) {
  const x = m && m.extra;
  return x && typeof x === "object" && !Array.isArray(x) ? x : null;
}

function str(v) {
  return typeof v === "string" ? v : "";
}

/** One address for display: "Ann <ann@example.com>", or the address alone. */
export function addressText(a) {
  if (typeof a === "string") return a;
  if (!a || typeof a !== "object") return "";
  const address = str(a.address);
  const name = str(a.name).trim();
  return name && address ? `${name} <${address}>` : name || address;
}

/** A list of addresses (strings or {address, name}) as one line. */
export function addressList(list) {
  return (Array.isArray(list) ? list : list ? [list] : []).map(addressText).filter(Boolean).join(", ");
}

/** The message's text cut where the quoted history starts: {fresh, quoted}. */
export function splitQuote(text, quoteAt) {
  const t = str(text);
  if (!Number.isInteger(quoteAt) || quoteAt < 0 || quoteAt >= t.length) return { fresh: t, quoted: "" };
  return { fresh: t.slice(0, quoteAt).replace(/\s+$/, ""), quoted: t.slice(quoteAt).replace(/^\s*\n/, "") };
}

/**
 * The CC field: addresses separated by commas, semicolons, spaces or new lines.
 * {list, errors}: the addresses (lower case, once each), and what is wrong, in words.
 */
export function parseCc(raw, recipient = "") {
  const list = [];
  const errors = [];
  for (const word of str(raw).split(/[\s,;]+/).filter(Boolean)) {
    const address = word.replace(/^<(.*)>$/, "$1").toLowerCase();
    if (address.length > 254 || !ADDRESS.test(address)) errors.push(`“${word}” is not an email address.`);
    else if (recipient && address === recipient.toLowerCase()) errors.push(`${address} is already the recipient.`);
    else if (!list.includes(address)) list.push(address);
  }
  if (list.length > MAX_CC) errors.push(`At most ${MAX_CC} copies (${list.length} given).`);
  return { list, errors };
}

/** "Re: Order 10234" (no second "Re:"). */
export function replySubject(subject) {
  const s = str(subject).trim() || "(no subject)";
  return /^re:/i.test(s) ? s : `Re: ${s}`;
}

/** "42s", "3m 05s", "1h 02m", "2d 4h". */
export function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/**
 * The first-response clock: from `queued_at` until the first agent reply the customer sees, against the
 * queue's target. {state: running | due | overdue | met | missed | none, elapsedMs, targetMs, text}.
 */
export function firstResponse(conv, now = Date.now()) {
  const start = epochMs(conv.queuedAt);
  if (!start) return { state: "none", text: "" };
  let first = 0;
  for (const m of conv.messages.values()) {
    if (senderOf(m) !== "agent" || isNote(conv, m)) continue;
    const at = epochMs(m.created_at);
    if (at && (!first || at < first)) first = at;
  }
  const targetMs = Number.isFinite(conv.slTargetSeconds) && conv.slTargetSeconds > 0 ? conv.slTargetSeconds * 1000 : null;
  const target = targetMs ? duration(targetMs).replace(/ 0+[sm]$/, "") : "";
  if (first) {
    const elapsedMs = Math.max(0, first - start);
    const met = !targetMs || elapsedMs <= targetMs;
    const text = `First response in ${duration(elapsedMs)}${targetMs ? (met ? ` · target ${target} met` : ` · target ${target} missed`) : ""}`;
    return { state: met ? "met" : "missed", elapsedMs, targetMs, text };
  }
  const elapsedMs = Math.max(0, now - start);
  if (conv.closed) return { state: "none", elapsedMs, targetMs, text: "Closed without a reply" };
  if (!targetMs) return { state: "running", elapsedMs, targetMs, text: `Waiting for a first response: ${duration(elapsedMs)}` };
  if (elapsedMs > targetMs) return { state: "overdue", elapsedMs, targetMs, text: `First response overdue: ${duration(elapsedMs)} (target ${target})` };
  const state = elapsedMs >= 0.8 * targetMs ? "due" : "running";
  return { state, elapsedMs, targetMs, text: `First response: ${duration(elapsedMs)} of ${target} · ${duration(targetMs - elapsedMs)} left` };
}

/** The thread's subject: the first email's, else the conversation's. */
export function threadSubject(conv) {
  const sorted = [...conv.messages.values()].sort((a, b) => a.seq - b.seq);
  for (const m of sorted) {
    const s = str(emailOf(m)?.subject).trim();
    if (s) return s;
  }
  return str(conv.subject).trim() || "(no subject)";
}

/** The URL of a message's sanitised HTML (the hub's route). */
export function htmlUrl(conv, m, images = false) {
  return `/console/conversations/${encodeURIComponent(String(conv.id))}/messages/${encodeURIComponent(String(m.seq))}/html${images ? "?images=1" : ""}`;
}

// ------------------------------------------------------------------ the formatted preview (DOM, text only)

const URL_RE = /\bhttps?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]]/g;

function linkified(line) {
  const out = [];
  let at = 0;
  for (const match of line.matchAll(URL_RE)) {
    if (match.index > at) out.push(line.slice(at, match.index));
    out.push(h("a", { href: match[0], target: "_blank", rel: "noopener noreferrer", text: match[0] }));
    at = match.index + match[0].length;
  }
  if (at < line.length) out.push(line.slice(at));
  return out;
}

function linesNode(tag, lines, props = {}) {
  const node = h(tag, props);
  lines.forEach((line, i) => {
    if (i) node.append(h("br"));
    node.append(...linkified(line));
  });
  return node;
}

/** The reply as its HTML part will read: paragraphs, line breaks, "> " quotes, links, the "-- " signature. */
export function previewNodes(text) {
  const nodes = [];
  const t = str(text).replace(/\r\n?/g, "\n").replace(/\s+$/, "");
  if (!t.trim()) return [h("p", { class: "muted", text: "Nothing written yet." })];
  const sig = t.split("\n").findIndex((l) => l === "-- " || l === "--");
  const body = sig >= 0 ? t.split("\n").slice(0, sig).join("\n") : t;
  for (const para of body.split(/\n{2,}/)) {
    const lines = para.split("\n");
    let run = [];
    let quoting = null;
    const flush = () => {
      if (!run.length) return;
      nodes.push(quoting ? linesNode("blockquote", run.map((l) => l.replace(/^>\s?/, ""))) : linesNode("p", run));
      run = [];
    };
    for (const line of lines) {
      const q = /^>/.test(line);
      if (quoting !== null && q !== quoting) flush();
      quoting = q;
      run.push(line);
    }
    flush();
  }
  if (sig >= 0) nodes.push(linesNode("p", t.split("\n").slice(sig + 1), { class: "email-signature" }));
  return nodes;
}

// ------------------------------------------------------------------ the pane's elements

let root = null;
let els = {};
let attacher = null;
let shown = null; // the conversation on screen
let clock = null;
const opened = new Map(); // `${conv}:${seq}` -> {quote, html, images}
const drafts = new Map(); // conversation id -> {text, cc}

function viewOf(conv, m) {
  const k = `${key(conv.id)}:${m.seq}`;
  if (!opened.has(k)) opened.set(k, { quote: false, html: false, images: false });
  return opened.get(k);
}

/** The paperclip of the messaging composer's attach button (console.html), built node by node. */
function paperclip() {
  return svg(
    "svg",
    { viewBox: "0 0 24 24", width: 20, height: 20, fill: "none", stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" },
    svg("path", { d: "M20.5 11.5l-8.2 8.2a5 5 0 0 1-7.1-7.1l8.5-8.5a3.4 3.4 0 0 1 4.8 4.8l-8.4 8.4a1.7 1.7 0 0 1-2.4-2.4l7.7-7.7" }),
  );
}

function build(host) {
  const e = {};
  e.subject = h("h3", { class: "email-subject", "data-testid": "email-thread-subject" });
  e.count = h("span", { class: "email-count muted small", "data-testid": "email-count" });
  e.timer = h("span", { class: "email-frt", "data-testid": "first-response", role: "timer", "aria-live": "off" });
  e.banner = h("p", { class: "email-banner", "data-testid": "email-spoof-banner", role: "alert", hidden: true });
  e.thread = h("div", { class: "email-thread", "data-testid": "email-thread", "aria-live": "polite" });

  e.to = h("span", { class: "email-to-value", "data-testid": "email-reply-to" });
  e.cc = h("input", {
    type: "text", class: "email-cc", "data-testid": "email-cc", id: "email-cc", autocomplete: "off", spellcheck: "false", maxlength: "2000",
    placeholder: "Copies: addresses separated by commas", "aria-describedby": "email-cc-error",
  });
  e.ccError = h("p", { class: "form-error small", id: "email-cc-error", "data-testid": "email-cc-error", role: "alert", hidden: true });
  e.replySubject = h("span", { class: "email-reply-subject", "data-testid": "email-reply-subject" });
  e.write = h("button", { type: "button", class: "email-tab", "data-testid": "email-write-tab", "aria-pressed": "true", text: "Write" });
  e.preview = h("button", { type: "button", class: "email-tab", "data-testid": "email-preview-toggle", "aria-pressed": "false", text: "Preview" });
  e.input = h("textarea", {
    class: "email-input", "data-testid": "email-reply-input", rows: "3", "aria-label": "Reply by email",
    placeholder: "Plain text — Ctrl+Enter to send, / for canned responses",
  });
  e.previewBox = h("div", { class: "email-preview", "data-testid": "email-preview", "aria-label": "Preview of the reply", hidden: true });
  e.picker = h("div", { class: "canned", "data-testid": "email-canned-picker", role: "listbox", hidden: true });
  e.attachButton = h(
    "button",
    { type: "button", class: "btn btn-ghost btn-attach", "data-testid": "email-attach-button", "aria-label": "Attach a file", hidden: true },
    paperclip(),
  );
  e.attachInput = h("input", { type: "file", multiple: true, tabindex: "-1", "aria-hidden": "true", hidden: true, "data-testid": "email-attach-input" });
  e.tray = h("ul", { class: "attach-tray", "data-testid": "email-attach-tray", "aria-label": "Files to send with the reply", hidden: true });
  e.hint = h("p", { class: "attach-hint", "data-testid": "email-attach-hint", hidden: true });
  e.send = h("button", { type: "button", class: "btn btn-primary", "data-testid": "email-send", text: "Send" });
  e.note = h("input", { type: "text", "data-testid": "email-note-input", placeholder: "Internal note (the customer does not see it)", "aria-label": "Internal note", maxlength: "4000" });
  e.noteSend = h("button", { type: "button", class: "btn btn-note", "data-testid": "email-note-send", text: "Add note" });
  e.error = h("p", { class: "form-error small", "data-testid": "email-error", role: "alert", hidden: true });

  const composer = h(
    "div",
    { class: "composer email-composer", "data-testid": "email-composer" },
    h(
      "div",
      { class: "email-addr-row" },
      h("span", { class: "email-addr-label", text: "To" }), e.to,
      h("label", { class: "email-addr-label", for: "email-cc", text: "Cc" }), e.cc,
    ),
    e.ccError,
    h("div", { class: "email-addr-row" }, h("span", { class: "email-addr-label", text: "Subject" }), e.replySubject, h("span", { class: "email-tabs", role: "group", "aria-label": "Reply view" }, e.write, e.preview)),
    e.tray,
    h("div", { class: "reply-wrap email-reply-wrap" }, e.picker, e.attachButton, e.attachInput, e.input, e.previewBox, e.send),
    h("div", { class: "composer-foot" }, e.hint),
    h("div", { class: "note-wrap" }, e.note, e.noteSend),
    e.error,
  );
  root = h(
    "section",
    { class: "pane-email", "data-pane": "email", "data-testid": "email-pane", "aria-label": "Email thread", hidden: true },
    h("header", { class: "email-head" }, h("div", { class: "email-head-main" }, e.subject, e.count), e.timer),
    e.banner,
    e.thread,
    composer,
  );
  host.append(root);
  return e;
}

// ------------------------------------------------------------------ one message

function field(label, value, testid) {
  if (!value) return null;
  return h("div", { class: "email-field", "data-testid": testid }, h("dt", { text: label }), h("dd", { text: value }));
}

function fileLink(a) {
  if (!a || typeof a !== "object") return null;
  const name = str(a.name) || "attachment";
  const size = bytes(a.size);
  const url = mediaUrl(a.url);
  if (!url) return h("span", { class: "attachment blocked", "data-testid": "attachment", "data-kind": "blocked", text: `${name}${size ? ` (${size})` : ""}: not shown, not a file of this hub` });
  // always a download link: never an inline image, HTML or SVG in the console's page
  return h(
    "a",
    { class: "attachment file", "data-testid": "attachment", "data-kind": "file", href: url, download: name, rel: "noopener noreferrer", title: `${name}${a.content_type ? ` · ${a.content_type}` : ""}` },
    channelIcon("file"),
    h("span", { class: "attachment-name", text: name }),
    size ? h("span", { class: "attachment-size", text: size }) : null,
  );
}

function omittedNode(list) {
  const items = (Array.isArray(list) ? list : []).filter((o) => o && typeof o === "object");
  if (!items.length) return null;
  return h(
    "div",
    { class: "email-omitted", "data-testid": "email-omitted", role: "note" },
    h("p", { text: items.length === 1 ? "1 attachment was not kept:" : `${items.length} attachments were not kept:` }),
    h("ul", {}, items.map((o) => h("li", { "data-testid": "email-omitted-item", text: `“${str(o.name) || "unnamed file"}”: ${str(o.reason) || "not kept"}` }))),
  );
}

function htmlBlock(conv, m, view) {
  const wrap = h("div", { class: "email-html-wrap", "data-testid": "email-html-view" });
  const images = h("button", {
    type: "button", class: "btn btn-ghost btn-sm", "data-testid": "email-load-images", text: view.images ? "Remote images loaded" : "Load remote images",
    disabled: view.images, title: "Remote images can tell the sender the email was read",
  });
  const frame = h("iframe", {
    class: "email-html", "data-testid": "email-html", sandbox: "", referrerpolicy: "no-referrer",
    title: `HTML version of the email #${m.seq}`, src: htmlUrl(conv, m, view.images),
  });
  images.addEventListener("click", () => {
    view.images = true;
    frame.src = htmlUrl(conv, m, true);
    images.textContent = "Remote images loaded";
    images.disabled = true;
    note.textContent = "Remote images are on for this email.";
  });
  const note = h("span", { class: "muted small", text: view.images ? "Remote images are on for this email." : "Remote images are off." });
  wrap.append(h("div", { class: "email-html-bar" }, note, images), frame);
  return wrap;
}

function emailNode(conv, m, { pending = false, failed = null, asNote = false } = {}) {
  const x = emailOf(m) || {};
  const sender = senderOf(m);
  const note = asNote || (!pending && isNote(conv, m));
  const node = h("article", {
    class: `email-msg${note ? " note" : ""}${pending ? " pending" : ""}`,
    "data-testid": "email-message",
    "data-sender": sender === "note" ? "agent" : sender,
    "data-seq": pending ? null : String(m.seq),
    "data-client-msg-id": m.client_msg_id || null,
    "data-internal": note ? "true" : null,
    "data-spoofed": x.spoofed === true ? "true" : null,
    "data-auto": x.auto ? String(x.auto) : null,
  });
  if (sender === "system") {
    node.append(h("p", { class: "email-system", text: str(m.text) }));
    return node;
  }
  const fromCustomer = sender === "customer";
  const who = fromCustomer
    ? (typeof x.from === "string" ? x.from : str(x.from?.name).trim() || str(x.from?.address)) || convName(conv)
    : note
      ? `${m.sender_name || currentAgent()?.display_name || "Agent"} (internal note)`
      : sender === "bot"
        ? `${m.sender_name || "Assistant"} (automatic)`
        : m.sender_name || currentAgent()?.display_name || "You";
  const labels = [];
  if (x.spoofed === true) {
    labels.push(h("span", {
      class: "email-label spoofed", "data-testid": "email-spoofed", text: "possibly spoofed",
      title: `The sender could not be verified (DMARC/DKIM: ${str(x.auth) || "fail"}): the From address may be forged. This email has a customer record of its own; do not trust it for identity.`,
    }));
  }
  if (x.auto) labels.push(h("span", { class: "email-label auto", "data-testid": "email-auto", text: AUTO_WORDS[x.auto] || "automatic reply" }));
  if (note) labels.push(h("span", { class: "email-label internal", text: "the customer does not see this" }));
  const when = pending ? (failed ? `Not sent: ${failed}` : "sending…") : fmt(m.created_at, dateTimeFmt);
  const ticks = !pending && !note && !fromCustomer ? ticksNode(m) : null;
  if (ticks) node.dataset.delivery = m.delivery_status;
  node.append(
    h(
      "header",
      { class: "email-msg-head" },
      h("span", { class: "email-from", "data-testid": "email-from", text: who }),
      labels.length ? h("span", { class: "email-labels" }, labels) : null,
      h("span", { class: "email-meta", "data-testid": "email-meta" }, when, ticks),
    ),
  );
  if (!note) {
    const to = fromCustomer ? addressList(x.to) : conv.customerAddress || "";
    const cc = addressList(fromCustomer ? x.cc : x.cc || m.cc);
    const subject = fromCustomer ? str(x.subject) : replySubject(threadSubject(conv));
    node.append(
      h(
        "dl",
        { class: "email-fields" },
        fromCustomer ? field("From", addressText(x.from) || conv.customerAddress || "", "email-field-from") : null,
        field("To", to, "email-field-to"),
        field("Cc", cc, "email-field-cc"),
        field("Subject", subject, "email-field-subject"),
      ),
    );
  }
  const view = pending ? { quote: false, html: false, images: false } : viewOf(conv, m);
  const { fresh, quoted } = fromCustomer ? splitQuote(m.text, x.quote_at) : { fresh: str(m.text), quoted: "" };
  node.append(h("div", { class: "email-text", "data-testid": "email-text", text: fresh || (quoted ? "(no new text: only the quoted history)" : "") }));
  if (quoted) {
    const box = h("div", { class: "email-quote", "data-testid": "email-quote", text: quoted, hidden: !view.quote });
    const toggle = h("button", {
      type: "button", class: "link-btn email-quote-toggle", "data-testid": "email-quote-toggle", "aria-expanded": view.quote ? "true" : "false",
      text: view.quote ? "hide quoted text" : "show quoted text",
    });
    toggle.addEventListener("click", () => {
      view.quote = !view.quote;
      box.hidden = !view.quote;
      toggle.setAttribute("aria-expanded", view.quote ? "true" : "false");
      toggle.textContent = view.quote ? "hide quoted text" : "show quoted text";
    });
    node.append(toggle, box);
  }
  if (fromCustomer && str(x.html_key)) {
    const slot = h("div", { class: "email-html-slot" });
    const toggle = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "email-html-toggle", "aria-expanded": "false" });
    const draw = () => {
      toggle.textContent = view.html ? "Hide the HTML version" : "Show the HTML version";
      toggle.setAttribute("aria-expanded", view.html ? "true" : "false");
      slot.replaceChildren(...(view.html ? [htmlBlock(conv, m, view)] : []));
    };
    toggle.addEventListener("click", () => {
      view.html = !view.html;
      draw();
    });
    draw();
    node.append(h("div", { class: "email-actions" }, toggle), slot);
  }
  const omitted = omittedNode(x.omitted);
  if (omitted) node.append(omitted);
  const files = Array.isArray(m.attachments) ? m.attachments.map(fileLink).filter(Boolean) : [];
  if (files.length) node.append(h("div", { class: "attachments email-attachments", "data-testid": "email-attachments" }, files));
  if (failed) node.classList.add("failed");
  return node;
}

function pendingNode(conv, entry) {
  return emailNode(conv, { sender_kind: "agent", text: entry.text, client_msg_id: entry.client_msg_id, attachments: entry.attachments, extra: entry.cc ? { cc: entry.cc } : null }, { pending: true });
}

// ------------------------------------------------------------------ the thread and the header

function renderHead(conv) {
  const subject = threadSubject(conv);
  els.subject.textContent = subject;
  els.subject.title = subject;
  const n = [...conv.messages.values()].filter((m) => !isNote(conv, m) && senderOf(m) !== "system").length;
  els.count.textContent = n === 1 ? "1 email" : `${n} emails`;
  const spoofed = [...conv.messages.values()].some((m) => senderOf(m) === "customer" && emailOf(m)?.spoofed === true);
  els.banner.hidden = !spoofed;
  els.banner.textContent = spoofed
    ? "Possibly spoofed: an email in this thread failed sender verification (DMARC/DKIM). Do not trust its From address."
    : "";
  els.replySubject.textContent = replySubject(subject);
  els.to.textContent = conv.customerAddress || convName(conv);
  renderClock();
}

function renderClock() {
  const conv = shown;
  if (!conv) return;
  const frt = firstResponse(conv);
  els.timer.hidden = frt.state === "none" && !frt.text;
  els.timer.textContent = frt.text;
  els.timer.dataset.state = frt.state;
  const running = ["running", "due", "overdue"].includes(frt.state);
  if (running && !clock) clock = setInterval(renderClock, 1000);
  if (!running && clock) {
    clearInterval(clock);
    clock = null;
  }
}

function renderThread(conv) {
  const nodes = [...conv.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => emailNode(conv, m));
  for (const entry of conv.outbox) nodes.push(pendingNode(conv, entry));
  els.thread.replaceChildren(...nodes);
  els.thread.scrollTop = els.thread.scrollHeight;
}

function insertMessage(conv, m) {
  const box = els.thread;
  const stick = box.scrollHeight - box.scrollTop - box.clientHeight < 160;
  if (m.client_msg_id) box.querySelector(`[data-client-msg-id="${CSS.escape(m.client_msg_id)}"]:not([data-seq])`)?.remove();
  if (isNote(conv, m)) box.querySelector(".email-msg.note.pending")?.remove();
  let before = null;
  for (const other of box.querySelectorAll('[data-testid="email-message"]')) {
    const seq = other.getAttribute("data-seq");
    if (seq === null || Number(seq) > m.seq) {
      before = other;
      break;
    }
  }
  box.insertBefore(emailNode(conv, m), before);
  if (stick || senderOf(m) !== "customer") box.scrollTop = box.scrollHeight;
}

function redrawMessage(conv, m) {
  const node = els.thread.querySelector(`[data-testid="email-message"][data-seq="${CSS.escape(String(m.seq))}"]`);
  if (node) node.replaceWith(emailNode(conv, m));
}

// ------------------------------------------------------------------ the composer

function showError(text, cause = "") {
  els.error.textContent = text || "";
  els.error.hidden = !text;
  els.error.dataset.cause = text ? cause : "";
}

function draftOf(conv) {
  const k = key(conv.id);
  if (!drafts.has(k)) drafts.set(k, { text: "", cc: "" });
  return drafts.get(k);
}

function saveDraft() {
  if (!shown) return;
  const d = draftOf(shown);
  d.text = els.input.value;
  d.cc = els.cc.value;
}

/** The CC field checked; shows what is wrong. Returns the addresses, or null when one is wrong. */
function checkCc({ quiet = false } = {}) {
  const { list, errors } = parseCc(els.cc.value, shown?.customerAddress || "");
  const bad = errors.length > 0;
  els.cc.setAttribute("aria-invalid", bad ? "true" : "false");
  if (!quiet || !bad) {
    els.ccError.textContent = errors.join(" ");
    els.ccError.hidden = !bad;
  }
  return bad ? null : list;
}

function renderSend() {
  const conv = shown;
  if (!conv || !els.send) return;
  const uploading = attacher.state(conv).uploading;
  els.send.disabled = conv.closed || conv.optedOut || uploading;
  els.send.textContent = uploading ? "Uploading…" : "Send";
  els.send.setAttribute("aria-busy", uploading ? "true" : "false");
}

function renderComposer(conv) {
  const off = conv.closed || conv.optedOut;
  const info = channelInfo(conv.channel, conv.channelLabel);
  els.input.disabled = off;
  els.cc.disabled = off;
  els.note.disabled = conv.closed;
  els.noteSend.disabled = conv.closed;
  els.input.maxLength = info.maxText;
  els.input.placeholder = conv.closed ? "This conversation is closed." : "Plain text — Ctrl+Enter to send, / for canned responses";
  attacher.show(conv); // calls renderSend
}

function setPreview(on) {
  els.preview.setAttribute("aria-pressed", on ? "true" : "false");
  els.write.setAttribute("aria-pressed", on ? "false" : "true");
  els.previewBox.hidden = !on;
  els.input.hidden = on;
  if (on) els.previewBox.replaceChildren(...previewNodes(els.input.value));
  else els.input.focus();
}

function sendReply() {
  const conv = activeConv();
  if (!conv || conv !== shown || conv.closed || conv.optedOut) return;
  const text = els.input.value.replace(/\s+$/, "");
  const files = attacher.state(conv);
  if (files.uploading) return showError("A file is still uploading: send once it says “Ready to send” (or remove it).");
  const cc = checkCc();
  if (cc === null) return showError("Check the copies (Cc) first.", "cc");
  if (!text.trim() && !files.ready.length) return showError("Write a reply (or attach a file) first.");
  showError("");
  closeCanned(target());
  queueReply(conv, text.trim() ? text : "", files.ready, { cc }); // the pending message comes with the model's "outbox" change
  if (files.count) attacher.clear(conv);
  els.input.value = "";
  els.cc.value = "";
  els.ccError.hidden = true;
  saveDraft();
  setPreview(false);
}

function sendNote() {
  const conv = activeConv();
  const text = els.note.value.trim();
  if (!conv || conv !== shown || conv.closed || !text) return;
  if (!socket.isConnected()) return showError("Not connected: the note was not saved.");
  showError("");
  const pending = emailNode(conv, { sender_kind: "agent", text }, { pending: true, asNote: true });
  els.thread.append(pending);
  els.thread.scrollTop = els.thread.scrollHeight;
  els.note.value = "";
  socket.request("note", { conversation_id: conv.id, text }, 10000, (err, ack) => {
    if (err || !ack?.ok) {
      pending.classList.add("failed");
      pending.querySelector(".email-meta").textContent = `Not saved: ${ack?.error?.message || "no answer"}`;
      return;
    }
    pending.remove();
    if (ack.message && !addMessage(conv, ack.message, { note: true }) && isActive(conv) && shown === conv) renderThread(conv);
  });
}

function replyFailed(conv, entry, error) {
  const node = els.thread.querySelector(`[data-client-msg-id="${CSS.escape(entry.client_msg_id)}"]:not([data-seq])`);
  const words = error?.message || "the hub refused it";
  if (node) node.replaceWith(emailNode(conv, { sender_kind: "agent", text: entry.text, client_msg_id: entry.client_msg_id, attachments: entry.attachments, extra: entry.cc ? { cc: entry.cc } : null }, { pending: true, failed: words }));
  showError(`The reply was not sent: ${words}`);
}

function target() {
  return { input: els.input, picker: els.picker };
}

function wireComposer() {
  attacher = createAttacher({ button: els.attachButton, input: els.attachInput, tray: els.tray, hint: els.hint });
  attacher.mount(renderSend);
  els.send.addEventListener("click", sendReply);
  els.input.addEventListener("keydown", (ev) => {
    if (cannedKeydown(ev, target())) return;
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing) {
      ev.preventDefault();
      sendReply();
    }
  });
  els.input.addEventListener("input", () => {
    updateCanned(els.input.value, target());
    saveDraft();
  });
  els.input.addEventListener("blur", () => setTimeout(() => closeCanned(target()), 150));
  els.cc.addEventListener("input", () => {
    saveDraft();
    // errors clear as soon as they are fixed, and show on leaving the field
    if (checkCc({ quiet: true }) !== null && els.error.dataset.cause === "cc") showError("");
  });
  els.cc.addEventListener("blur", () => checkCc());
  els.write.addEventListener("click", () => setPreview(false));
  els.preview.addEventListener("click", () => setPreview(true));
  els.noteSend.addEventListener("click", sendNote);
  els.note.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.isComposing) {
      ev.preventDefault();
      sendNote();
    }
  });
}

/** A conversation gone from this agent: its draft and what was unfolded go too. */
function forget(id) {
  drafts.delete(key(id));
  for (const k of [...opened.keys()]) if (k.startsWith(`${key(id)}:`)) opened.delete(k);
}

// ------------------------------------------------------------------ the pane

export const emailPane = {
  name: "email",

  mount(host) {
    if (root) return;
    els = build(host);
    wireComposer();
    subscribe("conversations", (_, change) => {
      if (change.type === "removed" && change.conv) forget(change.conv.id);
      if (change.type === "reset") {
        drafts.clear();
        opened.clear();
      }
    });
  },

  show(conv) {
    if (shown && key(shown.id) !== key(conv.id)) saveDraft();
    shown = conv;
    root.hidden = false;
    showError("");
    const d = draftOf(conv);
    els.input.value = d.text;
    els.cc.value = d.cc;
    els.ccError.hidden = true;
    setPreview(false);
    renderHead(conv);
    renderComposer(conv);
    renderThread(conv);
    els.input.focus();
  },

  update(conv, change) {
    switch (change.type) {
      case "message":
        if (change.added) {
          insertMessage(conv, change.message);
          renderHead(conv);
        } else if (change.settled) {
          renderThread(conv);
          renderHead(conv);
        } else if (change.statusChanged) {
          redrawMessage(conv, change.message);
        }
        break;
      case "status":
        redrawMessage(conv, change.message);
        break;
      case "outbox":
        els.thread.append(pendingNode(conv, change.entry));
        els.thread.scrollTop = els.thread.scrollHeight;
        break;
      case "reply_failed":
        replyFailed(conv, change.entry, change.error);
        renderComposer(conv);
        break;
      case "closed":
      case "upsert":
        renderHead(conv);
        renderComposer(conv);
        break;
      default:
        break;
    }
  },

  hide() {
    saveDraft();
    if (els.picker) closeCanned(target());
    if (clock) clearInterval(clock);
    clock = null;
    shown = null;
    attacher?.show(null);
    if (root) root.hidden = true;
  },
};
