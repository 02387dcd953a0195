// The composer's attachments (SMS, WhatsApp, email): the paperclip button, the tray of chosen files, their uploads.
// Protocol (docs/subsystems/console.md): each file goes to POST /console/media (multipart, field "file") as
// soon as it is chosen; the reply then carries the answers' keys (`reply` {media: [keys]}, via the model's
// queueReply). GET /console/media says the size limit and the types, shown before a file is picked.
// On a channel that takes no files (web chat: the hub refuses them) the button is hidden.
// State: the files chosen per conversation (a draft per conversation, kept when the agent switches), drawn
// only here. A name a file came with is shown as text, never as HTML.
// Each composer has its own attacher (createAttacher({button, input, tray, hint})): the messaging pane's is
// bound to #attach-button, #attach-input, #attach-tray and #attach-hint (mountAttach, showAttach, ...), the
// email pane builds its own. The limits (GET /console/media) are shared.

import { $, h, key } from "../core/dom.js";
import { bytes } from "../core/format.js";
import { api } from "../core/http.js";
import { mediaUrl } from "../core/media.js";
import { subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";
import { channelInfo } from "../model/channels.js";

export const MAX_FILES = 5; // the hub takes at most five keys in a reply
const DEFAULT_LIMITS = { maxBytes: 5 * 1024 * 1024, types: ["application/pdf", "image/gif", "image/jpeg", "image/png", "image/webp"] };
const TYPE_WORDS = { "image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WebP", "application/pdf": "PDF" };
const EXTENSIONS = { jpg: "image/jpeg", jpeg: "image/jpeg", png: "image/png", gif: "image/gif", webp: "image/webp", pdf: "application/pdf" };

let limits = { ...DEFAULT_LIMITS, known: false };
let seq = 0;
const attachers = new Set(); // every composer's attacher (the messaging pane's, the email pane's)

// ------------------------------------------------------------------ limits

function typeWords(l) {
  const order = Object.keys(TYPE_WORDS);
  const rank = (t) => (order.includes(t) ? order.indexOf(t) : order.length);
  const types = [...l.types].sort((a, b) => rank(a) - rank(b));
  const images = types.filter((t) => t.startsWith("image/")).map((t) => TYPE_WORDS[t] || t.slice(6).toUpperCase());
  const others = types.filter((t) => !t.startsWith("image/")).map((t) => TYPE_WORDS[t] || t);
  return { images, others };
}

/** "Images (JPEG, PNG, GIF, WebP) or PDF, up to 5 MB each". */
export function limitText(l = limits) {
  const { images, others } = typeWords(l);
  const what = [images.length ? `Images (${images.join(", ")})` : null, ...others].filter(Boolean).join(" or ");
  return `${what}, up to ${bytes(l.maxBytes)} each`;
}

async function loadLimits() {
  const r = await api("/console/media");
  if (!r.ok || !r.data) return;
  const maxBytes = Number.isInteger(r.data.max_bytes) && r.data.max_bytes > 0 ? r.data.max_bytes : DEFAULT_LIMITS.maxBytes;
  const types = Array.isArray(r.data.types) && r.data.types.every((t) => typeof t === "string") && r.data.types.length ? r.data.types : DEFAULT_LIMITS.types;
  limits = { maxBytes, types, known: true };
  for (const a of attachers) a.limitsChanged();
}

function ensureLimits() {
  if (!limits.known && !limits.loading) {
    limits.loading = true;
    loadLimits().finally(() => (limits.loading = false));
  }
}

/** The type the console believes a file is (the hub checks the bytes anyway). */
function typeOf(file) {
  if (file.type) return file.type.toLowerCase();
  const ext = /\.([a-z0-9]+)$/i.exec(file.name || "")?.[1]?.toLowerCase();
  return EXTENSIONS[ext] || "";
}

/** Why this file cannot be sent, in words, or null. */
export function refusal(file, l = limits) {
  const name = file.name ? `“${file.name}”` : "This file";
  if (!l.types.includes(typeOf(file))) {
    const { images, others } = typeWords(l);
    const what = [images.length ? `${images.join(", ")} images` : null, others.length ? `${others.join(", ")} files` : null].filter(Boolean).join(" and ");
    return `${name} cannot be sent: only ${what} can.`;
  }
  if (file.size > l.maxBytes) return `${name} is ${bytes(file.size)}: the limit is ${bytes(l.maxBytes)}.`;
  if (file.size === 0) return `${name} is empty.`;
  return null;
}

// ------------------------------------------------------------------ one composer's attacher

function uploadError(status, body, item) {
  const said = typeof body?.message === "string" && body.message ? body.message : "";
  if (status === 413) return `“${item.name}” is too large: the limit is ${bytes(limits.maxBytes)}.`;
  if (status === 415) return `“${item.name}” was refused: ${said || "only images and PDF files can be sent"}.`;
  if (status === 401) return "Your session has ended: sign in again to attach files.";
  if (status >= 500) return `The hub could not keep the file (error ${status}). Try again.`;
  return `“${item.name}” was not uploaded: ${said || `error ${status}`}.`;
}

/**
 * The attachments of one composer. `els`: {button, input, tray, hint} (elements). Returns
 * {mount(changedFn), show(conv), state(conv), clear(conv)}: mount once (`changedFn` is told whenever what can
 * be sent changes: the Send button), show the open conversation (or null), read and clear its files.
 */
export function createAttacher(els) {
  let shown = null; // the conversation on screen
  let onChange = () => {};
  let wired = false;
  const drafts = new Map(); // conversation id -> [item]; item: {id, name, size, type, state, progress, error, file, preview, xhr, upload}

  function itemsOf(conv) {
    if (!conv) return [];
    const k = key(conv.id);
    if (!drafts.has(k)) drafts.set(k, []);
    return drafts.get(k);
  }

  /** What the composer needs: files ready to send, whether one is still uploading. */
  function state(conv) {
    const items = conv ? drafts.get(key(conv.id)) || [] : [];
    return {
      ready: items.filter((i) => i.state === "ready").map((i) => i.upload),
      uploading: items.some((i) => i.state === "uploading"),
      count: items.length,
    };
  }

  function drop(item) {
    if (item.xhr) item.xhr.abort();
    if (item.preview) URL.revokeObjectURL(item.preview);
    item.xhr = null;
    item.preview = null;
  }

  /** The reply went: the tray empties (refused files included: their reason was on screen). */
  function clear(conv) {
    const k = conv && key(conv.id);
    for (const item of drafts.get(k) || []) drop(item);
    drafts.delete(k);
    if (shown && key(shown.id) === k) render();
  }

  function changed(conv) {
    if (shown && conv && key(shown.id) === key(conv.id)) render();
  }

  function upload(conv, item) {
    const xhr = new XMLHttpRequest();
    item.xhr = xhr;
    const form = new FormData();
    form.append("file", item.file, item.name);
    xhr.open("POST", "/console/media");
    xhr.responseType = "json";
    xhr.setRequestHeader("Accept", "application/json");
    xhr.upload.addEventListener("progress", (ev) => {
      if (!ev.lengthComputable) return;
      item.progress = Math.min(99, Math.round((ev.loaded / ev.total) * 100));
      const bar = els.tray.querySelector(`[data-attach-id="${item.id}"] progress`);
      if (bar) bar.value = item.progress; // no redraw: the tray keeps its focus
    });
    xhr.addEventListener("load", () => {
      item.xhr = null;
      const body = xhr.response && typeof xhr.response === "object" ? xhr.response : {};
      if (xhr.status === 201 && typeof body.key === "string" && mediaUrl(body.url)) {
        item.state = "ready";
        item.progress = 100;
        item.upload = { key: body.key, url: body.url, content_type: body.content_type, name: body.name || item.name, size: body.size };
      } else {
        item.state = "error";
        item.error = uploadError(xhr.status, body, item);
      }
      changed(conv);
    });
    const failed = (words) => () => {
      if (item.state !== "uploading") return;
      item.xhr = null;
      item.state = "error";
      item.error = words;
      changed(conv);
    };
    xhr.addEventListener("error", failed("Cannot reach the hub: the file was not uploaded. Remove it and try again."));
    xhr.addEventListener("timeout", failed("The upload took too long. Remove it and try again."));
    xhr.timeout = 120000;
    xhr.send(form);
  }

  function addFiles(conv, files) {
    const items = itemsOf(conv);
    for (const file of files) {
      const item = { id: `f${++seq}`, name: file.name || "file", size: file.size, type: typeOf(file), state: "uploading", progress: 0, file };
      if (items.filter((i) => i.state !== "error").length >= MAX_FILES) {
        item.state = "error";
        item.error = `At most ${MAX_FILES} files go with one message: “${item.name}” was left out.`;
      } else {
        const why = refusal(file);
        if (why) {
          item.state = "error";
          item.error = why;
        }
      }
      if (item.state === "uploading" && item.type.startsWith("image/")) item.preview = URL.createObjectURL(file);
      items.push(item);
      if (item.state === "uploading") upload(conv, item);
    }
    render();
  }

  function itemNode(item) {
    const label =
      item.state === "uploading" ? `Uploading ${item.progress}%…` : item.state === "ready" ? "Ready to send" : item.error || "Not uploaded";
    const thumb =
      item.state !== "error" && item.type.startsWith("image/") && (item.preview || mediaUrl(item.upload?.url))
        ? h("img", { class: "attach-thumb", src: item.preview || mediaUrl(item.upload?.url), alt: "" })
        : h("span", { class: "attach-thumb attach-thumb-file", "aria-hidden": "true" }, channelIcon("file"));
    const remove = h("button", {
      type: "button",
      class: "attach-remove",
      "data-testid": "attach-remove",
      "aria-label": `Remove ${item.name}`,
      title: "Remove",
      text: "×",
    });
    remove.addEventListener("click", () => {
      const items = shown ? itemsOf(shown) : [];
      const at = items.indexOf(item);
      if (at >= 0) items.splice(at, 1);
      drop(item);
      render();
      els.button.focus();
    });
    return h(
      "li",
      { class: "attach-item", "data-testid": "attach-item", "data-state": item.state, "data-attach-id": item.id },
      thumb,
      h(
        "span",
        { class: "attach-body" },
        h("span", { class: "attach-line" }, h("span", { class: "attach-name", text: item.name, title: item.name }), h("span", { class: "attach-size", text: bytes(item.size) })),
        item.state === "uploading" ? h("progress", { max: "100", value: String(item.progress), "aria-label": `Uploading ${item.name}` }) : null,
        h("span", { class: "attach-status", "data-testid": "attach-status", role: item.state === "error" ? "alert" : null, text: label }),
      ),
      remove,
    );
  }

  function renderHint() {
    els.hint.textContent = limitText();
    els.button.title = `Attach a file. ${limitText()}`;
    if (limits.known) els.input.accept = limits.types.join(",");
  }

  function render() {
    const conv = shown;
    const info = conv ? channelInfo(conv.channel, conv.channelLabel) : null;
    const allowed = !!info?.media;
    const off = !conv || conv.closed || conv.optedOut;
    els.button.hidden = !allowed;
    els.button.disabled = off;
    els.hint.hidden = !allowed || off;
    const items = allowed && conv ? drafts.get(key(conv.id)) || [] : [];
    els.tray.hidden = !items.length;
    els.tray.replaceChildren(...items.map(itemNode));
    onChange();
  }

  function mount(changedFn) {
    onChange = changedFn || (() => {});
    renderHint();
    if (wired) return;
    wired = true;
    if (!attachers.size) {
      subscribe("session", (_s, change) => {
        if (change.type === "signed_out") limits = { ...limits, known: false };
      });
    }
    attachers.add(api_);
    els.button.addEventListener("click", () => {
      if (!shown) return;
      els.input.value = "";
      els.input.click();
    });
    els.input.addEventListener("change", () => {
      if (shown && els.input.files?.length) addFiles(shown, [...els.input.files]);
      els.input.value = "";
    });
    subscribe("conversations", (_, change) => {
      if (change.type === "removed" && change.conv) clear(change.conv);
      if (change.type === "reset") for (const k of [...drafts.keys()]) clear({ id: k });
    });
  }

  /** The open conversation changed (or its state: closed, opted out). */
  function show(conv) {
    shown = conv;
    ensureLimits();
    render();
  }

  const api_ = { mount, show, state, clear, limitsChanged: renderHint };
  return api_;
}

// ------------------------------------------------------------------ the messaging pane's attacher

let messaging = null;

function messagingAttacher() {
  if (!messaging) messaging = createAttacher({ button: $("attach-button"), input: $("attach-input"), tray: $("attach-tray"), hint: $("attach-hint") });
  return messaging;
}

/** Once, with the messaging pane: `changedFn` is told whenever what can be sent changes (the Send button). */
export function mountAttach(changedFn) {
  messagingAttacher().mount(changedFn);
}

/** What the messaging composer needs: files ready to send, whether one is still uploading. */
export function attachState(conv) {
  return messagingAttacher().state(conv);
}

/** The reply went: the tray empties. */
export function clearAttachments(conv) {
  messagingAttacher().clear(conv);
}

/** The open conversation changed (or its state: closed, opted out). */
export function showAttach(conv) {
  messagingAttacher().show(conv);
}
