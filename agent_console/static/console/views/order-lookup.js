// The Orders tab: find orders by order number, phone or email; an order's lines and history under its card.
// Owns the lookup's request counters (an old answer never overwrites a newer one); no shared slice.

import { $, h } from "../core/dom.js";
import { api, errorText } from "../core/http.js";
import { subscribe } from "../core/store.js";
import { orderCard, orderCardButton, orderDetailNode } from "./orders.js";
import { setTab } from "./right-panel.js";

let lookupReq = 0;
let detailReq = 0;

/** What the agent typed: digits (or #digits) are an order number, + or 7+ digits with separators a phone, @ an email. */
function classifyQuery(raw) {
  const text = String(raw || "").trim();
  if (!text) return { error: "Enter an order number, a phone number or an email address." };
  if (text.includes("@")) return { kind: "email", value: text, label: "email address" };
  const digits = text.replace(/\D/g, "");
  if (/^#?\s*\d+$/.test(text)) return { kind: "order", value: digits.replace(/^0+(?=\d)/, ""), label: "order" };
  if (/^\+[\d\s().-]+$/.test(text) || (digits.length >= 7 && /^[\d\s().-]+$/.test(text))) return { kind: "phone", value: text, label: "phone number" };
  return { error: "Not an order number, a phone number or an email address. Try 1042, +49 30 1234567 or name@example.com." };
}

export function lookupError(message) {
  const el = $("order-search-error");
  el.textContent = message || "";
  el.hidden = !message;
}

function clearLookup() {
  lookupReq++;
  detailReq++;
  lookupError("");
  $("order-results").replaceChildren();
  $("orders-hint").hidden = false;
}

async function lookupOrders(ev) {
  ev?.preventDefault();
  const q = classifyQuery($("order-search").value);
  setTab("orders");
  lookupError("");
  const req = ++lookupReq;
  detailReq++;
  if (q.error) {
    lookupError(q.error);
    return;
  }
  const list = $("order-results");
  $("orders-hint").hidden = true;
  list.replaceChildren(h("li", { class: "muted small", text: "Searching…" }));
  const button = $("order-search-submit");
  button.disabled = true;
  try {
    const path = q.kind === "order" ? `/api/orders/${encodeURIComponent(q.value)}` : `/api/orders?${q.kind}=${encodeURIComponent(q.value)}`;
    const r = await api(path);
    if (req !== lookupReq) return;
    if (!r.ok || !r.data) {
      list.replaceChildren();
      if (r.status === 404 && q.kind === "order") {
        const hint = q.value.length >= 7 ? " For a phone number, start with + or use spaces (+49 30 1234567)." : "";
        lookupError(`No order #${q.value}.${hint}`);
      } else if (r.status === 422 || r.status === 400) {
        lookupError(`That ${q.label} does not look right. ${errorText(r)}.`.replace(/\.\.$/, "."));
      } else {
        lookupError(errorText(r, "The search failed"));
      }
      return;
    }
    if (q.kind === "order") {
      showOrderResults([r.data.order], q);
      openOrderDetail(r.data.order, r.data.order);
    } else {
      showOrderResults(Array.isArray(r.data.orders) ? r.data.orders : [], q);
    }
  } finally {
    button.disabled = false;
  }
}

function showOrderResults(orders, q) {
  const list = $("order-results");
  $("orders-hint").hidden = true;
  if (!orders.length) {
    list.replaceChildren(h("li", { class: "muted small lookup-empty", "data-testid": "order-results-empty", text: `No orders for this ${q.label}.` }));
    return;
  }
  const summary = q.kind === "order" ? null : h("li", { class: "muted small lookup-summary", text: `${orders.length} order${orders.length === 1 ? "" : "s"} for ${q.value}` });
  const cards = orders.map((o) => orderCard(o, { testid: "order-result", onOpen: (order) => openOrderDetail(order) }));
  for (const card of cards) orderCardButton(card)?.setAttribute("aria-expanded", "false"); // a disclosure: the detail opens under it
  list.replaceChildren(...[summary, ...cards].filter(Boolean));
}

function closeOrderDetail() {
  detailReq++;
  const open = $("order-detail");
  if (open) {
    const card = open.previousElementSibling;
    orderCardButton(card)?.setAttribute("aria-expanded", "false");
    card?.classList.remove("open");
    open.remove();
    orderCardButton(card)?.focus();
  }
}

/** Show an order's lines and history under its card (fetched fresh unless given). */
async function openOrderDetail(order, full = null) {
  const list = $("order-results");
  const card = list.querySelector(`[data-testid="order-result"][data-order-id="${CSS.escape(String(order.id))}"]`);
  if (!card) return;
  const existing = $("order-detail");
  if (existing && existing.dataset.orderId === String(order.id) && !full) return; // already open
  orderCardButton(existing?.previousElementSibling)?.setAttribute("aria-expanded", "false");
  existing?.previousElementSibling?.classList.remove("open");
  existing?.remove();
  const detail = h("li", { id: "order-detail", class: "order-detail", "data-testid": "order-detail", "data-order-id": String(order.id), "aria-live": "polite" });
  card.after(detail);
  orderCardButton(card)?.setAttribute("aria-expanded", "true");
  card.classList.add("open");
  if (full) {
    detail.replaceChildren(...orderDetailNode(full, { onClose: closeOrderDetail }));
    return;
  }
  const req = ++detailReq;
  detail.replaceChildren(h("p", { class: "muted small", text: "Loading order…" }));
  const r = await api(`/api/orders/${encodeURIComponent(order.id)}`);
  if (req !== detailReq || !detail.isConnected) return;
  if (!r.ok || !r.data?.order) {
    detail.replaceChildren(h("p", { class: "form-error small", role: "alert", text: r.status === 404 ? `Order #${order.id} no longer exists.` : errorText(r, "Could not load the order") }));
    return;
  }
  detail.replaceChildren(...orderDetailNode(r.data.order, { onClose: closeOrderDetail }));
}

/** An order card of the 360 was clicked: show it in the Orders tab, as if looked up by number. */
export function showOrder(o) {
  $("order-search").value = String(o.id);
  lookupOrders();
}

export function wire() {
  $("order-search-form").addEventListener("submit", lookupOrders);
  $("order-search").addEventListener("input", () => lookupError(""));
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") clearLookup();
  });
}
