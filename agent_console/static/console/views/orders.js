// Order cards and an order's detail (lines, sums, history): shared by the lookup and the customer 360.

import { h } from "../core/dom.js";
import { dateFmt, dateTimeFmt, fmt, humanize, money, optionsText, when } from "../core/format.js";

/** A compact order card, a list item; with onOpen its content is one button (a list of buttons stays a list). */
export function orderCard(o, { testid = "order-item", onOpen = null } = {}) {
  const content = [
    h(
      "span",
      { class: "order-head" },
      h("span", { class: "order-id", text: `#${o.id}` }),
      h("span", { class: "status", "data-status": o.status, text: humanize(o.status) }),
      o.overdue ? h("span", { class: "status overdue", "data-testid": "order-overdue", text: "overdue" }) : null,
    ),
    h("span", { class: "order-total", text: o.total ?? money(o.total_minor, o.currency) }),
    h("span", {
      class: "order-sub",
      text: [o.created_at ? `placed ${fmt(o.created_at, dateFmt)}` : null, o.promised_date ? `promised ${fmt(o.promised_date, dateFmt)}` : null, o.channel ? humanize(o.channel) : null]
        .filter(Boolean)
        .join(" · "),
    }),
  ];
  const attrs = { class: `order${onOpen ? " clickable" : ""}`, "data-testid": testid, "data-order-id": String(o.id) };
  if (!onOpen) return h("li", attrs, ...content);
  const button = h("button", { type: "button", class: "order-open", "data-testid": `${testid}-open`, title: "Show lines and history" }, ...content);
  const node = h("li", attrs, button);
  button.addEventListener("click", () => onOpen(o, node));
  return node;
}

/** The button of an order card (what takes the focus and says whether its detail is open). */
export function orderCardButton(card) {
  return card?.querySelector(".order-open") || null;
}

export function orderDetailNode(o, { onClose }) {
  const cur = o.currency || "EUR";
  const lines = o.lines || [];
  const events = o.events || [];
  const kv = (k, v) => (v ? h("li", {}, h("span", { class: "k", text: k }), h("span", { class: "v", text: v })) : null);
  return [
    h(
      "div",
      { class: "od-head" },
      h("strong", { text: `Order #${o.id}` }),
      h("span", { class: "muted small", text: o.customer_id != null ? `customer #${o.customer_id}` : "" }),
      h("button", { type: "button", class: "btn btn-ghost btn-sm od-close", "data-testid": "order-detail-close", text: "Hide", onclick: () => onClose() }),
    ),
    h("h4", { text: `Lines (${lines.length})` }),
    h(
      "ul",
      { class: "od-lines" },
      lines.map((l) =>
        h(
          "li",
          { "data-testid": "order-line" },
          h("span", { class: "od-name" }, h("span", { text: l.name || l.sku }), l.options && Object.keys(l.options).length ? h("span", { class: "muted small", text: ` ${optionsText(l.options)}` }) : null),
          h("span", { class: "od-qty muted", text: `${l.quantity} × ${money(l.unit_price_minor, cur)}` }),
          h("span", { class: "od-amount", text: money(l.line_total_minor, cur) }),
        ),
      ),
    ),
    h(
      "ul",
      { class: "od-sums" },
      h("li", {}, h("span", { text: "Subtotal" }), h("span", { text: money(o.subtotal_minor, cur) })),
      h("li", {}, h("span", { text: "Shipping" }), h("span", { text: o.shipping_minor === 0 ? "free" : money(o.shipping_minor, cur) })),
      h("li", { class: "od-total" }, h("span", { text: "Total" }), h("span", { text: o.total ?? money(o.total_minor, cur) })),
    ),
    h("ul", { class: "kv od-kv" }, kv("Deliver to", o.delivery_address), kv("Promised", o.promised_date ? fmt(o.promised_date, dateFmt) + (o.overdue ? " (overdue)" : "") : ""), kv("Phone", o.contact_phone), kv("Email", o.contact_email), kv("Notes", o.notes)),
    h("h4", { text: "History" }),
    events.length
      ? h(
          "ol",
          { class: "timeline od-events" },
          events.map((e) =>
            h(
              "li",
              { class: "tl-item", "data-testid": "order-event" },
              h(
                "div",
                { class: "tl-head" },
                h("span", { class: "tl-kind", text: humanize(e.to_status) }),
                e.actor ? h("span", { class: "chip", text: e.actor }) : null,
                h("time", { class: "tl-time", datetime: e.occurred_at || null, title: fmt(e.occurred_at, dateTimeFmt), text: when(e.occurred_at) }),
              ),
              e.note ? h("div", { class: "tl-summary", text: e.note }) : null,
            ),
          ),
        )
      : h("p", { class: "muted small", text: "No history." }),
  ];
}
