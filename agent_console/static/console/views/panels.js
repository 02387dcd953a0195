// Narrow screens (below 1024 px): the three columns (conversations, the open one, customer and orders) become
// tabs, one column at a time. Opening a conversation shows it; the customer search's hits show the Customer
// column. At 1024 px and wider the tabs are hidden and every column shows (CSS only: `.layout[data-panel]`).

import { $ } from "../core/dom.js";
import { subscribe } from "../core/store.js";
import { allConvs } from "../model/conversations.js";

const narrow = window.matchMedia("(max-width: 1023px)");

export function showPanel(name) {
  $("layout").dataset.panel = name;
  for (const b of $("panel-tabs").querySelectorAll(".panel-tab")) {
    const on = b.dataset.panel === name;
    b.setAttribute("aria-selected", String(on));
    b.tabIndex = on ? 0 : -1;
  }
}

export function wire() {
  for (const b of $("panel-tabs").querySelectorAll(".panel-tab")) {
    b.addEventListener("click", () => showPanel(b.dataset.panel));
    b.addEventListener("keydown", (ev) => {
      if (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight") return;
      ev.preventDefault();
      const tabs = [...$("panel-tabs").querySelectorAll(".panel-tab")];
      const next = tabs[(tabs.indexOf(b) + (ev.key === "ArrowRight" ? 1 : -1) + tabs.length) % tabs.length];
      showPanel(next.dataset.panel);
      next.focus();
    });
  }
  subscribe("active", (id, change) => {
    if (id !== null && narrow.matches && String(id) !== String(change.previous)) showPanel("chat");
  });
  subscribe("customer", (c, change) => {
    if (narrow.matches && change?.type === "loading" && $("layout").dataset.panel === "list") showPanel("customer");
  });
  subscribe("conversations", () => {
    const unread = allConvs().reduce((n, c) => n + c.unread, 0);
    $("panel-tab-count").textContent = String(unread);
    $("panel-tab-count").hidden = unread === 0;
  });
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") showPanel("list");
  });
  showPanel("list");
}
