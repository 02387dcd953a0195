// The customer panel's "Value and next best offer" section (issue 18): who this customer is worth (RFM
// segment, the three scores, attrition risk with its reason), what they are likely to want and what to say
// (up to three offers: the shop's rules first, then co-purchase associations), and alerts on their open
// orders. GET /api/customers/{id}/value; the agent marks an offer offered, accepted or declined
// (POST /api/customers/{id}/offers). "Add to order" on an offer with a product opens the New order form
// (views/new-order.js) and picks that product in an empty line, through the form's own controls.
// Self-contained: views/customer360.js only calls valueSection() and fills it after drawing the 360.

import { h } from "../core/dom.js";
import { humanize } from "../core/format.js";
import { api, errorText } from "../core/http.js";
import { toast } from "./toasts.js";

let req = 0;

/** "at_risk" -> "At risk". */
const label = (s) => {
  const t = humanize(s);
  return t.charAt(0).toUpperCase() + t.slice(1);
};

const ATTRITION_TEXT = { low: "Low attrition risk", medium: "Medium attrition risk", high: "High attrition risk" };

/** The empty section customer360.js places in the panel; loadValue() fills it. */
export function valueSection() {
  return h(
    "section",
    { class: "c360-section", "data-testid": "customer-value", "aria-live": "polite" },
    h("h3", { text: "Value and next best offer" }),
    h("p", { class: "muted small", text: "Loading…" }),
  );
}

/** Fetch the customer's value and offers and draw them into `section` (ignores answers that came too late). */
export async function loadValue(section, customerId, { channel } = {}) {
  if (!section || customerId === null || customerId === undefined) return;
  const mine = ++req;
  const q = channel ? `?channel=${encodeURIComponent(channel)}` : "";
  const r = await api(`/api/customers/${encodeURIComponent(customerId)}/value${q}`);
  if (mine !== req || !section.isConnected) return;
  const title = h("h3", { text: "Value and next best offer" });
  if (!r.ok || !r.data) {
    section.replaceChildren(title, h("p", { class: "muted small", text: r.status === 403 ? "Not shown: not your customer." : "Could not load the customer's value." }));
    return;
  }
  section.replaceChildren(title, ...render(r.data, customerId));
}

function render(data, customerId) {
  const v = data.value || {};
  const nodes = [];
  const scores = v.scores;
  nodes.push(
    h(
      "div",
      { class: "cv-head" },
      h("span", { class: `chip cv-segment cv-${v.segment || "new"}`, "data-testid": "value-segment", text: label(v.segment || "new") }),
      scores
        ? h("span", { class: "small cv-scores", "data-testid": "value-scores", title: "Recency, frequency, monetary: quintiles 1-5 among the shop's active customers", text: ` R ${scores.r} · F ${scores.f} · M ${scores.m}` })
        : null,
    ),
  );
  if (v.explanation) nodes.push(h("p", { class: "small", "data-testid": "value-explanation", text: v.explanation }));
  nodes.push(
    h(
      "p",
      { class: "small", "data-testid": "value-attrition" },
      h("strong", { text: `${ATTRITION_TEXT[v.attrition] || "Attrition risk unknown"}: ` }),
      v.attrition_reason || "",
    ),
  );
  for (const a of data.alerts || []) {
    nodes.push(h("p", { class: "form-error small", role: "note", "data-testid": "value-alert", text: a.text }));
  }
  const offers = data.offers || [];
  if (!offers.length) {
    nodes.push(h("p", { class: "muted small", "data-testid": "nbo-none", text: "No offer for this customer now." }));
    return nodes;
  }
  nodes.push(h("ol", { class: "cv-offers" }, offers.map((o) => offerItem(o, customerId))));
  return nodes;
}

function offerItem(o, customerId) {
  const status = h("span", { class: "small muted", "data-testid": "nbo-status" });
  const buttons = ["offered", "accepted", "declined"].map((outcome) =>
    h("button", {
      type: "button",
      class: "btn btn-ghost btn-sm",
      "data-testid": `nbo-${outcome}`,
      text: label(outcome),
      onclick: () => mark(o, customerId, outcome, { status, buttons, addBtn }),
    }),
  );
  const addBtn = o.sku
    ? h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "nbo-add-to-order", hidden: true, text: "Add to order", onclick: () => addToOrder(o.sku) })
    : null;
  return h(
    "li",
    { class: "cv-offer", "data-testid": "nbo", "data-source": o.source, "data-sku": o.sku || "" },
    h("div", { class: "cv-offer-title" }, h("strong", { "data-testid": "nbo-title", text: o.title }), h("span", { class: "chip", text: o.source === "rule" ? "rule" : "association" })),
    h("div", { class: "small muted", "data-testid": "nbo-why", text: o.why }),
    o.script ? h("blockquote", { class: "small cv-script", "data-testid": "nbo-script", text: `“${o.script}”` }) : null,
    h("div", { class: "cv-offer-actions" }, buttons, addBtn, status),
  );
}

async function mark(o, customerId, outcome, { status, buttons, addBtn }) {
  for (const b of buttons) b.disabled = true;
  const r = await api(`/api/customers/${encodeURIComponent(customerId)}/offers`, {
    method: "POST",
    body: { outcome, source: o.source, sku: o.sku || null, title: o.title, rule_id: o.rule_id ?? null },
  });
  for (const b of buttons) b.disabled = false;
  if (!r.ok) return toast(errorText(r, "Could not record the offer"), "error");
  status.textContent = label(outcome);
  if (outcome === "accepted" && addBtn) addBtn.hidden = false;
  if (outcome !== "offered") for (const b of buttons) b.disabled = true;
}

/** Open the New order form and choose `sku` in its first empty line (adding a line if none is empty). */
async function addToOrder(sku) {
  // the form lives in #new-order (it replaces the 360 while open); its button is in the 360's head
  const panel = document.getElementById("new-order");
  if (!panel) return;
  if (!panel.querySelector('[data-testid="new-order-line"]')) document.getElementById("customer-360")?.querySelector('[data-testid="new-order-open"]')?.click();
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const selects = [...panel.querySelectorAll('[data-testid="new-order-product"]')];
    const ready = selects.length && selects.every((s) => [...s.options].some((opt) => opt.value === sku));
    if (ready) {
      let target = selects.find((s) => !s.value);
      if (!target) {
        panel.querySelector('[data-testid="new-order-add-line"]')?.click();
        continue;
      }
      target.value = sku;
      target.dispatchEvent(new Event("change", { bubbles: true }));
      target.focus();
      return toast("Added to the order draft");
    }
    if (selects.length && selects.some((s) => [...s.options].length > 1) && !selects.some((s) => [...s.options].some((opt) => opt.value === sku))) {
      return toast("That product is not available to order", "error");
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  toast("Could not open the order form", "error");
}
