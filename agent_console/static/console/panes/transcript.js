// How one message looks in a transcript: sender, text (as text), attachments, the bot's handover draft,
// and for outbound messages the delivery ticks. Shared by every pane that shows messages.

import { linkify } from "../core/linkify.js";
import { h } from "../core/dom.js";
import { channelIcon } from "../channels/icons.js";
import { bytes, fmt } from "../core/format.js";
import { mediaUrl } from "../core/media.js";
import { convName, isNote, senderOf } from "../model/conversations.js";
import { isFailure, statusView } from "../channels/delivery.js";

function attachmentNode(a) {
  if (!a || typeof a !== "object") return null;
  const name = typeof a.name === "string" && a.name ? a.name : "attachment";
  const size = bytes(a.size);
  const url = mediaUrl(a.url);
  const type = typeof a.content_type === "string" ? a.content_type.toLowerCase() : "";
  if (!url) {
    return h("div", { class: "attachment blocked", "data-testid": "attachment", "data-kind": "blocked", text: `${name}${size ? ` (${size})` : ""}: not shown, not a file of this hub` });
  }
  if (/^image\/(png|jpe?g|gif|webp|avif|bmp)$/.test(type)) {
    return h(
      "a",
      { class: "attachment image", "data-testid": "attachment", "data-kind": "image", href: url, target: "_blank", rel: "noopener noreferrer", title: `${name}${size ? ` · ${size}` : ""}` },
      h("img", { src: url, alt: name, loading: "lazy", referrerpolicy: "same-origin" }),
    );
  }
  return h(
    "a",
    { class: "attachment file", "data-testid": "attachment", "data-kind": "file", href: url, download: name, rel: "noopener noreferrer" },
    channelIcon("file"),
    h("span", { class: "attachment-name", text: name }),
    size ? h("span", { class: "attachment-size", text: size }) : null,
  );
}

/** The ticks of an outbound message (null when the hub sent no status). */
export function ticksNode(m) {
  const view = statusView(m.delivery_status, m.delivery_error);
  if (!view) return null;
  const failed = isFailure(m.delivery_status);
  return h(
    "span",
    { class: `ticks${failed ? " failed" : ""}`, "data-testid": "delivery-status", "data-status": m.delivery_status, title: view.label },
    h("span", { class: "tick-glyph", "aria-hidden": "true", text: view.glyph }),
    h("span", { class: failed ? "tick-label" : "sr-only", text: failed ? view.label : view.label.toLowerCase() }),
  );
}

export function messageNode(conv, m, { pending = false } = {}) {
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
  const attachments = Array.isArray(m.attachments) ? m.attachments.map(attachmentNode).filter(Boolean) : [];
  if (m.text || !attachments.length) node.append(h("div", { class: "bubble" }, linkify(m.text || "")));
  if (attachments.length) node.append(h("div", { class: "attachments" }, attachments));
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
    const ticks = !pending && !note && sender !== "customer" ? ticksNode(m) : null;
    node.append(h("div", { class: "msg-meta" }, meta, ticks));
    if (ticks) node.dataset.delivery = m.delivery_status;
  }
  return node;
}

/** Redraw the ticks of a message already on screen (a `message_status`). */
export function updateTicks(box, conv, m) {
  const node = box.querySelector(`[data-testid="message"][data-seq="${CSS.escape(String(m.seq))}"]`);
  if (!node) return;
  const meta = node.querySelector(".msg-meta");
  if (!meta || node.dataset.internal === "true" || node.dataset.sender === "customer") return;
  meta.querySelector(".ticks")?.remove();
  const ticks = ticksNode(m);
  if (ticks) {
    meta.append(ticks);
    node.dataset.delivery = m.delivery_status;
  }
}
