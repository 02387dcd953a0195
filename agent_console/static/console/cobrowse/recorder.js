// The co-browsing recorder, run in the customer's page (docs/subsystems/cobrowse.md).
// The widget (static/widget.js) loads this script only after the customer accepted, then calls
// window.ccCobrowseRecorder.start({send}). Privacy is applied here, at the source: what is masked or
// blocked never leaves the customer's browser.
//   - every input's value is masked (maskAllInputs);
//   - card, password and one-time-code fields, `data-private` (on anything, children included), hidden
//     inputs and the chat widget itself are blocked: the agent sees an empty box of the same size;
//   - the text of editable regions (contenteditable) and of `data-mask` is masked, and every placeholder;
//   - sensitive query parameters (token, code, password, session...) are taken out of every URL: the page's
//     address (Meta events) and links, images and forms in the page;
//   - cross-origin iframes (a payment provider's form) are blocked and shown as a labelled blank;
//   - no scripts, comments or meta tags are recorded.
// Events are sent in batches (about every 40 ms) as JSON text, cut in pieces of at most PIECE characters so a
// large full snapshot fits the hub's packet limit (64 KiB).

import { record } from "rrweb";

const PIECE = 16000; // characters of JSON per relayed piece (escaped quotes may double it: still < 64 KiB)
const FLUSH_MS = 40;

