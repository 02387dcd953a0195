// "New order" for the customer on screen (in the Customer tab, in place of the 360 while open): lines
// with options and quantities, delivery address and contact, the hub's quote, then the order.
// Owner of the `orderForm` slice (the open form, see buildOrderForm, or null) and of `orderFlash`
// ({customerId, orderId, detail}: "Order #N placed", shown by the 360 and used by the close form).

import { $, h, key, randomId } from "../core/dom.js";
import { dateFmt, fmt, humanize, money, optionsText } from "../core/format.js";
import { api, errorText, fieldLabel } from "../core/http.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { setTab } from "./right-panel.js";
import { toast } from "./toasts.js";

const orderForm = defineSlice("orderForm", null, "views/new-order.js");
const orderFlash = defineSlice("orderFlash", null, "views/new-order.js");

let productCache = null; // {at, products}

function shownCustomer() {
  return read("customer").customer;
}

/** The Customer tab shows either the 360 or the open New order form of that customer. */
function renderCustomerPane() {
  const f = orderForm.get();
  const c = shownCustomer();
  const showForm = !!(f && f.open && c && key(f.customerId) === key(c.id));
  $("customer-360").hidden = showForm;
  $("new-order").hidden = !showForm;
  if (showForm) {
    if (f.node.parentNode !== $("new-order")) $("new-order").replaceChildren(f.node);
  } else {
    $("new-order").replaceChildren();
  }
}

async function loadProducts() {
  if (productCache && Date.now() - productCache.at < 15000) return { ok: true, products: productCache.products };
  const r = await api("/api/products");
  const products = Array.isArray(r.data?.products) ? r.data.products : null;
  if (!r.ok || !products) return { ok: false, error: errorText(r, "Could not load the products") };
  productCache = { at: Date.now(), products };
  return { ok: true, products };
}

function errSlot(form, field, control = null) {
  const slot = h("p", { class: "field-error", "data-testid": "new-order-field-error", "data-field": field, role: "alert", hidden: true });
  slot._control = control;
  if (control) control._errSlot = slot;
  form.slots.push(slot);
  return slot;
}

function hideSlot(slot) {
  if (!slot) return;
  slot.hidden = true;
  slot.textContent = "";
  slot._control?.removeAttribute("aria-invalid");
}

function openNewOrder() {
  const c = shownCustomer();
  if (!c) return;
  if (!orderForm.get() || key(orderForm.get().customerId) !== key(c.id)) orderForm.set(buildOrderForm(c), { type: "built" });
  const f = orderForm.get();
  f.open = true;
  orderFlash.set(null, { type: "cleared" });
  setTab("customer");
  renderCustomerPane();
  fillProducts(f);
  f.rows[0]?.product.focus();
}

function closeNewOrder() {
  orderForm.set(null, { type: "closed" });
  renderCustomerPane();
  $("customer-360").querySelector('[data-testid="new-order-open"]')?.focus();
}

