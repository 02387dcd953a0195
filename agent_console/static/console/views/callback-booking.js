// "Call back…" in the Customer tab (issue 15): the agent books a callback for the customer on screen,
// now or at a slot within the opening hours, with a topic (POST /api/customers/{id}/callbacks; the same
// checks of number and slot as the widget's form, docs/subsystems/callback.md). The number is prefilled
// from the record (a verified phone first). Refusals are said in words under the form (textContent only).
// customer360.js places the section; everything else is here.

import { h } from "../core/dom.js";
import { dateTimeFmt, fmt } from "../core/format.js";
import { api, errorText } from "../core/http.js";
import { toast } from "./toasts.js";

/** The record's number to call: a verified phone first, else any phone on file, else "". */
export function prefillNumber(points) {
  const phones = (points || []).filter((p) => p && p.kind === "phone" && p.value);
  return (phones.find((p) => p.verified) || phones[0])?.value || "";
}

/** Words for a refused booking: the hub's own sentence (it names the reason: closed, premium, too many...). */
function refusal(r) {
  const text = errorText(r, "The callback was not booked");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

async function fillSlots(select, note) {
  const r = await api("/api/callbacks/slots");
  const slots = Array.isArray(r.data?.slots) ? r.data.slots : null;
  if (!r.ok || !slots) {
    note.textContent = r.status === 404 ? "Callbacks are not available on this hub (it has no phone)." : errorText(r, "Could not load the times");
    note.hidden = false;
    return false;
  }
  select.replaceChildren(
    h("option", { value: "now", text: "As soon as an agent is free" }),
    ...slots.slice(0, 200).map((iso) => h("option", { value: iso, text: fmt(iso, dateTimeFmt) })),
  );
  return true;
}

/** The section: a "Call back…" button that opens the booking form for ``record`` ({id, name, points}). */
export function callbackSection(record) {
  const open = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "callback-book-open", "aria-expanded": "false", text: "Call back…" });
  const number = h("input", { type: "tel", "data-testid": "callback-book-number", "aria-label": "Number to call back", maxlength: "40", autocomplete: "off", value: prefillNumber(record.points) });
  const when = h("select", { "data-testid": "callback-book-when", "aria-label": "When to call back" }, h("option", { value: "now", text: "As soon as an agent is free" }));
  const topic = h("input", { type: "text", "data-testid": "callback-book-topic", "aria-label": "Topic of the callback", placeholder: "Topic (optional)", maxlength: "300", autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "btn btn-primary btn-sm", "data-testid": "callback-book-submit", text: "Book the callback" });
  const cancel = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "callback-book-cancel", text: "Cancel" });
  const error = h("p", { class: "form-error small", "data-testid": "callback-book-error", role: "alert", hidden: true });
  const done = h("p", { class: "small", "data-testid": "callback-book-result", role: "status", hidden: true });
  const form = h(
    "form",
    { class: "contact-add callback-book", "data-testid": "callback-book", novalidate: true, hidden: true },
    h("div", { class: "contact-add-row" }, number),
    h("div", { class: "contact-add-row" }, when),
    h("div", { class: "contact-add-row" }, topic),
    h("div", { class: "contact-add-row" }, submit, cancel),
    error,
  );
  const show = (visible) => {
    form.hidden = !visible;
    open.setAttribute("aria-expanded", visible ? "true" : "false");
  };
  open.addEventListener("click", async () => {
    if (!form.hidden) return show(false);
    error.hidden = true;
    done.hidden = true;
    show(true);
    number.focus();
    if (!(await fillSlots(when, error))) submit.disabled = true;
  });
  cancel.addEventListener("click", () => show(false));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const raw = number.value.trim();
    if (!raw) {
      error.textContent = "Enter the number to call back.";
      error.hidden = false;
      return number.focus();
    }
    if (record.id === null || record.id === undefined) return;
    submit.disabled = true;
    const body = { number: raw, when: when.value || "now" };
    if (topic.value.trim()) body.topic = topic.value.trim();
    const r = await api(`/api/customers/${encodeURIComponent(record.id)}/callbacks`, { method: "POST", body });
    submit.disabled = false;
    const cb = r.data?.callback;
    if (!r.ok || !cb) {
      error.textContent = r.status === 403 ? "Only for the customer of a conversation assigned to you." : refusal(r);
      error.hidden = false;
      return;
    }
    const at = cb.requested_for ? `${r.data?.closed ? "when the queue opens, " : ""}at ${fmt(cb.requested_for, dateTimeFmt)}` : "as soon as an agent is free";
    done.textContent = `Callback booked ${at} on ${cb.number}${cb.topic ? `: ${cb.topic}` : ""}.`;
    done.hidden = false;
    topic.value = "";
    show(false);
    toast(`Callback booked ${at}`);
  });
  return h("section", { class: "c360-section", "data-testid": "callback-booking" }, h("h3", { text: "Callback" }), open, form, done);
}
