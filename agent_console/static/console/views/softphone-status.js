// The top bar's softphone line: which softphone takes this browser's calls and how it is (ready,
// ringing, connected, not working and why; or that calls cannot be taken here). Hidden while the hub has
// no channel with calls. Owns no slice: it draws `softphone`.
//
// Beside it, "Take calls on": this browser's softphone, or the agent's own phone number (issue 14; the hub
// rings that number for their leg: softphone/phone.js setOwnNumber, PUT /console/voice/phone). The number is
// checked by the hub, whose reason is said under the field.

import { $, h } from "../core/dom.js";
import { subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";
import { describe, setOwnNumber } from "../softphone/phone.js";

let formOpen = false;
let saving = false;
let problem = "";
let typed = null; // what the agent typed (kept across a redraw, e.g. when the hub refuses it)
let last = null;

function shortWords(s) {
  if (s.mode === "phone") return `Calls: your phone ${s.label.replace(/^Your phone /, "")}`;
  if (s.mode === "none" || s.state === "off") return "Calls: not on this browser";
  if (s.state === "error") return "Softphone: not working";
  return `Softphone: ${s.state === "ringing" ? "ringing" : s.state === "connected" ? "on a call" : s.state}`;
}

function deviceForm(s) {
  const input = h("input", {
    type: "tel", id: "own-phone-number", autocomplete: "tel", placeholder: "+1 555 010 0199",
    "aria-describedby": "own-phone-problem", "data-testid": "own-phone-number",
  });
  input.value = typed ?? (s.mode === "phone" ? s.label.replace(/^Your phone /, "") : "");
  input.addEventListener("input", () => {
    typed = input.value;
  });
  const said = h("p", { id: "own-phone-problem", class: "field-error", role: "alert", "data-testid": "own-phone-problem", text: problem });
  said.hidden = !problem;
  const save = h("button", { type: "submit", "data-testid": "own-phone-save", text: "Ring my phone" });
  const browser = h("button", { type: "button", "data-testid": "own-phone-clear", text: "Use this browser" });
  save.disabled = browser.disabled = saving;
  browser.hidden = s.mode !== "phone";
  const form = h("form", { class: "own-phone", "data-testid": "own-phone-form", "aria-label": "Take calls on" },
    h("label", { for: "own-phone-number", text: "Take calls on my phone" }), input, save, browser, said);
  const submit = async (number) => {
    saving = true;
    problem = "";
    render(last);
    const r = await setOwnNumber(number);
    saving = false;
    problem = r.ok ? "" : r.message;
    if (r.ok) {
      formOpen = false;
      typed = null;
    }
    render(last);
  };
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    if (!value) {
      problem = "Type the number your calls should ring, with its country code.";
      render(last);
      return;
    }
    submit(value);
  });
  browser.addEventListener("click", () => submit(null));
  return form;
}

function render(s) {
  if (!s) return;
  last = s;
  const el = $("softphone-status");
  const words = describe(s);
  el.hidden = !words;
  el.dataset.mode = s.mode || "";
  el.dataset.state = s.state;
  el.title = words;
  const toggle = h("button", {
    type: "button", class: "link-button", "data-testid": "own-phone-toggle", "aria-expanded": String(formOpen),
    text: formOpen ? "Close" : "Change",
  });
  toggle.disabled = s.state === "ringing" || s.state === "connected"; // not in the middle of a call
  toggle.addEventListener("click", () => {
    formOpen = !formOpen;
    problem = "";
    typed = null;
    render(last);
    if (formOpen) $("own-phone-number")?.focus();
  });
  el.replaceChildren(channelIcon("voice"), h("span", { "data-testid": "softphone-words", text: shortWords(s) }), toggle,
    ...(formOpen ? [deviceForm(s)] : []));
}

export function wire() {
  subscribe("softphone", render);
}