function buildOrderForm(customer) {
  const f = {
    customerId: customer.id,
    customerName: customer.name,
    idempotencyKey: `console-${randomId(32)}`, // one per form: a double click or a retry cannot place a second order
    rows: [],
    slots: [],
    products: null,
    busy: false,
    open: true,
    quote: null,
  };
  f.linesBox = h("div", { class: "no-lines" });
  f.linesSlot = errSlot(f, "lines");
  f.addLine = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "new-order-add-line", text: "+ Add line", onclick: () => addOrderRow(f, true) });
  f.address = h("textarea", { id: "new-order-address", "data-testid": "new-order-address", rows: "2", maxlength: "500", autocomplete: "off", placeholder: "Street, postcode, city" });
  f.phone = h("input", { id: "new-order-phone", "data-testid": "new-order-phone", type: "tel", maxlength: "40", autocomplete: "off", value: bestPoint(customer.points, "phone") });
  f.email = h("input", { id: "new-order-email", "data-testid": "new-order-email", type: "email", maxlength: "254", autocomplete: "off", value: bestPoint(customer.points, "email") });
  f.error = h("p", { class: "form-error small", "data-testid": "new-order-error", role: "alert", hidden: true });
  f.quoteBox = h("div", { class: "no-quote", "data-testid": "new-order-quote-box", "aria-live": "polite", hidden: true });
  f.quoteBtn = h("button", { type: "button", class: "btn btn-ghost", "data-testid": "new-order-quote", text: "Get quote", onclick: () => getQuote(f) });
  f.submit = h("button", { type: "button", class: "btn btn-primary", "data-testid": "new-order-submit", text: "Place order", onclick: () => placeOrder(f) });

  f.node = h(
    "section",
    { class: "no", "aria-label": `New order for ${customer.name}` },
    h(
      "div",
      { class: "no-head" },
      h("div", {}, h("h3", { text: "New order" }), h("div", { class: "muted small", text: `for ${customer.name}` })),
      h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "new-order-cancel", text: "Cancel", onclick: closeNewOrder }),
    ),
    f.linesBox,
    f.linesSlot,
    h("div", { class: "no-add" }, f.addLine),
    h("label", { class: "no-field", for: "new-order-address" }, h("span", { text: "Delivery address" })),
    f.address,
    errSlot(f, "delivery_address", f.address),
    h(
      "div",
      { class: "no-contact" },
      h("div", {}, h("label", { class: "no-field", for: "new-order-phone" }, h("span", { text: "Phone" })), f.phone, errSlot(f, "phone", f.phone)),
      h("div", {}, h("label", { class: "no-field", for: "new-order-email" }, h("span", { text: "Email" })), f.email, errSlot(f, "email", f.email)),
    ),
    errSlot(f, "contact"),
    f.quoteBox,
    f.error,
    h("div", { class: "no-actions" }, f.quoteBtn, f.submit),
  );
  // any edit makes the shown quote stale and clears that field's error
  const edited = (ev) => {
    hideSlot(ev.target._errSlot);
    if (ev.target.closest?.(".ol")) hideSlot(ev.target.closest(".ol")._row?.lineSlot);
    clearQuote(f);
  };
  f.node.addEventListener("input", edited);
  f.node.addEventListener("change", edited);
  addOrderRow(f, false);
  return f;
}

/** The customer's best address of a kind: verified first, then the newest. */
function bestPoint(points, kind) {
  const of = points.filter((p) => p && p.kind === kind && p.value);
  of.sort((a, b) => Number(!!b.verified) - Number(!!a.verified) || String(b.created_at || "").localeCompare(String(a.created_at || "")));
  return of[0]?.value || "";
}

function clearQuote(f) {
  f.quote = null;
  f.quoteBox.hidden = true;
  f.quoteBox.replaceChildren();
}

async function fillProducts(f) {
  if (f.products) return;
  for (const row of f.rows) row.product.replaceChildren(h("option", { value: "", text: "Loading products…" }));
  const res = await loadProducts();
  if (orderForm.get() !== f) return;
  if (!res.ok) {
    f.error.textContent = res.error;
    f.error.hidden = false;
    for (const row of f.rows) row.product.replaceChildren(h("option", { value: "", text: "Products unavailable" }));
    return;
  }
  f.products = res.products;
  f.bySku = new Map(res.products.map((p) => [p.sku, p]));
  for (const row of f.rows) fillProductSelect(f, row);
}

function fillProductSelect(f, row) {
  if (!f.products) return;
  const chosen = row.product.value;
  const groups = new Map();
  for (const p of f.products) {
    const cat = p.category || "other";
    if (!groups.has(cat)) groups.set(cat, []);
    groups.get(cat).push(p);
  }
  row.product.replaceChildren(
    h("option", { value: "", text: "Choose a product…" }),
    ...[...groups].map(([cat, items]) =>
      h(
        "optgroup",
        { label: humanize(cat) },
        items.map((p) => {
          const out = !(p.stock > 0) || p.in_stock === false;
          return h("option", { value: p.sku, disabled: out, text: `${p.name} · ${p.price || money(p.price_minor, p.currency)} · ${out ? "out of stock" : `${p.stock} left`}` });
        }),
      ),
    ),
  );
  row.product.value = chosen && f.bySku.has(chosen) ? chosen : "";
  renderRowOptions(f, row);
}

