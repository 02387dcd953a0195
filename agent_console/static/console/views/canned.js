// Canned responses: "/" in the reply box opens a picker (arrows, Enter or Tab to choose, Escape to close).
// Owner of the `canned` slice: {items: [{shortcut, text}] | null until loaded, index, shown: [...]}.
// Any composer can use it: it passes its target {input, picker} (the messaging pane's #reply-input and
// #canned by default); one picker is open at a time.

import { $, h } from "../core/dom.js";
import { defineSlice } from "../core/store.js";

const canned = defineSlice("canned", { items: null, index: 0, shown: [] }, "views/canned.js");

let current = null; // the target of the picker on screen

function messagingTarget() {
  return { input: $("reply-input"), picker: $("canned") };
}

async function loadCanned() {
  const s = canned.get();
  if (s.items) return s.items;
  let items;
  try {
    const res = await fetch("/console/canned.json", { credentials: "same-origin", headers: { Accept: "application/json" } });
    const data = res.ok ? await res.json() : [];
    items = Array.isArray(data) ? data.filter((c) => c && typeof c.text === "string") : [];
  } catch {
    items = [];
  }
  canned.set({ ...canned.get(), items }, { type: "loaded" });
  return items;
}

function cannedMatches(value) {
  const q = value.slice(1).trim().toLowerCase();
  return (canned.get().items || [])
    .filter((c) => {
      const shortcut = String(c.shortcut || "").replace(/^\//, "").toLowerCase();
      return !q || shortcut.startsWith(q) || shortcut.includes(q) || c.text.toLowerCase().includes(q);
    })
    .slice(0, 8);
}

/** The reply box changed: open, narrow or close the picker. `target`: {input, picker} of the composer. */
export async function updateCanned(value, target = messagingTarget()) {
  if (!value.startsWith("/") || value.includes("\n")) return closeCanned(target);
  await loadCanned();
  const now = target.input.value;
  if (!now.startsWith("/")) return closeCanned(target);
  if (current && current.picker !== target.picker) closeCanned(current);
  current = target;
  const items = cannedMatches(now);
  const s = canned.get();
  const index = Math.min(s.index, Math.max(0, items.length - 1));
  const picker = target.picker;
  picker.replaceChildren(
    ...(items.length
      ? items.map((c, i) => {
          const b = h(
            "button",
            { type: "button", class: "canned-item", role: "option", "data-testid": "canned-item", "aria-selected": i === index ? "true" : "false" },
            h("span", { class: "canned-key", text: `/${String(c.shortcut || "").replace(/^\//, "")}` }),
            h("span", { class: "canned-text", text: c.text }),
          );
          b.addEventListener("mousedown", (ev) => ev.preventDefault()); // keep focus in the box
          b.addEventListener("click", () => chooseCanned(c, target));
          return b;
        })
      : [h("div", { class: "canned-empty", text: s.items?.length ? "No canned response matches." : "No canned responses." })]),
  );
  picker.hidden = false;
  canned.set({ ...s, index, shown: items }, { type: "shown" });
}

export function closeCanned(target = current || messagingTarget()) {
  const picker = target.picker;
  picker.hidden = true;
  picker.replaceChildren();
  if (current && current.picker === picker) current = null;
  canned.set({ ...canned.get(), index: 0, shown: [] }, { type: "closed" });
}

function chooseCanned(item, target) {
  const input = target.input;
  input.value = item.text;
  closeCanned(target);
  input.focus();
  input.setSelectionRange(input.value.length, input.value.length);
  input.dispatchEvent(new CustomEvent("composer:refresh")); // the composer's counters follow (no typing signal)
}

/** A key in the reply box: true when the picker used it. */
export function cannedKeydown(ev, target = messagingTarget()) {
  const picker = target.picker;
  const s = canned.get();
  if (!picker.hidden && s.shown.length) {
    if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
      ev.preventDefault();
      const n = s.shown.length;
      const index = (s.index + (ev.key === "ArrowDown" ? 1 : n - 1)) % n;
      picker.querySelectorAll(".canned-item").forEach((b, i) => b.setAttribute("aria-selected", i === index ? "true" : "false"));
      canned.set({ ...s, index }, { type: "moved" });
      return true;
    }
    if (ev.key === "Enter" || ev.key === "Tab") {
      ev.preventDefault();
      chooseCanned(s.shown[s.index], target);
      return true;
    }
  }
  if (ev.key === "Escape" && !picker.hidden) {
    ev.preventDefault();
    closeCanned(target);
    return true;
  }
  return false;
}
