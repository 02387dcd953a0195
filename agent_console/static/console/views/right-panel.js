// The right panel's tabs: Customer (the 360, or the New order form) and Orders (the lookup).
// Owner of the `rightTab` slice: "customer" | "orders".

import { $ } from "../core/dom.js";
import { defineSlice, subscribe } from "../core/store.js";

const rightTab = defineSlice("rightTab", "orders", "views/right-panel.js");

export function setTab(name) {
  const tab = name === "customer" ? "customer" : "orders";
  for (const [t, pane] of [
    ["customer", "customer-pane"],
    ["orders", "orders-pane"],
  ]) {
    const on = t === tab;
    $(`tab-${t}`).setAttribute("aria-selected", on ? "true" : "false");
    $(`tab-${t}`).tabIndex = on ? 0 : -1;
    $(pane).hidden = !on;
  }
  rightTab.set(tab);
}

function onTabKeydown(ev) {
  if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
  ev.preventDefault();
  const next = rightTab.get() === "customer" ? "orders" : "customer";
  setTab(next);
  $(`tab-${next}`).focus();
}

export function wire() {
  $("tab-customer").addEventListener("click", () => setTab("customer"));
  $("tab-orders").addEventListener("click", () => setTab("orders"));
  $("tab-customer").addEventListener("keydown", onTabKeydown);
  $("tab-orders").addEventListener("keydown", onTabKeydown);
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") setTab("orders");
  });
  setTab("orders");
}