function addOrderRow(f, focus) {
  const row = { optionSels: new Map(), optionSlots: [] };
  row.product = h("select", { "data-testid": "new-order-product", class: "ol-product" });
  row.qty = h("input", { type: "number", min: "1", max: "100", step: "1", value: "1", inputmode: "numeric", "data-testid": "new-order-quantity", class: "ol-qty" });
  row.optsBox = h("div", { class: "ol-opts" });
  row.price = h("span", { class: "ol-price muted small" });
  row.remove = h("button", { type: "button", class: "icon-btn", "data-testid": "new-order-remove-line", text: "×" });
  row.productSlot = errSlot(f, "", row.product);
  row.qtySlot = errSlot(f, "", row.qty);
  row.optionsSlot = errSlot(f, "");
  row.lineSlot = errSlot(f, "");
  row.node = h(
    "div",
    { class: "ol", "data-testid": "new-order-line" },
    h("div", { class: "ol-top" }, row.product, row.remove),
    row.productSlot,
    row.optsBox,
    row.optionsSlot,
    h("div", { class: "ol-bottom" }, h("label", { class: "ol-qty-label" }, h("span", { text: "Qty" }), row.qty), row.price),
    row.qtySlot,
    row.lineSlot,
  );
  row.node._row = row;
  row.product.addEventListener("change", () => renderRowOptions(f, row));
  row.qty.addEventListener("input", () => renderRowPrice(f, row));
  row.remove.addEventListener("click", () => {
    f.rows = f.rows.filter((r) => r !== row);
    f.slots = f.slots.filter((s) => !row.node.contains(s));
    row.node.remove();
    if (!f.rows.length) addOrderRow(f, true);
    renumberRows(f);
    clearQuote(f);
  });
  f.rows.push(row);
  f.linesBox.append(row.node);
  if (f.products) fillProductSelect(f, row);
  else row.product.replaceChildren(h("option", { value: "", text: "Loading products…" }));
  renumberRows(f);
  clearQuote(f);
  if (focus) row.product.focus();
  return row;
}

/** Field names follow the line's position, as the API reports them (lines[0].quantity ...). */
function renumberRows(f) {
  f.rows.forEach((row, i) => {
    const p = `lines[${i}]`;
    row.node.dataset.index = String(i);
    row.product.setAttribute("aria-label", `Line ${i + 1}: product`);
    row.qty.setAttribute("aria-label", `Line ${i + 1}: quantity`);
    row.remove.setAttribute("aria-label", `Remove line ${i + 1}`);
    row.remove.hidden = f.rows.length === 1;
    row.productSlot.dataset.field = `${p}.sku`;
    row.qtySlot.dataset.field = `${p}.quantity`;
    row.optionsSlot.dataset.field = `${p}.options`;
    row.lineSlot.dataset.field = p;
    for (const [name, sel] of row.optionSels) {
      sel.setAttribute("aria-label", `Line ${i + 1}: ${humanize(name)}`);
      sel._errSlot.dataset.field = `${p}.options.${name}`;
    }
  });
}

function renderRowOptions(f, row) {
  const product = f.bySku?.get(row.product.value);
  const previous = new Map([...row.optionSels].map(([n, s]) => [n, s.value]));
  f.slots = f.slots.filter((s) => !row.optionSlots.includes(s));
  row.optionSels = new Map();
  row.optionSlots = [];
  const nodes = [];
  for (const [name, values] of Object.entries(product?.options || {})) {
    if (!Array.isArray(values) || !values.length) continue;
    const sel = h(
      "select",
      { "data-testid": `new-order-option-${name}`, "data-option": name },
      h("option", { value: "", text: `${humanize(name)}…` }),
      values.map((v) => h("option", { value: String(v), text: String(v) })),
    );
    if (previous.has(name) && values.includes(previous.get(name))) sel.value = previous.get(name);
    const slot = errSlot(f, "", sel);
    row.optionSlots.push(slot);
    row.optionSels.set(name, sel);
    nodes.push(h("label", { class: "ol-opt" }, h("span", { text: humanize(name) }), sel, slot));
  }
  row.optsBox.replaceChildren(...nodes);
  row.optsBox.hidden = !nodes.length;
  hideSlot(row.productSlot);
  hideSlot(row.optionsSlot);
  renumberRows(f);
  renderRowPrice(f, row);
}

