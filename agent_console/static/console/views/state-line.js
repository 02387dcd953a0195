// State that explains itself: the line under the top bar says the agent's state and why ("Available · 1 of 3
// chats", "At capacity on Chat 3/3", "Wrap-up 0:08", "Away: missed 2 offers in a row") and how many customers
// wait in the queues the agent serves; the centre's empty state says what to do in that state. The hub's view
// comes from GET /console/queues.json (contact_center/console_search.py), read every 5 s while signed in and
// soon after anything that changes it (an offer, a conversation, the status).
// Owner of the `queueView` slice: the last /console/queues.json answer (the transfer dialog reads it too).

import { $, h } from "../core/dom.js";
import { api } from "../core/http.js";
import { humanize } from "../core/format.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { allConvs } from "../model/conversations.js";
import { clock, describeState } from "./state-text.js";

const queueView = defineSlice("queueView", null, "views/state-line.js");
let timer = null;
let soon = null;

export async function refreshQueues() {
  if (!read("session").signedIn) return null;
  try {
    const r = await api("/console/queues.json");
    if (r.ok && r.data && Array.isArray(r.data.queues)) queueView.set(r.data, { type: "loaded" });
    return r.data;
  } catch {
    return null; // offline or signed out: the connection indicator says so
  }
}

function refreshSoon() {
  clearTimeout(soon);
  soon = setTimeout(refreshQueues, 400);
}

function render() {
  const p = read("presence");
  const view = queueView.get();
  const d = describeState(p, view);
  const line = $("state-line");
  line.dataset.state = d.state;
  const text = $("state-text");
  if (text.textContent !== d.text) text.textContent = d.text; // the live region speaks only real changes
  $("state-detail").textContent = d.detail;
  const mine = (view?.queues || []).filter((q) => q.mine);
  const counts = $("queue-counts");
  counts.replaceChildren(
    ...(mine.length ? [h("span", { class: "muted", text: "Waiting:" })] : []),
    ...mine.map((q) =>
      h("span", { class: `qcount${q.waiting ? " has" : ""}`, "data-testid": "queue-count", "data-queue": q.name, title: q.waiting ? `Longest wait ${clock(q.longest_wait_seconds)}` : "" },
        `${humanize(q.name)} `, h("strong", { text: String(q.waiting) })),
    ),
  );
  renderEmpty(d, mine);
}

function renderEmpty(d, mine) {
  const open = allConvs().filter((c) => !c.closed).length;
  const waiting = mine.reduce((n, q) => n + (Number(q.waiting) || 0), 0);
  const title = $("chat-empty-title");
  const body = $("chat-empty-text");
  const button = $("empty-available");
  $("chat-empty").dataset.state = d.state;
  button.hidden = !(d.state === "offline" || d.state === "away");
  if (open) {
    title.textContent = "No conversation open";
    body.textContent = `Pick one of your ${open} conversation${open === 1 ? "" : "s"} from the list (Alt+↓ goes to the next).`;
  } else if (d.state === "offline" || d.state === "away") {
    title.textContent = d.text;
    body.textContent = waiting ? `${waiting} customer${waiting === 1 ? " is" : "s are"} waiting in your queues. Set yourself Available to take them.` : "Set yourself Available to receive chats.";
  } else if (d.state === "wrap_up") {
    title.textContent = d.text;
    body.textContent = "A moment to finish your notes: new offers ring when it is over.";
  } else {
    title.textContent = "Ready for the next customer";
    body.textContent = waiting ? `${waiting} waiting in your queues: the next offer rings under Incoming.` : "Nobody is waiting. New offers ring under Incoming, with a sound.";
  }
}

export function wire() {
  subscribe("presence", () => {
    render();
    refreshSoon();
  });
  subscribe("queueView", render);
  subscribe("offers", refreshSoon);
  subscribe("conversations", (_, change) => {
    if (["upsert", "closed", "removed", "reset"].includes(change.type)) render();
    if (["closed", "removed"].includes(change.type)) refreshSoon();
  });
  subscribe("session", (s, change) => {
    clearInterval(timer);
    timer = null;
    if (s.signedIn) {
      timer = setInterval(refreshQueues, 5000);
      refreshQueues();
    } else if (change.type === "signed_out") queueView.set(null, { type: "reset" });
  });
  $("empty-available").addEventListener("click", () => {
    const select = $("status-select");
    select.value = "available";
    select.dispatchEvent(new Event("change"));
  });
  setInterval(() => read("presence")?.status === "wrap_up" && render(), 1000); // the wrap-up countdown
  render();
}
