// The supervisor page's order-evaluation sections (issue 18; docs/subsystems/order-evaluation.md):
//  * Fulfilment queue: the open orders ranked with ELECTRE II (GET /api/fulfilment/queue), each with its rank,
//    level, criteria values, ties / incomparability and "ranks above X because ..."; staff move an order on
//    (POST /api/orders/{id}/status: picking, shipped), a refused move shows the order rules' reason, and the
//    queue is read again after every move.
//  * Order and stock alerts: orders at risk of missing the promised date, overdue orders, low stock against
//    the product's reorder point. Raised once by the hub and kept (GET /api/evaluation/alerts); new ones
//    arrive live: the dashboard's snapshot (supervisor.js dispatches "supervisor:snapshot") carries a stamp that
//    changes when an alert is raised or cleared, and the list is read again then.
//  * Offers: shown / offered / accepted / declined and the orders they led to, per rule and per agent
//    (GET /api/offers/stats).
//  * Evaluation settings (weights, thresholds, criteria on/off: PUT /api/evaluation/settings) and offer rules
//    (create / edit / delete: /api/offer-rules), with the server's reasons shown beside each field.
// Self-contained (its own module, loaded by supervisor.html): supervisor.js only announces snapshots.
// Every piece of customer, product or rule data goes into the page as text, never as HTML.

import { api } from "./console/core/http.js"; // the console's JSON call to the hub: {ok, status, data}
import { $, h } from "./supervisor-dom.js";

function errorText(r, fallback = "Something went wrong.") {
  if (!r || r.status === 0) return "Cannot reach the hub.";
  const d = r.data && typeof r.data === "object" ? r.data : {};
  if (typeof d.message === "string" && d.message) return d.message;
  return `${fallback} (error ${r.status})`;
}

/** The server's per-field reasons: {field: [reason, ...]}. */
function fieldErrors(r) {
  const out = {};
  const fields = r && r.data && Array.isArray(r.data.fields) ? r.data.fields : [];
  for (const f of fields) {
    if (!f || !f.field) continue;
    (out[f.field] ||= []).push(String(f.reason || ""));
  }
  return out;
}

const money = (minor, currency) => {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency: currency || "EUR" }).format((minor || 0) / 100);
  } catch {
    return `${((minor || 0) / 100).toFixed(2)} ${currency || ""}`;
  }
};
const csv = (s) => String(s || "").split(",").map((x) => x.trim()).filter(Boolean);
const human = (s) => String(s ?? "").replace(/_/g, " ");
const fmtValue = (v) => (v === null || v === undefined ? "–" : Number.isInteger(v) ? String(v) : Number(v).toFixed(1));

const ev = { me: null, queue: null, moving: new Set(), moveErrors: new Map(), seenAlerts: new Set(), settings: null, rules: [], editing: null };
const isAdmin = () => ev.me && ev.me.role === "admin";

// ------------------------------------------------------------------ layout

function sectionShell(id, title, sub, ...body) {
  return h(
    "section",
    { class: "panel span-2 ev-panel", id, "data-testid": id, "aria-labelledby": `${id}-title` },
    h("div", { class: "panel-head" }, h("h2", { class: "panel-title", id: `${id}-title` }, title, " ", sub ? h("span", { class: "muted small", text: sub }) : null)),
    ...body,
  );
}