function renderRowPrice(f, row) {
  const product = f.bySku?.get(row.product.value);
  const qty = Number(row.qty.value);
  if (!product) {
    row.price.textContent = "";
    return;
  }
  const each = money(product.price_minor, product.currency);
  const whole = Number.isInteger(qty) && qty >= 1 && qty <= 100;
  row.price.textContent = whole ? money(product.price_minor * qty, product.currency) : `${each} each`;
  row.price.title = whole ? `${qty} × ${each}` : "";
}

/** The request body for /api/orders and /api/orders/quote, from what the form shows. */
function orderBody(f, withCustomer) {
  const lines = f.rows.map((row) => {
    const options = {};
    for (const [name, sel] of row.optionSels) if (sel.value) options[name] = sel.value;
    const raw = row.qty.value.trim();
    const n = Number(raw);
    return { sku: row.product.value, quantity: raw !== "" && Number.isFinite(n) ? n : null, options };
  });
  const body = { lines, delivery_address: f.address.value.trim() };
  if (withCustomer) {
    body.customer_id = f.customerId;
    body.channel = "chat";
  }
  const phone = f.phone.value.trim();
  const email = f.email.value.trim();
  if (phone) body.phone = phone;
  if (email) body.email = email;
  return body;
}

function clearFormErrors(f) {
  f.slots.forEach(hideSlot);
  f.error.hidden = true;
  f.error.textContent = "";
}

/** Put each 422 field error next to its field (lines[0].quantity, delivery_address ...); the rest in the form error. */
function showFormErrors(f, r, fallback) {
  clearFormErrors(f);
  const fields = Array.isArray(r.data?.fields) ? r.data.fields.filter((e) => e && e.field) : [];
  const unplaced = [];
  let first = null;
  for (const e of fields) {
    const field = String(e.field);
    let slot = null;
    for (let name = field; name && !slot; ) {
      slot = f.slots.find((s) => s.dataset.field === name && s.isConnected) || null;
      const cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
      name = cut > 0 ? name.slice(0, cut) : "";
    }
    if (!slot) {
      unplaced.push(`${fieldLabel(field)}: ${e.reason}`);
      continue;
    }
    let reason = String(e.reason ?? "invalid");
    if (field.endsWith(".sku") && reason === "required") reason = "choose a product";
    const text = slot.dataset.field === field ? reason : `${fieldLabel(field)}: ${reason}`;
    slot.textContent = slot.hidden || !slot.textContent ? text : `${slot.textContent}; ${text}`;
    slot.hidden = false;
    slot._control?.setAttribute("aria-invalid", "true");
    first = first || slot._control || slot;
  }
  const messages = [];
  if (fields.length && unplaced.length < fields.length) messages.push("Please check the highlighted fields.");
  messages.push(...unplaced);
  if (!fields.length) messages.push(errorText(r, fallback));
  f.error.textContent = messages.join(" ");
  f.error.hidden = false;
  if (first && typeof first.focus === "function" && first.tagName !== "P") first.focus();
}

function setFormBusy(f, busy, label) {
  f.busy = busy;
  f.quoteBtn.disabled = busy;
  f.submit.disabled = busy;
  f.addLine.disabled = busy;
  f.node.setAttribute("aria-busy", busy ? "true" : "false");
  if (label) (label === "quote" ? f.quoteBtn : f.submit).textContent = busy ? (label === "quote" ? "Quoting…" : "Placing…") : label === "quote" ? "Get quote" : "Place order";
}

