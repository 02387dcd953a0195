// The Customer tab's 360: who the open conversation's customer is, their contact points, orders and
// timeline (GET /api/customers/{id}). A phone or email the customer gave (to the bot, with an order, or
// to the agent here: POST /console/customers/{id}/contact-points) is marked "unverified": it was told,
// not proven, though a later text, call or email from it reaches this customer. Owner of the `customer` slice: {id, customer: {id, name, points} | null}.
// The "New order" button it draws is handled by views/new-order.js; the "Order #N placed" banner comes
// from the `orderFlash` slice.

import { $, h, key } from "../core/dom.js";
import { dateFmt, dateTimeFmt, fmt, humanize, initials, when } from "../core/format.js";
import { api, errorText } from "../core/http.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { hubHas } from "../model/channels.js";
import { activeConv } from "../model/conversations.js";
import { callbackSection } from "./callback-booking.js";
import { loadValue, valueSection } from "./customer-value.js";
import { lookupError, showOrder } from "./order-lookup.js";
import { orderCard } from "./orders.js";
import { openAssigned } from "./offers.js";
import { possibleMatchSection } from "./possible-match.js";
import { setTab } from "./right-panel.js";
import { toast } from "./toasts.js";

const customer = defineSlice("customer", { id: null, customer: null }, "views/customer360.js");
let req = 0;

function placeholder(message = "The customer's details appear here.") {
  $("customer-360").replaceChildren(h("p", { class: "muted small c360-placeholder", text: message }));
}

async function load360(customerId) {
  const mine = ++req;
  const idChanged = key(customerId) !== key(customer.get().id);
  if (!idChanged && customerId !== null && customerId !== undefined && customer.get().customer) {
    // already on screen (a call's screen pop, then its accept): refresh it quietly
    setTab("customer");
    return fetch360(customerId, mine);
  }
  if (idChanged) lookupError(""); // an old lookup's complaint is noise next to a new customer
  customer.set({ id: customerId ?? null, customer: idChanged ? null : customer.get().customer }, { type: "loading", idChanged });
  setTab("customer");
  if (customerId === null || customerId === undefined) return placeholder("No customer record for this conversation.");
  placeholder("Loading customer…");
  await fetch360(customerId, mine);
}

/** Fetch and draw the 360; quietly (no "Loading…") when refreshing after an order. */
async function fetch360(customerId, mine = ++req) {
  const r = await api(`/api/customers/${encodeURIComponent(customerId)}`);
  if (mine !== req) return;
  if (!r.ok || !r.data) {
    const held = customer.get().customer;
    if (held && key(held.id) === key(customerId)) return toast(errorText(r, "Could not refresh the customer"), "error");
    return placeholder(r.status === 404 ? "Customer not found." : r.status === 0 ? "Could not load the customer." : `Could not load the customer (error ${r.status}).`);
  }
  render360(r.data);
}

function flashNode(flash) {
  return h(
    "div",
    { class: "flash", role: "status" },
    h("strong", { "data-testid": "new-order-result", text: `Order #${flash.orderId} placed` }),
    flash.detail ? h("span", { class: "small", text: flash.detail }) : null,
  );
}

/** ✓ verified (the customer wrote from it), or "unverified" (they told us). A web visitor id is neither. */
function pointMark(p) {
  if (p.verified) return h("span", { class: "verified", text: "✓ verified" });
  if (p.kind === "web") return null;
  return h("span", {
    class: "unverified chip-unverified",
    "data-testid": "contact-unverified",
    title: "Given by the customer (to the bot, with an order or to an agent), not confirmed by a message from it",
    text: "unverified",
  });
}

