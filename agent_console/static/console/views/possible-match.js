// Possible matches in the customer's 360 (issue 20): another customer record that may be this customer,
// because the customer gave an address that is on file for it (the widget's email, a phone or email told to
// the bot, with an order or to an agent) or both have the same number on different channels.
// GET /console/customers/{id}/possible-matches -> {matches: [{id, display_name, orders, via}], can_merge}.
// "Possible match: Camila Pérez (#972), 2 orders". Supervisors (can_merge) get Merge…, which asks them to check
// with the customer first, then moves that record into this one through the audited merge
// (POST /api/customers/{match}/merge {into: this customer}: the live conversation stays where it is). Agents
// are told to ask a supervisor. Everything from the hub goes in as text.

import { h, key } from "../core/dom.js";
import { api, errorText } from "../core/http.js";
import { toast } from "./toasts.js";

const KIND = { email: "email", phone: "phone number", sms: "SMS number", whatsapp: "WhatsApp number" };

function viaText(via) {
  const parts = (via || []).map((v) => `${KIND[v.kind] || v.kind} ${v.value}`);
  return parts.length ? `The customer gave the ${parts.join(" and the ")}, which is on file for that record.` : "";
}

function matchItem(customerId, m, canMerge, onMerged) {
  const who = `${m.display_name} (#${m.id})`;
  const orders = `${m.orders} order${m.orders === 1 ? "" : "s"}`;
  const item = h(
    "div",
    { class: "pm-item", "data-testid": "possible-match-item", "data-customer-id": String(m.id) },
    h("div", { "data-testid": "possible-match-text" }, h("strong", { text: "Possible match: " }), `${who}, ${orders}`),
    h("div", { class: "small", text: viaText(m.via) }),
  );
  if (!canMerge) {
    item.append(h("div", { class: "small", "data-testid": "possible-match-ask", text: "Check with the customer, then ask a supervisor to merge the two records." }));
    return item;
  }
  const open = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "possible-match-merge", "aria-expanded": "false", text: "Merge…" });
  const reason = h("input", { type: "text", maxlength: "500", "data-testid": "possible-match-reason", "aria-label": "Why (recorded with the merge)", placeholder: "How the customer confirmed it", autocomplete: "off" });
  const confirm = h("button", { type: "submit", class: "btn btn-primary btn-sm", "data-testid": "possible-match-confirm", text: "Merge the records" });
  const cancel = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "possible-match-cancel", text: "Cancel" });
  const error = h("p", { class: "form-error small", role: "alert", "data-testid": "possible-match-error", hidden: true });
  const form = h(
    "form",
    { class: "pm-confirm", "data-testid": "possible-match-form", hidden: true, novalidate: true },
    h("p", { class: "small", text: `First check with the customer that they are ${m.display_name} (an order number, the delivery address). Merging moves ${who}'s orders, contact points and history to this customer, for good, and is recorded.` }),
    reason,
    h("div", { class: "contact-add-row" }, confirm, cancel),
    error,
  );
  const close = () => {
    form.hidden = true;
    open.setAttribute("aria-expanded", "false");
    open.focus();
  };
  open.addEventListener("click", () => {
    form.hidden = false;
    open.setAttribute("aria-expanded", "true");
    reason.focus();
  });
  cancel.addEventListener("click", close);
  form.addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      close();
    }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    confirm.disabled = true;
    const text = reason.value.trim() || "confirmed with the customer in the console";
    const r = await api(`/api/customers/${encodeURIComponent(m.id)}/merge`, { method: "POST", body: { into: Number(customerId), reason: text } });
    confirm.disabled = false;
    if (!r.ok) {
      error.textContent = r.status === 403 ? "Only a supervisor can merge customer records." : errorText(r, "Not merged");
      error.hidden = false;
      return;
    }
    toast(`Merged: ${who}'s ${orders} and history are now on this customer`);
    onMerged();
  });
  item.append(h("div", { class: "contact-add-row" }, open), form);
  return item;
}

/**
 * The 360's "Possible match" section for a customer: empty and hidden until the hub names a match.
 * onMerged(): after a merge, to redraw the 360. isCurrent(): whether this customer is still on screen.
 */
export function possibleMatchSection(customerId, { onMerged = () => {}, isCurrent = () => true } = {}) {
  const section = h("section", { class: "c360-section", "data-testid": "possible-match", hidden: true, "aria-label": "Possible match" });
  if (customerId === null || customerId === undefined) return section;
  (async () => {
    const r = await api(`/console/customers/${encodeURIComponent(customerId)}/possible-matches`);
    if (!r.ok || !r.data || !isCurrent() || key(r.data.customer_id) !== key(customerId)) return;
    const matches = Array.isArray(r.data.matches) ? r.data.matches : [];
    if (!matches.length) return;
    section.replaceChildren(
      h("h3", { text: matches.length > 1 ? "Possible matches" : "Possible match" }),
      h("div", { class: "email-omitted pm-list" }, matches.map((m) => matchItem(customerId, m, !!r.data.can_merge, onMerged))),
    );
    section.hidden = false;
  })();
  return section;
}