function buildLayout(root) {
  const nav = h(
    "nav",
    { class: "ev-nav", "aria-label": "Orders and offers" },
    h("a", { href: "#fulfilment", text: "Fulfilment queue" }),
    h("a", { href: "#order-alerts", text: "Order and stock alerts" }),
    h("a", { href: "#offer-figures", text: "Offers" }),
    h("a", { href: "#evaluation-settings", text: "Evaluation settings" }),
    h("a", { href: "#offer-rules", text: "Offer rules" }),
  );
  root.append(
    nav,
    sectionShell(
      "fulfilment",
      "Fulfilment queue",
      "ELECTRE II",
      h(
        "div",
        { class: "ev-toolbar" },
        h("span", { class: "muted small", id: "fq-summary", "data-testid": "fq-summary" }),
        h("button", { type: "button", class: "btn btn-ghost btn-sm", id: "fq-reload", "data-testid": "fq-reload", text: "Re-rank now", onclick: () => loadQueue(true) }),
      ),
      h("p", { class: "form-error small", id: "fq-error", role: "alert", hidden: true, "data-testid": "fq-error" }),
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Fulfilment queue" },
        h("table", { class: "table ev-queue", "data-testid": "fq-table" }, h("thead", { id: "fq-head" }), h("tbody", { id: "fq-rows" })),
      ),
      h("p", { class: "muted small pad", id: "fq-empty", hidden: true, text: "No order waits for fulfilment." }),
      h("p", { class: "muted small pad", id: "fq-method", "data-testid": "fq-method" }),
    ),
    sectionShell(
      "order-alerts",
      "Order and stock alerts",
      "raised once, kept until resolved",
      h("ul", { class: "ev-alerts", id: "oa-list", "data-testid": "oa-list", "aria-live": "polite", tabindex: "0", "aria-label": "Open order and stock alerts" }),
      h("p", { class: "muted small pad", id: "oa-empty", text: "No order or stock alert." }),
    ),
    sectionShell(
      "offer-figures",
      "Offers",
      "per rule and per agent",
      h(
        "div",
        { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Offer figures" },
        h(
          "table",
          { class: "table", "data-testid": "offer-stats" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["Rule or source", "Agent", "Shown", "Offered", "Accepted", "Declined", "Orders", "Order value"].map((t, i) =>
                h("th", { scope: "col", class: i >= 2 ? "num" : null, text: t }),
              ),
            ),
          ),
          h("tbody", { id: "os-rows" }),
        ),
      ),
      h("p", { class: "muted small pad", id: "os-note", text: "Orders: orders by that customer, within 14 days after the offer was accepted, with the offered product (or any order for a rule without one)." }),
    ),
    sectionShell("evaluation-settings", "Evaluation settings", "criteria, weights, thresholds", h("form", { id: "es-form", "data-testid": "es-form", novalidate: true })),
    sectionShell(
      "offer-rules",
      "Offer rules",
      "the next best offer's business rules",
      h("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": "Offer rules" }, h("table", { class: "table ev-rule-table", "data-testid": "or-table" }, h("thead", {}, h("tr", {}, ["Priority", "Name", "Conditions", "Offer", "Valid", "Active", ""].map((t) => h("th", { scope: "col", text: t })))), h("tbody", { id: "or-rows" }))),
      h("div", { id: "or-editor" }),
    ),
  );
}

// ------------------------------------------------------------------ fulfilment queue

const MOVES = [
  { status: "confirmed", label: "Confirm" },
  { status: "picking", label: "Picked" },
  { status: "shipped", label: "Shipped" },
];

async function loadQueue(rerank = false) {
  if (rerank) await api("/api/fulfilment/queue/refresh", { method: "POST", body: {} });
  const r = await api("/api/fulfilment/queue?limit=200");
  const err = $("fq-error");
  if (!r.ok) {
    err.hidden = false;
    err.textContent = `Could not read the queue: ${errorText(r)}`;
    return;
  }
  err.hidden = true;
  ev.queue = r.data;
  renderQueue(r.data);
}

