// The supervisor page's "Callback settings" section (issue 15; docs/subsystems/callback.md, "Queue settings"):
// a queue's callback mode (agent first / customer first), the voicemail said after the beep, and its own opening
// hours ("" = the hub's CALLBACK_* hours, "always", or "0-4 09:00-17:00 +60"). GET/PUT
// /api/queues/{name}/callback-settings (admins and supervisors); the server's reason is shown beside each field.
// The queues come from the dashboard's snapshot (supervisor.js dispatches "supervisor:snapshot").
// Everything shown is set as text, never as HTML.

import { api } from "./console/core/http.js";
import { $, h } from "./supervisor-dom.js";

const state = { queues: [], current: null };
const when = (iso) => {
  const d = new Date(iso);
  return isNaN(d.getTime()) ? iso : d.toLocaleString([], { weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
};

function field(name, label, control, hint) {
  return h(
    "div",
    { class: "ev-field", "data-field": name },
    h("label", { text: label, for: control.id }),
    control,
    hint ? h("span", { class: "muted small", text: hint }) : null,
    h("span", { class: "form-error small cbs-error", role: "alert", "data-testid": `cbs-error-${name}` }),
  );
}

function build(root) {
  const queue = h("select", { id: "cbs-queue", "data-testid": "cbs-queue", "aria-label": "Queue", onchange: () => load(queue.value) });
  const mode = h(
    "select",
    { id: "cbs-mode", "data-testid": "cbs-mode" },
    h("option", { value: "agent_first", text: "Agent first: the agent accepts, then the customer is dialled" }),
    h("option", { value: "customer_first", text: "Customer first: the customer is dialled, then offered to an agent" }),
  );
  const voicemail = h("textarea", { id: "cbs-voicemail", "data-testid": "cbs-voicemail", rows: "2", maxlength: "500" });
  const hours = h("input", { id: "cbs-hours", "data-testid": "cbs-hours", placeholder: "the hub's hours", autocomplete: "off" });
  const status = h("p", { class: "muted small", "data-testid": "cbs-status" });
  const general = h("p", { class: "form-error small", role: "alert", "data-testid": "cbs-general" });
  const done = h("p", { class: "muted small", role: "status", "data-testid": "cbs-done" });
  const form = h(
    "form",
    { class: "ev-form", "data-testid": "cbs-form", onsubmit: (ev) => { ev.preventDefault(); save(); } },
    h("div", { class: "ev-grid" },
      field("queue", "Queue", queue, null),
      field("callback_mode", "Mode", mode, null),
      field("callback_voicemail", "Voicemail", voicemail, "said after the beep on an answering machine; empty: none"),
      field("callback_hours", "Opening hours", hours, "empty: the hub's hours; always; or days hours [UTC offset minutes], e.g. 0-4 09:00-17:00 +60"),
    ),
    h("div", { class: "ev-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-sm", "data-testid": "cbs-save", text: "Save callback settings" })),
    status, general, done,
  );
  root.append(h(
    "section",
    { class: "panel span-2 ev-panel", id: "callback-settings", "data-testid": "callback-settings", "aria-labelledby": "callback-settings-title" },
    h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: "callback-settings-title", text: "Callback settings" })),
    form,
  ));
  Object.assign(state, { form, queue, mode, voicemail, hours, status, general, done });
}

function show(settings) {
  state.current = settings;
  state.mode.value = settings.callback_mode;
  state.voicemail.value = settings.callback_voicemail;
  state.hours.value = settings.callback_hours;
  const hrs = settings.hours || {};
  const whose = hrs.source === "queue" ? "the queue's own hours" : "the hub's hours";
  state.status.textContent = hrs.always_open
    ? `Always open (${whose}).`
    : `${hrs.open_now ? "Open now" : `Closed now: a "now" callback is booked at ${when(hrs.next_opening)}`} (${whose}: ${hrs.effective}).`;
}

function clearErrors() {
  for (const el of state.form.querySelectorAll(".cbs-error")) el.textContent = "";
  state.general.textContent = "";
  state.done.textContent = "";
}

/** The fields can't be edited while a queue's settings load: a late answer would overwrite what was typed. */
function setBusy(busy) {
  for (const el of [state.mode, state.voicemail, state.hours, state.form.querySelector('[data-testid="cbs-save"]')]) {
    if (el) el.disabled = busy;
  }
  state.form.setAttribute("aria-busy", busy ? "true" : "false");
}

async function load(name) {
  if (!name) return;
  const seq = (state.loadSeq = (state.loadSeq || 0) + 1); // only the latest choice of queue is shown
  clearErrors();
  setBusy(true);
  const r = await api(`/api/queues/${encodeURIComponent(name)}/callback-settings`);
  if (seq !== state.loadSeq) return; // another queue was chosen meanwhile: its answer is the one to show
  setBusy(false);
  if (!r.ok || !r.data) {
    state.general.textContent = r.status === 403 ? "Admins and supervisors only." : (r.data && r.data.message) || `Could not read the settings (error ${r.status}).`;
    return;
  }
  show(r.data);
}

async function save() {
  const name = state.queue.value;
  if (!name) return;
  clearErrors();
  const body = { callback_mode: state.mode.value, callback_voicemail: state.voicemail.value, callback_hours: state.hours.value };
  const r = await api(`/api/queues/${encodeURIComponent(name)}/callback-settings`, { method: "PUT", body });
  if (!r.ok || !r.data) {
    const fields = r.data && Array.isArray(r.data.fields) ? r.data.fields : [];
    for (const f of fields) {
      const box = state.form.querySelector(`[data-field="${CSS.escape(String(f.field))}"] .cbs-error`);
      if (box) box.textContent = String(f.reason || "");
      else state.general.textContent = `${f.field}: ${f.reason}`;
    }
    if (!fields.length) state.general.textContent = r.status === 403 ? "Admins and supervisors only." : (r.data && r.data.message) || `Not saved (error ${r.status}).`;
    return;
  }
  show(r.data);
  state.done.textContent = `Saved for ${name}: the next callback uses them.`;
}

document.addEventListener("supervisor:snapshot", (ev) => {
  const names = ((ev.detail && ev.detail.queue_names) || []).map(String);
  if (!state.queue || JSON.stringify(names) === JSON.stringify(state.queues)) return;
  const keep = state.queue.value;
  state.queues = names;
  state.queue.replaceChildren(...names.map((n) => h("option", { value: n, text: n })));
  if (names.includes(keep)) state.queue.value = keep;
  if (!state.current || state.queue.value !== keep) load(state.queue.value);
});

function init() {
  const root = $("callback-settings-root");
  if (root) build(root);
}

init();
