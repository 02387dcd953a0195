// The transfer dialog: to a queue, or to a named colleague, with a note. For a call it also has "Consult first"
// (a warm transfer: the caller is held while the colleague, or the queue's next free agent, is rung into the
// call; the call card then completes or cancels it: panes/call.js).
// Per queue it says what will happen: how many colleagues are available there now and the wait (GET
// /console/queues.json); to a queue nobody else serves now it asks first: the hub then keeps the conversation
// eligible for the sender (otherwise it is never offered back to them: contact_center/usecases/transfer_close.py).
// Owner of the `transfer` slice: {convId: the conversation the dialog is for, pendingId: a transfer in flight}.

import { $, h, key } from "../core/dom.js";
import { humanize } from "../core/format.js";
import { api, errorText } from "../core/http.js";
import * as socket from "../core/socket.js";
import { defineSlice, subscribe } from "../core/store.js";
import { activeConv, convName, getConv, removeConv } from "../model/conversations.js";
import { callAction, isCallConv } from "../model/calls.js";
import { toast } from "./toasts.js";

const transfer = defineSlice("transfer", { convId: null, pendingId: null }, "views/transfer.js");
let agentNames = new Map(); // agent id -> display name, from the directory
let queueInfo = new Map(); // queue name -> /console/queues.json's row

function waitWords(seconds) {
  if (seconds === null || seconds === undefined) return "no estimate";
  if (seconds < 60) return "under a minute";
  return `about ${Math.round(seconds / 60)} min`;
}

/** What the chosen queue means: who is there, the wait; and whether the transfer must be confirmed. */
function renderQueueInfo() {
  const q = $("transfer-queue").value;
  const info = q ? queueInfo.get(q) : null;
  const line = $("transfer-queue-info");
  const confirm = $("transfer-confirm");
  line.hidden = !info;
  confirm.hidden = true;
  $("transfer-confirm-check").checked = false;
  if (!info) return;
  const nobody = !info.others_serving;
  line.dataset.nobody = String(nobody);
  line.textContent = nobody
    ? `Nobody else is taking ${humanize(q)} contacts now. ${info.waiting} waiting.`
    : `${info.others_available} colleague${info.others_available === 1 ? "" : "s"} available now (${info.others_serving} serving) · ${info.waiting} waiting · wait ${waitWords(info.estimated_wait_seconds)}. It will not come back to you.`;
  confirm.hidden = !nobody;
}

function needsConfirm() {
  const q = $("transfer-queue").value;
  const info = q ? queueInfo.get(q) : null;
  return !!info && !info.others_serving && !$("transfer-confirm-check").checked;
}

function patch(p) {
  transfer.set({ ...transfer.get(), ...p });
}