/** A phone or email the customer told the agent: linked as unverified (the hub checks who may). */
function addContactForm(customerId) {
  const input = h("input", {
    type: "text",
    "data-testid": "contact-add-address",
    placeholder: "Phone or email the customer gave",
    "aria-label": "Phone number or email address the customer gave",
    maxlength: "300",
    autocomplete: "off",
    spellcheck: "false",
  });
  const submit = h("button", { type: "submit", class: "btn btn-ghost btn-sm", "data-testid": "contact-add-submit", text: "Add" });
  const error = h("p", { class: "form-error small", "data-testid": "contact-add-error", role: "alert", hidden: true });
  const form = h("form", { class: "contact-add", "data-testid": "contact-add", novalidate: true }, h("div", { class: "contact-add-row" }, input, submit), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const address = input.value.trim();
    error.hidden = true;
    if (!address || customerId === null || customerId === undefined) return;
    const kind = address.includes("@") ? "email" : "phone";
    submit.disabled = true;
    const r = await api(`/console/customers/${encodeURIComponent(customerId)}/contact-points`, { method: "POST", body: { kind, address } });
    submit.disabled = false;
    if (!r.ok || !r.data?.contact_point) {
      error.textContent = r.status === 403 ? "Only for the customer of a conversation assigned to you." : errorText(r, "Not added");
      error.hidden = false;
      return;
    }
    const point = r.data.contact_point;
    toast(r.data.created ? `${kind === "email" ? "Email" : "Phone"} ${point.value} added (unverified)` : `${point.value} was already on file`);
    input.value = "";
    if (key(customer.get().id) === key(customerId)) fetch360(customerId);
  });
  return form;
}

/**
 * Click-to-call: "Call" on a customer with a phone number, when the hub has a phone line (its `callback` channel). The
 * hub calls the customer for this agent (POST /api/customers/{id}/calls): the call is theirs at once, their phone
 * rings, then the customer's; the call card opens. A refusal (offline, away, on another contact...) says why.
 */
function callButton(record) {
  const phone = record.points.find((p) => p && p.kind === "phone" && p.value)?.value;
  if (!phone || !hubHas("callback") || record.id === null || record.id === undefined) return null;
  const button = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "customer-call", title: `Call ${phone} now: your phone rings first`, text: "Call" });
  button.addEventListener("click", async () => {
    button.disabled = true;
    const r = await api(`/api/customers/${encodeURIComponent(record.id)}/calls`, { method: "POST", body: { number: phone } });
    button.disabled = false;
    if (!r.ok || !r.data?.conversation) return toast(errorText(r, "Could not place the call"), "error");
    openAssigned(r.data.conversation, { customer: { id: record.id, display_name: record.name }, customer_address: phone, channel: "callback" }, { focus: true });
    toast(`Calling ${phone}: answer your phone first`);
  });
  return button;
}