// Frames of another origin (a payment provider's form) cannot be recorded, and their address may say too much:
// any iframe whose src is not a path of this site is blocked, also when it is added later.
const OWN = typeof location === "object" ? location.origin.replace(/["\\]/g, "") : "";

export const BLOCK_SELECTOR = [
  `iframe[src]:not([src^="/"]):not([src^="${OWN}/"])`,
  'iframe[src^="//"]',
  "[data-private]",
  "[data-cc-widget]",
  "input[type=password]",
  "input[type=hidden]",
  '[autocomplete*="cc-"]',
  '[autocomplete*="one-time-code"]',
  '[autocomplete*="current-password"]',
  '[autocomplete*="new-password"]',
  "iframe.cc-cobrowse-xorigin",
].join(",");

export const MASK_TEXT_SELECTOR = '[contenteditable]:not([contenteditable="false"]),[data-mask]';

const SENSITIVE_PARAM = /^(token|code|password|passwd|pwd|pass|secret|session|sessionid|sid|key|apikey|api_key|auth|authorization|access_token|refresh_token|id_token|otp|pin|cvv|cvc|card|iban|ssn|signature|sig|nonce|state)$|token|secret|password|session|auth/i;

/** A URL without its sensitive query parameters (and without a fragment that looks like a token). */
export function cleanUrl(raw) {
  if (typeof raw !== "string" || !/[?#]/.test(raw)) return raw;
  let url;
  try {
    url = new URL(raw, location.href);
  } catch {
    return raw;
  }
  if (!/^https?:$/.test(url.protocol)) return raw;
  let changed = false;
  for (const key of [...url.searchParams.keys()]) {
    if (SENSITIVE_PARAM.test(key)) {
      url.searchParams.delete(key);
      changed = true;
    }
  }
  if (url.hash && /token|code|secret|session|access|auth|password/i.test(url.hash)) {
    url.hash = "";
    changed = true;
  }
  return changed ? url.href : raw;
}

const URL_ATTRIBUTES = ["href", "src", "rr_src", "action", "formaction", "poster", "data-href"];

function maskText(text) {
  return typeof text === "string" ? text.replace(/[^\s]/g, "*") : text;
}

function cleanAttributes(attributes) {
  if (!attributes || typeof attributes !== "object") return;
  // a blocked element (rrweb keeps only its class and size): marked so the agent's view draws it as a box
  if (attributes.rr_width !== undefined) attributes.class = `${attributes.class || ""} cc-blocked`.trim();
  for (const name of URL_ATTRIBUTES) if (typeof attributes[name] === "string") attributes[name] = cleanUrl(attributes[name]);
  if (typeof attributes.srcset === "string") attributes.srcset = attributes.srcset.split(",").map((s) => cleanUrl(s.trim().split(/\s+/)[0]) + (s.trim().includes(" ") ? " " + s.trim().split(/\s+/).slice(1).join(" ") : "")).join(", ");
  if (typeof attributes.placeholder === "string") attributes.placeholder = maskText(attributes.placeholder);
  if (typeof attributes["aria-valuetext"] === "string") attributes["aria-valuetext"] = maskText(attributes["aria-valuetext"]);
}

function cleanNode(node) {
  if (!node || typeof node !== "object") return;
  if (node.type === 2) cleanAttributes(node.attributes); // an element
  if (Array.isArray(node.childNodes)) for (const child of node.childNodes) cleanNode(child);
}

/** Apply what rrweb's own options cannot: URLs and placeholders, in snapshots and in mutations. */
export function sanitize(event) {
  if (event.type === 4 && event.data) event.data.href = cleanUrl(event.data.href); // Meta
  else if (event.type === 2 && event.data) cleanNode(event.data.node); // FullSnapshot
  else if (event.type === 3 && event.data && event.data.source === 0) {
    // Mutation
    for (const add of event.data.adds || []) cleanNode(add.node);
    for (const attr of event.data.attributes || []) cleanAttributes(attr.attributes);
  }
  return event;
}

/** Cross-origin iframes cannot be recorded: mark them so they are blocked (a labelled blank for the agent). */
function markCrossOriginFrames(root) {
  for (const frame of root.querySelectorAll("iframe")) {
    let cross = true;
    try {
      cross = !frame.contentDocument; // null when another origin's
    } catch {
      cross = true;
    }
    if (cross) frame.classList.add("cc-cobrowse-xorigin");
  }
}

// Guided control (the customer's second consent): the agent's action names an element by its id in this recording
// (rrweb's mirror; the agent's view has the same ids). Refused here, whatever the hub let through: an element that
// is blocked (card, password, one-time-code fields, data-private, the chat widget, other sites' frames) or inside
// one, or whose text is masked (contenteditable, data-mask); fill only into an ordinary text field.
const FILLABLE_INPUT = /^(text|search|email|tel|url|number|)$/;

function refused(reason) {
  return { ok: false, reason };
}

/** Apply one control action ({action: "scroll", x, y} | {action: "click", target} | {action: "fill", target, value}). */
export function applyControl(action) {
  if (!action || typeof action !== "object") return refused("failed");
  if (action.action === "scroll") {
    const x = Number(action.x), y = Number(action.y);
    if (!Number.isFinite(x) || !Number.isFinite(y)) return refused("failed");
    window.scrollTo(x, y);
    return { ok: true };
  }
  const node = record.mirror.getNode(Number(action.target));
  if (!node || node.nodeType !== 1 || !node.isConnected || node.ownerDocument !== document) return refused("not_found");
  if (node.closest(BLOCK_SELECTOR)) return refused("blocked");
  if (node.closest(MASK_TEXT_SELECTOR)) return refused("masked");
  // a label acts on its field: a label of a blocked field is as private as the field
  const label = node.closest("label");
  if (label && label.control && (label.control.closest(BLOCK_SELECTOR) || label.control.closest(MASK_TEXT_SELECTOR))) return refused("blocked");
  if (action.action === "click") {
    if (node.matches('input[type=file],input[type=password],input[type=hidden]')) return refused("blocked");
    if (typeof node.click === "function") node.click();
    else node.dispatchEvent(new MouseEvent("click", { bubbles: true, cancelable: true, view: window }));
    return { ok: true };
  }
  if (action.action === "fill") {
    const tag = node.tagName;
    const input = tag === "INPUT" && FILLABLE_INPUT.test((node.getAttribute("type") || "").toLowerCase());
    if (!(input || tag === "TEXTAREA") || node.disabled || node.readOnly) return refused("not_fillable");
    if (typeof action.value !== "string" || action.value.length > 500) return refused("failed");
    node.focus();
    const proto = tag === "INPUT" ? HTMLInputElement.prototype : HTMLTextAreaElement.prototype;
    const setter = Object.getOwnPropertyDescriptor(proto, "value")?.set;
    if (setter) setter.call(node, action.value);
    else node.value = action.value;
    node.dispatchEvent(new Event("input", { bubbles: true }));
    node.dispatchEvent(new Event("change", { bubbles: true }));
    return { ok: true };
  }
  return refused("failed");
}

/**
 * Start recording. `send(payload)` relays one piece ({seq, part, parts, data}); it returns false when it could
 * not (not connected): the recorder then asks for a full snapshot when it can send again.
 */
export function start({ send }) {
  let queue = [];
  let timer = null;
  let seq = 0;
  let stopped = false;
  let lost = false;

  function flush() {
    timer = null;
    if (stopped || !queue.length) return;
    const batch = queue;
    queue = [];
    const data = JSON.stringify({ t: Date.now(), e: batch }); // t: when sent, on the customer's clock
    const parts = Math.max(1, Math.ceil(data.length / PIECE));
    const n = seq++;
    for (let part = 0; part < parts; part++) {
      if (send({ seq: n, part, parts, data: data.slice(part * PIECE, (part + 1) * PIECE) }) === false) {
        lost = true; // the agent missed events: a full snapshot when we can send again
        return;
      }
    }
  }

  markCrossOriginFrames(document);
  const stopRecording = record({
    emit(event) {
      if (stopped) return;
      if (lost) {
        lost = false;
        queue = [];
        setTimeout(() => !stopped && record.takeFullSnapshot(true), 0);
        return;
      }
      queue.push(sanitize(event));
      if (event.type === 2) flush(); // a full snapshot goes at once
      else if (timer === null) timer = setTimeout(flush, FLUSH_MS);
    },
    maskAllInputs: true,
    maskInputOptions: { password: true },
    blockSelector: BLOCK_SELECTOR,
    maskTextSelector: MASK_TEXT_SELECTOR,
    slimDOMOptions: "all",
    inlineStylesheet: true,
    recordCanvas: false,
    collectFonts: false,
    inlineImages: false,
    recordCrossOriginIframes: false,
    checkoutEveryNms: 2 * 60 * 1000, // a new full snapshot every 2 min (the agent's view rebuilds there)
    checkoutEveryNth: 5000,
    sampling: { mousemove: 50, scroll: 100, input: "last" },
  });

  return {
    /** A new full snapshot (a late-joining agent, or after a reconnect). */
    checkout() {
      if (!stopped) {
        markCrossOriginFrames(document);
        record.takeFullSnapshot(true);
      }
    },
    /** Guided control: apply the agent's action, or say why not. */
    control(action) {
      return stopped ? refused("failed") : applyControl(action);
    },
    stop() {
      stopped = true;
      queue = [];
      if (timer !== null) clearTimeout(timer);
      if (stopRecording) stopRecording();
    },
  };
}

window.ccCobrowseRecorder = { start, sanitize, cleanUrl, applyControl };