function renderQueue(data) {
  const criteria = data.criteria || [];
  const head = $("fq-head");
  head.replaceChildren(
    h(
      "tr",
      {},
      h("th", { scope: "col", class: "num", text: "Rank", title: "Position in the list (level: the ELECTRE II class; equal levels are tied or incomparable)" }),
      h("th", { scope: "col", text: "Order" }),
      h("th", { scope: "col", text: "Customer" }),
      h("th", { scope: "col", text: "Status" }),
      h("th", { scope: "col", text: "Promised" }),
      criteria.map((c) => h("th", { scope: "col", class: "num", title: `${c.label} (${c.unit}; ${c.direction === "max" ? "more is better" : "less is better"}, weight ${c.weight})`, text: c.label })),
      h("th", { scope: "col", text: "Why here" }),
      h("th", { scope: "col", text: "Move on" }),
    ),
  );
  const orders = data.orders || [];
  const total = data.total ?? orders.length;
  $("fq-summary").textContent = `${total} open order(s)` + (total > orders.length ? `, the first ${orders.length} shown` : "") + (data.reranked ? " · re-ranked just now" : "");
  $("fq-empty").hidden = orders.length > 0;
  $("fq-method").textContent = data.method ? `Method: ${data.method}. Thresholds: concordance ${(data.thresholds?.concordance || []).join("–")}, discordance ${(data.thresholds?.discordance || []).join("–")}.` : "";
  // Rows are kept by order and rebuilt only when their data changed, so a re-read (after a move, or when the
  // hub re-ranked) leaves unchanged rows, their focus and a refused move's reason in place.
  const body = $("fq-rows");
  const critSig = criteria.map((c) => c.key).join(",");
  const old = new Map(Array.from(body.children).map((el) => [el.dataset.orderId, el]));
  const keep = new Set();
  orders.forEach((o, i) => {
    const { ranked_at: _r, ...rest } = o;
    const sig = `${critSig}|${JSON.stringify(rest)}`;
    let el = old.get(String(o.order_id));
    if (!el || el.dataset.sig !== sig) {
      const fresh = queueRow(o, criteria);
      fresh.dataset.sig = sig;
      if (el) el.replaceWith(fresh);
      el = fresh;
    }
    keep.add(el);
    if (body.children[i] !== el) body.insertBefore(el, body.children[i] || null);
  });
  for (const el of Array.from(body.children)) if (!keep.has(el)) el.remove();
}