function render360(data) {
  const c = data.customer || {};
  const points = data.contact_points || [];
  const items = data.timeline?.items || data.timeline || [];
  const orders = data.orders || [];
  // no name: their first address (a number, an email) rather than a number of ours
  const address = points.find((p) => p && p.kind !== "web" && p.value)?.value;
  const name = c.display_name || address || `Customer #${c.id ?? ""}`;
  const record = { id: c.id ?? customer.get().id, name, points };

  const newOrder = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "new-order-open", text: "New order" });
  const call = callButton(record);
  const head = h(
    "div",
    { class: "c360-head" },
    h("div", { class: "avatar", "aria-hidden": "true", text: initials(name) }),
    h(
      "div",
      { class: "c360-who" },
      h("div", { class: "c360-name", "data-testid": "customer-name", text: name }),
      h("div", { class: "muted small", text: [c.tier ? `${humanize(c.tier)} tier` : null, c.created_at ? `since ${fmt(c.created_at, dateFmt)}` : null].filter(Boolean).join(" · ") }),
    ),
    call,
    newOrder,
  );

  const contact = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: "Contact points" }),
    points.length
      ? h(
          "ul",
          { class: "kv" },
          points.map((p) =>
            h(
              "li",
              { "data-testid": "contact-point" },
              h("span", { class: "k", text: humanize(p.kind) }),
              h("span", { class: "v", text: p.value }),
              pointMark(p),
            ),
          ),
        )
      : h("p", { class: "muted small", text: "None on file." }),
    addContactForm(record.id),
  );

  const flash = read("orderFlash");
  const shownFlash = flash && key(flash.customerId) === key(record.id) ? flash : null;
  const orderList = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: `Orders${orders.length ? ` (${orders.length})` : ""}` }),
    shownFlash ? flashNode(shownFlash) : null,
    orders.length ? h("ul", { class: "orders" }, orders.map((o) => orderCard(o, { testid: "order-item", onOpen: showOrder }))) : h("p", { class: "muted small", text: "No orders yet." }),
  );

  const timeline = h(
    "section",
    { class: "c360-section" },
    h("h3", { text: "Timeline" }),
    items.length
      ? h(
          "ul",
          { class: "timeline" },
          items.map((i) =>
            h(
              "li",
              { class: "tl-item", "data-testid": "timeline-item" },
              h(
                "div",
                { class: "tl-head" },
                h("span", { class: "tl-kind", text: humanize(i.kind) }),
                i.channel ? h("span", { class: "chip", text: humanize(i.channel) }) : null,
                h("time", { class: "tl-time", datetime: i.occurred_at || i.created_at || null, title: fmt(i.occurred_at || i.created_at, dateTimeFmt), text: when(i.occurred_at || i.created_at) }),
              ),
              i.summary ? h("div", { class: "tl-summary", text: i.summary }) : null,
            ),
          ),
        )
      : h("p", { class: "muted small", text: "No earlier contact." }),
  );

  const value = valueSection(); // issue 18: value, attrition, next best offer (views/customer-value.js)
  // issue 20: another record this customer may be (views/possible-match.js); a merge redraws the 360
  const shown = record.id;
  const match = possibleMatchSection(shown, { isCurrent: () => key(customer.get().id) === key(shown) || key(customer.get().customer?.id) === key(shown), onMerged: () => key(customer.get().customer?.id) === key(shown) && fetch360(customer.get().id) });
  $("customer-360").replaceChildren(head, match, contact, callbackSection(record), orderList, value, timeline);
  loadValue(value, c.id, { channel: activeConv()?.channel });
  customer.set({ id: customer.get().id, customer: record }, { type: "loaded" });
}

/**
 * The screen pop: show a customer's 360 before their conversation is open (a call that rings). Only when
 * no open conversation is on screen, whose customer the agent would otherwise lose. True if it showed.
 */
export function popCustomer(customerId) {
  if (customerId === null || customerId === undefined) return false;
  const open = activeConv();
  if (open && !open.closed && key(open.customerId) !== key(customerId)) return false;
  load360(customerId);
  return true;
}

/** Show a customer found by the search (the list's "Customers" hits), whatever is open. */
export function showCustomer(customerId) {
  if (customerId === null || customerId === undefined) return;
  load360(customerId);
  setTab("customer");
}

function clear() {
  req++;
  customer.set({ id: null, customer: null }, { type: "cleared", idChanged: true });
  placeholder();
  setTab("orders");
}

export function wire() {
  subscribe("active", (id, change) => {
    if (id === null) {
      if (change.previous !== null && change.previous !== undefined) clear();
      return;
    }
    if (change.previous === null || change.previous === undefined || key(change.previous) !== key(id)) load360(activeConv()?.customerId);
  });
  // an order was placed for the customer on screen: say so at once, then refresh the 360 quietly
  subscribe("orderFlash", (flash) => {
    const held = customer.get().customer;
    if (!flash || !held || key(held.id) !== key(flash.customerId)) return;
    if (customer.get().id !== null) fetch360(customer.get().id);
    const section = $("customer-360").querySelectorAll(".c360-section")[1];
    if (section && !section.querySelector('[data-testid="new-order-result"]')) section.querySelector("h3")?.after(flashNode(flash));
  });
  subscribe("session", (s, change) => {
    if (change.type !== "signed_out") return;
    customer.set({ id: null, customer: null }, { type: "cleared", idChanged: true });
    placeholder();
  });
}