async function getQuote(f) {
  if (f.busy) return;
  clearFormErrors(f);
  clearQuote(f);
  setFormBusy(f, true, "quote");
  const r = await api("/api/orders/quote", { method: "POST", body: orderBody(f, false) });
  setFormBusy(f, false, "quote");
  if (orderForm.get() !== f) return;
  if (!r.ok || !r.data) return showFormErrors(f, r, "Could not get a quote");
  renderQuote(f, r.data);
}

function renderQuote(f, q) {
  f.quote = q;
  const first = f.bySku?.get(q.lines?.[0]?.sku);
  const cur = first?.currency || "EUR";
  f.quoteBox.replaceChildren(
    h("h4", { text: "Quote" }),
    h(
      "ul",
      { class: "od-lines" },
      (q.lines || []).map((l) =>
        h(
          "li",
          { "data-testid": "new-order-quote-line" },
          h("span", { class: "od-name" }, h("span", { text: `${l.quantity} × ${l.name || l.sku}` }), l.options && Object.keys(l.options).length ? h("span", { class: "muted small", text: ` ${optionsText(l.options)}` }) : null),
          h("span", { class: "od-qty muted", text: money(l.unit_price_minor, cur) }),
          h("span", { class: "od-amount", text: money(l.line_total_minor, cur) }),
        ),
      ),
    ),
    h(
      "ul",
      { class: "od-sums" },
      h("li", {}, h("span", { text: "Subtotal" }), h("span", { text: money(q.subtotal_minor, cur) })),
      h("li", {}, h("span", { text: "Shipping" }), h("span", { "data-testid": "new-order-quote-shipping", text: q.shipping_minor === 0 ? "free" : money(q.shipping_minor, cur) })),
      h("li", { class: "od-total" }, h("span", { text: "Total" }), h("span", { "data-testid": "new-order-quote-total", text: money(q.total_minor, cur) })),
      h("li", {}, h("span", { text: "Estimated delivery" }), h("span", { "data-testid": "new-order-quote-delivery", text: q.estimated_delivery ? fmt(q.estimated_delivery, dateFmt) : "—" })),
    ),
  );
  f.quoteBox.hidden = false;
  f.quoteBox.scrollIntoView({ block: "nearest" });
}

async function placeOrder(f) {
  if (f.busy) return; // the same Idempotency-Key guards the hub side as well
  clearFormErrors(f);
  setFormBusy(f, true, "place");
  const r = await api("/api/orders", { method: "POST", body: orderBody(f, true), headers: { "Idempotency-Key": f.idempotencyKey } });
  setFormBusy(f, false, "place");
  if (!r.ok || !r.data?.order) {
    if (orderForm.get() === f) showFormErrors(f, r, "The order was not placed");
    return;
  }
  const o = r.data.order;
  productCache = null; // stock changed
  if (orderForm.get() === f) orderForm.set(null, { type: "placed" });
  renderCustomerPane();
  // the 360 shows the banner and refreshes; the close form suggests "Order placed"
  orderFlash.set({ customerId: f.customerId, orderId: o.id, detail: [o.total, o.promised_date ? `delivery by ${fmt(o.promised_date, dateFmt)}` : null].filter(Boolean).join(" · ") }, { type: "placed" });
  toast(`Order #${o.id} placed`);
}

export function wire() {
  // the 360 draws the button; this module owns what it does
  $("customer-360").addEventListener("click", (ev) => {
    if (ev.target.closest?.('[data-testid="new-order-open"]')) openNewOrder();
  });
  subscribe("customer", (_, change) => {
    if (change.idChanged && orderFlash.get()) orderFlash.set(null, { type: "cleared" });
    renderCustomerPane();
  });
  subscribe("conversations", (_, change) => {
    const f = orderForm.get();
    if (change.type === "removed" && f && key(f.customerId) === key(change.conv.customerId)) orderForm.set(null, { type: "dropped" });
  });
  subscribe("session", (s, change) => {
    if (change.type !== "signed_out") return;
    orderForm.set(null, { type: "reset" });
    orderFlash.set(null, { type: "reset" });
    renderCustomerPane();
  });
}