function transferError(message) {
  const el = $("transfer-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function closeTransfer() {
  const dialog = $("transfer-dialog");
  patch({ convId: null });
  if (dialog.open) dialog.close();
}

let consultButton = null;

function updateTransferSubmit() {
  const none = !($("transfer-queue").value || $("transfer-agent").value) || transfer.get().pendingId !== null;
  $("transfer-submit").disabled = none || needsConfirm();
  if (consultButton) {
    const conv = getConv(transfer.get().convId);
    consultButton.hidden = !isCallConv(conv);
    consultButton.disabled = none;
  }
}

/** "Consult first": the caller is held while the colleague (or the queue's next free agent) is rung. */
async function consultFirst() {
  const conv = getConv(transfer.get().convId);
  if (!conv || conv.closed) return closeTransfer();
  const queue = $("transfer-queue").value;
  const agentId = $("transfer-agent").value;
  if (!queue && !agentId) return transferError("Choose a queue or a colleague.");
  if (!agentId && needsConfirm()) return transferError("Nobody else is available there: confirm that it may come back to you.");
  transferError("");
  patch({ pendingId: conv.id });
  updateTransferSubmit();
  consultButton.textContent = "Calling…";
  const r = await callAction(conv, "consult", agentId ? `agent:${agentId}` : `queue:${queue}`);
  patch({ pendingId: null });
  consultButton.textContent = "Consult first";
  updateTransferSubmit();
  if (!r.ok) return transferError(r.message);
  closeTransfer();
  toast(`Calling ${agentId ? agentNames.get(agentId) || "your colleague" : `the ${humanize(queue)} queue`}: the caller is on hold`);
}

async function openTransfer() {
  const conv = activeConv();
  if (!conv || conv.closed) return;
  const dialog = $("transfer-dialog");
  const queueSel = $("transfer-queue");
  const agentSel = $("transfer-agent");
  patch({ convId: conv.id });
  transferError("");
  $("transfer-sub").textContent = `${convName(conv)} · #${conv.id}. The customer keeps their place in line.`;
  $("transfer-note").value = "";
  queueSel.replaceChildren(h("option", { value: "", text: "Loading…" }));
  agentSel.replaceChildren(h("option", { value: "", text: "Loading…" }));
  queueSel.disabled = agentSel.disabled = true;
  updateTransferSubmit();
  if (!dialog.open) dialog.showModal();
  const [r, qv] = await Promise.all([api("/console/directory.json"), api("/console/queues.json")]);
  queueInfo = new Map((qv.ok && Array.isArray(qv.data?.queues) ? qv.data.queues : []).map((q) => [q.name, q]));
  if (key(transfer.get().convId) !== key(conv.id) || !dialog.open) return;
  if (!r.ok || !r.data) {
    queueSel.replaceChildren(h("option", { value: "", text: "—" }));
    agentSel.replaceChildren(h("option", { value: "", text: "—" }));
    transferError(errorText(r, "Could not load the queues and colleagues"));
    return;
  }
  const queues = Array.isArray(r.data.queues) ? r.data.queues.filter((q) => typeof q === "string") : [];
  queueSel.replaceChildren(
    h("option", { value: "", text: queues.length ? "Choose a queue…" : "No queues" }),
    ...queues.map((q) => {
      const info = queueInfo.get(q);
      const who = info ? ` — ${info.others_available ? `${info.others_available} available` : "nobody else available"}` : "";
      return h("option", { value: q, text: humanize(q) + (q === conv.queue ? " (current)" : "") + who });
    }),
  );
  const rank = { available: 0, busy: 1, wrap_up: 2, away: 2, offline: 3 };
  const agents = (Array.isArray(r.data.agents) ? r.data.agents : []).filter((a) => a && a.id != null);
  agents.sort((a, b) => (rank[a.status] ?? 2) - (rank[b.status] ?? 2) || String(a.display_name).localeCompare(String(b.display_name)));
  agentNames = new Map(agents.map((a) => [String(a.id), a.display_name || `Agent #${a.id}`]));
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
  renderQueueInfo();
  updateTransferSubmit();
  queueSel.focus();
}

function submitTransfer(ev) {
  ev.preventDefault();
  const conv = getConv(transfer.get().convId);
  if (!conv || conv.closed) return closeTransfer();
  const queue = $("transfer-queue").value;
  const agentId = $("transfer-agent").value;
  if (!queue && !agentId) return transferError("Choose a queue or a colleague.");
  if (!agentId && needsConfirm()) return transferError("Nobody else is available there: confirm that it may come back to you.");
  if (!socket.isConnected()) return transferError("Not connected: try again in a moment.");
  const note = $("transfer-note").value.trim();
  const payload = agentId ? { conversation_id: conv.id, agent_id: Number(agentId), note } : { conversation_id: conv.id, queue, ...(note ? { note } : {}) };
  const where = agentId ? agentNames.get(agentId) || "a colleague" : `the ${humanize(queue)} queue`;
  transferError("");
  patch({ pendingId: conv.id });
  updateTransferSubmit();
  $("transfer-submit").textContent = "Transferring…";
  socket.request("transfer", payload, 10000, (err, ack) => {
    patch({ pendingId: null });
    $("transfer-submit").textContent = "Transfer";
    updateTransferSubmit();
    if (err || !ack?.ok) {
      if (!$("transfer-dialog").open) {
        if (getConv(conv.id) === conv) toast(ack?.error?.message || "The transfer failed", "error");
        return;
      }
      transferError(err ? "No answer from the hub. Check the connection and try again." : ack?.error?.message || "The transfer failed.");
      return;
    }
    if (key(transfer.get().convId) === key(conv.id)) closeTransfer();
    toast(`Transferred ${convName(conv)} to ${where}`);
    if (getConv(conv.id) === conv) removeConv(conv);
  });
}

export function wire() {
  const dialog = $("transfer-dialog");
  consultButton = h("button", {
    type: "button", class: "btn btn-ghost", "data-testid": "transfer-consult", text: "Consult first", hidden: true,
    title: "Talk to your colleague first while the caller is on hold; then complete or cancel on the call card",
  });
  $("transfer-submit").before(consultButton);
  consultButton.addEventListener("click", consultFirst);
  $("transfer-open").addEventListener("click", openTransfer);
  $("transfer-form").addEventListener("submit", submitTransfer);
  $("transfer-cancel").addEventListener("click", closeTransfer);
  dialog.addEventListener("close", () => {
    patch({ convId: null });
    $("transfer-open").focus();
  });
  $("transfer-queue").addEventListener("change", () => {
    if ($("transfer-queue").value) $("transfer-agent").value = "";
    transferError("");
    renderQueueInfo();
    updateTransferSubmit();
  });
  $("transfer-agent").addEventListener("change", () => {
    if ($("transfer-agent").value) $("transfer-queue").value = "";
    transferError("");
    renderQueueInfo();
    updateTransferSubmit();
  });
  $("transfer-confirm-check").addEventListener("change", updateTransferSubmit);
  subscribe("conversations", (_, change) => {
    if (change.type !== "removed") return;
    const conv = change.conv;
    // our own transfer's ack removes it as well; this covers another tab or a supervisor's transfer
    if (change.reason === "transferred" && key(transfer.get().pendingId) !== key(conv.id)) toast(`${convName(conv)} was transferred`);
    if (key(transfer.get().convId) === key(conv.id)) closeTransfer();
  });
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") closeTransfer();
  });
}