function queueRow(o, criteria) {
  const why = h("div", { class: "ev-why" });
  if (o.above) why.append(h("p", { class: "small", "data-testid": "fq-above", text: o.above }));
  else why.append(h("p", { class: "small muted", text: "Last in the list." }));
  if ((o.tied_with || []).length) why.append(h("p", { class: "small", "data-testid": "fq-tied", text: `Tied with ${o.tied_with.map((x) => `#${x}`).join(", ")}` }));
  if ((o.incomparable_with || []).length) why.append(h("p", { class: "small", "data-testid": "fq-incomparable", text: `Incomparable with ${o.incomparable_with.map((x) => `#${x}`).join(", ")}` }));
  if (o.tie_break) why.append(h("p", { class: "small muted", "data-testid": "fq-tie-break", text: "Place within its level from the tie-break (promised date, then order id)." }));
  if ((o.notes || []).length) why.append(h("details", { class: "small" }, h("summary", { text: "Details" }), h("ul", {}, o.notes.map((n) => h("li", { text: n })))));
  const said = ev.moveErrors.get(o.order_id);
  const msg = h("p", { class: "form-error small", role: "alert", hidden: !said, "data-testid": "fq-move-error", text: said || "" });
  // Picked and Shipped always (a refused move shows the order rules' reason); Confirm only for a placed order.
  const buttons = MOVES.filter((m) => m.status !== "confirmed" || o.status === "placed").map((m) =>
    h("button", {
      type: "button",
      class: "btn btn-ghost btn-sm",
      "data-testid": `fq-move-${m.status}`,
      text: m.label,
      title: `Move order #${o.order_id} to ${m.status}`,
      onclick: (e) => moveOrder(o.order_id, m.status, e.currentTarget, msg),
    }),
  );
  return h(
    "tr",
    { "data-testid": "fq-row", "data-order-id": String(o.order_id), "data-status": o.status, "data-level": String(o.level) },
    h("td", { class: "num" }, h("strong", { text: String(o.position) }), h("span", { class: "muted small", text: ` L${o.level}` })),
    h("th", { scope: "row" }, `#${o.order_id}`, h("div", { class: "muted small", text: money(o.total_minor, o.currency) })),
    h("td", { text: o.customer_name || `Customer ${o.customer_id}` }),
    h("td", { "data-testid": "fq-status", text: human(o.status) }),
    h("td", { text: o.promised_date || "–" }),
    criteria.map((c) => {
      const v = (o.values || {})[c.key];
      const raw = (o.raw || {})[c.key];
      const clipped = raw !== undefined && raw !== null && v !== raw;
      return h("td", { class: "num", title: clipped ? `raw ${fmtValue(raw)} (clipped to the scale)` : null, text: fmtValue(v) + (clipped ? "*" : "") });
    }),
    h("td", { class: "ev-why-cell" }, why),
    h("td", { class: "ev-moves-cell" }, h("div", { class: "ev-moves" }, buttons), msg),
  );
}

async function moveOrder(orderId, status, button, msg) {
  if (ev.moving.has(orderId)) return;
  ev.moving.add(orderId);
  button.disabled = true;
  msg.hidden = true;
  ev.moveErrors.delete(orderId);
  const r = await api(`/api/orders/${encodeURIComponent(orderId)}/status`, { method: "POST", body: { status, note: "from the fulfilment queue" } });
  ev.moving.delete(orderId);
  button.disabled = false;
  if (!r.ok) {
    const text = `Not moved: ${errorText(r)}`;
    ev.moveErrors.set(orderId, text);
    for (const el of document.querySelectorAll(`[data-testid="fq-row"][data-order-id="${orderId}"] [data-testid="fq-move-error"]`)) {
      el.hidden = false;
      el.textContent = text;
    }
    return;
  }
  ev.moveErrors.delete(orderId);
  await loadQueue();
  await loadAlerts();
}

// ------------------------------------------------------------------ alerts

async function loadAlerts() {
  const r = await api("/api/evaluation/alerts");
  if (r.ok && r.data) renderAlerts(r.data.alerts || []);
}

function renderAlerts(alerts) {
  const list = $("oa-list");
  $("oa-empty").hidden = alerts.length > 0;
  list.replaceChildren(
    ...alerts.map((a) => {
      const fresh = !ev.seenAlerts.has(a.id) && ev.seenAlerts.size > 0;
      return h(
        "li",
        { class: "ev-alert", "data-testid": "oa-item", "data-kind": a.kind, "data-severity": a.severity, "data-id": String(a.id), "data-fresh": fresh ? "1" : null },
        h("span", { class: "ev-alert-kind", text: a.kind === "low_stock" ? "Replenish" : a.kind === "overdue" ? "Overdue" : "At risk" }),
        h("span", { class: "ev-alert-text", text: a.message }),
        h("time", { class: "muted small", datetime: a.raised_at || "", text: a.raised_at ? new Date(a.raised_at).toLocaleString() : "" }),
      );
    }),
  );
  if (!ev.seenAlerts.size) ev.seenAlerts.add(-1);
  for (const a of alerts) ev.seenAlerts.add(a.id);
}

// ------------------------------------------------------------------ offers

async function loadOfferStats() {
  const r = await api("/api/offers/stats");
  if (!r.ok || !r.data) return;
  const rows = r.data.stats || [];
  $("os-rows").replaceChildren(
    ...(rows.length
      ? rows.map((s) =>
          h(
            "tr",
            { "data-testid": "os-row" },
            h("th", { scope: "row", text: s.rule || (s.source === "association" ? "Association" : "Rule (deleted)") }),
            h("td", { text: s.agent || s.actor || "–" }),
            ["shown", "offered", "accepted", "declined", "orders"].map((k) => h("td", { class: "num", "data-field": k, text: String(s[k] ?? 0) })),
            h("td", { class: "num", text: s.orders_value_minor ? money(s.orders_value_minor, s.currency) : "–" }),
          ),
        )
      : [h("tr", {}, h("td", { colspan: "8", class: "muted small", text: "No offer recorded yet." }))]),
  );
}

// ------------------------------------------------------------------ settings form

function fieldBox(name, label, control, hint) {
  return h(
    "div",
    { class: "ev-field", "data-field": name },
    h("label", { text: label, for: control.id || null }),
    control,
    hint ? h("span", { class: "muted small", text: hint }) : null,
    h("span", { class: "form-error small ev-field-error", role: "alert", "data-testid": `error-${name}` }),
  );
}

function showFieldErrors(form, errors, general) {
  for (const el of form.querySelectorAll(".ev-field-error")) el.textContent = "";
  for (const [field, reasons] of Object.entries(errors)) {
    const box = form.querySelector(`[data-field="${CSS.escape(field)}"] .ev-field-error`) || form.querySelector(`[data-field="${CSS.escape(field.split(".")[0])}"] .ev-field-error`);
    if (box) box.textContent = reasons.join("; ");
    else general.textContent = `${field}: ${reasons.join("; ")}`;
  }
}

async function loadSettings() {
  const r = await api("/api/evaluation/settings");
  if (!r.ok || !r.data) return;
  ev.settings = r.data.settings;
  renderSettings(ev.settings);
}

function numInput(id, value, step = "any", label = null) {
  return h("input", { id, type: "number", step, value: String(value ?? ""), class: "ev-num", "aria-label": label });
}

function renderSettings(st, said = "") {
  const form = $("es-form");
  const crit = h(
    "table",
    { class: "table ev-criteria ev-settings-table", "data-testid": "es-criteria" },
    h("thead", {}, h("tr", {}, ["On", "Criterion", "Weight", "Direction", "Scale min", "Scale max"].map((t) => h("th", { scope: "col", text: t })))),
    h(
      "tbody",
      {},
      st.criteria.map((c) =>
        h(
          "tr",
          { "data-key": c.key, "data-testid": `es-criterion-${c.key}` },
          h("td", {}, h("input", { type: "checkbox", "data-k": "enabled", checked: c.enabled, "aria-label": `${c.label} on` })),
          h("th", { scope: "row", text: `${c.label} (${c.unit})` }),
          h("td", {}, h("input", { type: "number", step: "any", min: "0", "data-k": "weight", value: String(c.weight), class: "ev-num", "aria-label": `${c.label} weight` })),
          h("td", {}, h("select", { "data-k": "direction", "aria-label": `${c.label} direction` }, ["max", "min"].map((d) => h("option", { value: d, text: d === "max" ? "more is better" : "less is better", selected: c.direction === d })))),
          h("td", {}, h("input", { type: "number", step: "any", "data-k": "scale0", value: String(c.scale[0]), class: "ev-num", "aria-label": `${c.label} scale min` })),
          h("td", {}, h("input", { type: "number", step: "any", "data-k": "scale1", value: String(c.scale[1]), class: "ev-num", "aria-label": `${c.label} scale max` })),
        ),
      ),
    ),
  );
  const general = h("p", { class: "form-error small", role: "alert", "data-testid": "es-error" });
  const done = h("p", { class: "small ev-ok", role: "status", "data-testid": "es-saved", text: said });
  form.replaceChildren(
    h("div", { class: "ev-field", "data-field": "criteria" }, crit, h("span", { class: "form-error small ev-field-error", role: "alert", "data-testid": "error-criteria" })),
    h(
      "div",
      { class: "ev-grid" },
      fieldBox("concordance", "Concordance low / high", h("span", { class: "ev-pair" }, numInput("es-c-low", st.concordance[0], "any", "Concordance low"), numInput("es-c-high", st.concordance[1], "any", "Concordance high")), "0–1, low < high"),
      fieldBox("discordance", "Discordance low / high", h("span", { class: "ev-pair" }, numInput("es-d-low", st.discordance[0], "any", "Discordance low"), numInput("es-d-high", st.discordance[1], "any", "Discordance high")), "0–1, low < high"),
      fieldBox("ship_lead_days", "Shipping lead time (days)", numInput("es-lead", st.ship_lead_days ?? 2, "1"), "an order not shipped this many days before its promised date is at risk"),
      fieldBox("rfm_window_days", "RFM window (days)", numInput("es-window", st.rfm_window_days, "1"), "7–3650"),
      fieldBox("batch_size", "Batch size", numInput("es-batch", st.batch_size, "1"), "orders ranked together at most"),
      fieldBox("bot_cross_sell", "Bot cross-sell", h("label", { class: "ev-check" }, h("input", { id: "es-cross", type: "checkbox", checked: st.bot_cross_sell, "data-testid": "es-cross" }), " after an order on chat, the bot offers the top association once"), null),
      fieldBox("preferred_channels", "Preferred channels", h("input", { id: "es-channels", value: (st.preferred_channels || []).join(", ") }), "for the channel criterion, e.g. phone, chat"),
      fieldBox(
        "associations",
        "Associations: min support / confidence / lift",
        h(
          "span",
          { class: "ev-pair" },
          numInput("es-a-sup", st.associations?.min_support, "any", "Minimum support"),
          numInput("es-a-conf", st.associations?.min_confidence, "any", "Minimum confidence"),
          numInput("es-a-lift", st.associations?.min_lift, "any", "Minimum lift"),
        ),
        "used at the next recomputation",
      ),
    ),
    h("div", { class: "ev-actions" }, h("button", { type: "submit", class: "btn btn-primary btn-sm", "data-testid": "es-save", text: "Save settings" }), h("span", { class: "muted small", text: `Version ${st.version}${st.updated_by ? `, by ${st.updated_by}` : ""}` })),
    general,
    done,
  );
  form.onsubmit = async (e) => {
    e.preventDefault();
    done.textContent = "";
    general.textContent = "";
    const num = (id) => {
      const v = $(id).value.trim();
      return v === "" ? null : Number(v);
    };
    const body = {
      criteria: Array.from(form.querySelectorAll("tr[data-key]")).map((tr) => ({
        key: tr.dataset.key,
        enabled: tr.querySelector('[data-k="enabled"]').checked,
        weight: Number(tr.querySelector('[data-k="weight"]').value),
        direction: tr.querySelector('[data-k="direction"]').value,
        scale: [Number(tr.querySelector('[data-k="scale0"]').value), Number(tr.querySelector('[data-k="scale1"]').value)],
      })),
      concordance: [num("es-c-low"), num("es-c-high")],
      discordance: [num("es-d-low"), num("es-d-high")],
      ship_lead_days: num("es-lead"),
      rfm_window_days: num("es-window"),
      batch_size: num("es-batch"),
      preferred_channels: csv($("es-channels").value),
      bot_cross_sell: $("es-cross").checked,
      associations: { min_support: num("es-a-sup"), min_confidence: num("es-a-conf"), min_lift: num("es-a-lift") },
    };
    const r = await api("/api/evaluation/settings", { method: "PUT", body });
    if (!r.ok) {
      showFieldErrors(form, fieldErrors(r), general);
      if (!Object.keys(fieldErrors(r)).length) general.textContent = errorText(r, "Not saved.");
      return;
    }
    ev.settings = r.data.settings;
    renderSettings(ev.settings, "Saved; the queue was re-ranked.");
    await loadQueue();
  };
}

// ------------------------------------------------------------------ offer rules

async function loadRules() {
  const r = await api("/api/offer-rules");
  if (!r.ok || !r.data) return;
  ev.rules = r.data.rules || [];
  renderRules();
}

function conditionsText(c) {
  const parts = [];
  if (c.segments) parts.push(`segment ${c.segments.map(human).join(" or ")}`);
  if (c.attrition) parts.push(`attrition ${c.attrition.join(" or ")}`);
  if (c.days_since_last_order_min !== undefined) parts.push(`last order ≥ ${c.days_since_last_order_min} days ago`);
  if (c.days_since_last_order_max !== undefined) parts.push(`last order ≤ ${c.days_since_last_order_max} days ago`);
  if (c.bought_sku) parts.push(`bought ${c.bought_sku}`);
  if (c.discussing_sku) parts.push(`discussing ${c.discussing_sku}`);
  if (c.channels) parts.push(`on ${c.channels.join(", ")}`);
  return parts.join("; ") || "everyone";
}

function renderRules() {
  $("or-rows").replaceChildren(
    ...ev.rules.map((r) =>
      h(
        "tr",
        { "data-testid": "or-row", "data-rule-id": String(r.id) },
        h("td", { class: "num", text: String(r.priority) }),
        h("th", { scope: "row", text: r.name }),
        h("td", { class: "small", text: conditionsText(r.conditions || {}) }),
        h("td", { class: "small", text: r.offer + (r.offer_sku ? ` (${r.offer_sku})` : "") }),
        h("td", { class: "small", text: `${r.valid_from || "…"} – ${r.valid_until || "…"}` }),
        h("td", { text: r.active ? "yes" : "no" }),
        h(
          "td",
          {},
          isAdmin()
            ? [
                h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "or-edit", text: "Edit", onclick: () => editRule(r) }),
                h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "or-delete", text: "Delete", onclick: () => deleteRule(r) }),
              ]
            : null,
        ),
      ),
    ),
  );
  if (isAdmin() && !ev.editing) editRule(null);
  if (!isAdmin()) $("or-editor").replaceChildren(h("p", { class: "muted small pad", text: "Admins edit the rules." }));
}

async function deleteRule(rule) {
  if (!window.confirm(`Delete the rule "${rule.name}"?`)) return;
  const r = await api(`/api/offer-rules/${rule.id}`, { method: "DELETE" });
  if (!r.ok) {
    window.alert(errorText(r, "Not deleted."));
    return;
  }
  if (ev.editing && ev.editing.id === rule.id) ev.editing = null;
  await loadRules();
}

function editRule(rule) {
  ev.editing = rule;
  const r = rule || { name: "", priority: 0, active: true, conditions: {}, offer: "", script: "", offer_sku: null, valid_from: null, valid_until: null };
  const c = r.conditions || {};
  const input = (id, value, props = {}) => h("input", { id, value: value ?? "", ...props });
  const form = h("form", { class: "ev-rule-form", "data-testid": "or-form", novalidate: true });
  const general = h("p", { class: "form-error small", role: "alert", "data-testid": "or-error" });
  form.append(
    h("h3", { class: "small", text: rule ? `Edit rule #${rule.id}` : "New rule" }),
    h(
      "div",
      { class: "ev-grid" },
      fieldBox("name", "Name", input("or-name", r.name, { maxlength: "120", "data-testid": "or-name" })),
      fieldBox("priority", "Priority", input("or-priority", String(r.priority), { type: "number", step: "1", "data-testid": "or-priority" }), "-1000 to 1000; higher first"),
      fieldBox("active", "Active", h("input", { id: "or-active", type: "checkbox", checked: r.active })),
      fieldBox("valid_from", "Valid from", input("or-from", r.valid_from, { type: "date" })),
      fieldBox("valid_until", "Valid until", input("or-until", r.valid_until, { type: "date" })),
      fieldBox("conditions.segments", "Segments", input("or-segments", (c.segments || []).join(", "), { "data-testid": "or-segments" }), "comma-separated, e.g. at_risk, hibernating"),
      fieldBox("conditions.attrition", "Attrition", input("or-attrition", (c.attrition || []).join(", ")), "low, medium, high"),
      fieldBox("conditions.days_since_last_order_min", "Last order at least (days)", input("or-dmin", c.days_since_last_order_min ?? "", { type: "number", step: "1", "data-testid": "or-dmin" })),
      fieldBox("conditions.days_since_last_order_max", "Last order at most (days)", input("or-dmax", c.days_since_last_order_max ?? "", { type: "number", step: "1", "data-testid": "or-dmax" })),
      fieldBox("conditions.bought_sku", "Bought SKU", input("or-bought", c.bought_sku || "")),
      fieldBox("conditions.discussing_sku", "Discussing SKU", input("or-discussing", c.discussing_sku || "")),
      fieldBox("conditions.channels", "Channels", input("or-channels", (c.channels || []).join(", ")), "chat, sms, whatsapp, email, voice…"),
      fieldBox("offer_sku", "Offer SKU", input("or-sku", r.offer_sku || "", { "data-testid": "or-sku" })),
      fieldBox("offer", "Offer", input("or-offer", r.offer, { maxlength: "200", "data-testid": "or-offer" })),
    ),
    fieldBox("script", "Script", h("textarea", { id: "or-script", rows: "2", maxlength: "1000", "data-testid": "or-script" }, r.script || "")),
    h(
      "div",
      { class: "ev-actions" },
      h("button", { type: "submit", class: "btn btn-primary btn-sm", "data-testid": "or-save", text: rule ? "Save rule" : "Add rule" }),
      rule ? h("button", { type: "button", class: "btn btn-ghost btn-sm", text: "New rule instead", onclick: () => editRule(null) }) : null,
    ),
    general,
  );
  form.onsubmit = async (e) => {
    e.preventDefault();
    general.textContent = "";
    const v = (id) => $(id).value.trim();
    const conditions = {};
    if (csv(v("or-segments")).length) conditions.segments = csv(v("or-segments"));
    if (csv(v("or-attrition")).length) conditions.attrition = csv(v("or-attrition"));
    if (v("or-dmin") !== "") conditions.days_since_last_order_min = Number(v("or-dmin"));
    if (v("or-dmax") !== "") conditions.days_since_last_order_max = Number(v("or-dmax"));
    if (v("or-bought")) conditions.bought_sku = v("or-bought");
    if (v("or-discussing")) conditions.discussing_sku = v("or-discussing");
    if (csv(v("or-channels")).length) conditions.channels = csv(v("or-channels"));
    const body = {
      name: v("or-name"),
      priority: v("or-priority") === "" ? 0 : Number(v("or-priority")),
      active: $("or-active").checked,
      valid_from: v("or-from") || null,
      valid_until: v("or-until") || null,
      conditions,
      offer_sku: v("or-sku") || null,
      offer: v("or-offer"),
      script: $("or-script").value,
    };
    const r2 = rule ? await api(`/api/offer-rules/${rule.id}`, { method: "PUT", body }) : await api("/api/offer-rules", { method: "POST", body });
    if (!r2.ok) {
      const errs = fieldErrors(r2);
      showFieldErrors(form, errs, general);
      if (!Object.keys(errs).length) general.textContent = errorText(r2, "Not saved.");
      return;
    }
    ev.editing = null;
    await loadRules();
    if (isAdmin()) editRule(null);
  };
  $("or-editor").replaceChildren(form);
}

// ------------------------------------------------------------------ live

let lastAlertStamp = null;
document.addEventListener("supervisor:snapshot", (e) => {
  const snap = e.detail || {};
  const stamp = snap.order_alerts_stamp;
  if (stamp !== undefined && stamp !== lastAlertStamp) {
    const first = lastAlertStamp === null;
    lastAlertStamp = stamp;
    if (!first) loadAlerts(); // an alert was raised or cleared: read the list again
  }
  const qstamp = snap.fulfilment_stamp;
  if (qstamp !== undefined && qstamp !== ev.queueStamp) {
    const first = ev.queueStamp === undefined;
    ev.queueStamp = qstamp;
    if (!first) loadQueue();
  }
});

async function init() {
  const root = $("evaluation-root");
  if (!root) return;
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) ev.me = (await res.json()).agent;
  } catch {
    /* supervisor.js handles sign-in */
  }
  buildLayout(root);
  await Promise.all([loadQueue(), loadAlerts(), loadOfferStats(), loadSettings(), loadRules()]);
  setInterval(() => document.visibilityState === "visible" && loadOfferStats(), 30000);
}

init();
