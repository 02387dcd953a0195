// Keyboard shortcuts, and their help panel on "?". The Alt ones work everywhere, also while typing (they are made
// for it: accepting an offer mid-sentence, going to the next conversation); the single keys never fire while the
// agent is typing in a field (nor with Ctrl, Meta or Alt held). Keys are matched by `code` (the physical key), so
// Alt+A works on a Mac keyboard where Alt+A types "å".
// No slice: it calls the owners' commands (accept, select a conversation) and clicks the page's own buttons.

import { $ } from "../core/dom.js";
import { read } from "../core/store.js";
import { activeConv, selectConv } from "../model/conversations.js";
import { acceptNext } from "./offers.js";
import { toast } from "./toasts.js";

export const SHORTCUTS = [
  { keys: ["Alt+A", "a"], what: "Accept the incoming offer (the one that runs out first)", run: accept },
  { keys: ["Alt+↓", "j"], what: "Next conversation in the list", run: () => step(1) },
  { keys: ["Alt+↑", "k"], what: "Previous conversation in the list", run: () => step(-1) },
  { keys: ["Alt+R", "r"], what: "Focus the reply box", run: focusReply },
  { keys: ["/"], what: "Canned responses (in the reply box; from anywhere else it goes there)", run: canned },
  { keys: ["Alt+T", "t"], what: "Transfer the open conversation", run: () => click("transfer-open") },
  { keys: ["Alt+X", "x"], what: "Close the open conversation (choose the outcome, then Enter)", run: closeConv },
  { keys: ["?"], what: "Show or hide this help", run: toggleHelp },
  { keys: ["Esc"], what: "Close a dialog, the canned list or this help", run: null },
];

const ALT = { KeyA: 0, ArrowDown: 1, ArrowUp: 2, KeyR: 3, KeyT: 5, KeyX: 6 };
const PLAIN = { a: 0, j: 1, k: 2, r: 3, "/": 4, t: 5, x: 6, "?": 7 };

export function isTyping(el = document.activeElement) {
  if (!el || el === document.body) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT") return true;
  if (tag !== "INPUT") return false;
  return !["button", "checkbox", "radio", "range", "submit", "reset", "file", "color"].includes((el.type || "text").toLowerCase());
}

function accept() {
  if (!acceptNext()) toast("No offer to accept");
}

function visibleConvButtons() {
  return [...$("conversations").querySelectorAll(".conv-item:not([hidden]) .conv-open")];
}

function step(dir) {
  const items = [...$("conversations").querySelectorAll(".conv-item:not([hidden])")];
  if (!items.length) return toast("No conversations");
  const current = items.findIndex((li) => li.classList.contains("active"));
  const next = current < 0 ? (dir > 0 ? 0 : items.length - 1) : (current + dir + items.length) % items.length;
  selectConv(items[next].dataset.conversationId);
  visibleConvButtons()[next]?.focus();
}

function focusReply() {
  const input = $("reply-input");
  if (!activeConv() || input.offsetParent === null || input.disabled) return toast("Open a conversation first");
  input.focus();
}

function canned() {
  const input = $("reply-input");
  if (!activeConv() || input.offsetParent === null || input.disabled) return toast("Open a conversation first");
  input.focus();
  if (!input.value.startsWith("/")) {
    input.value = "/" + input.value;
    input.dispatchEvent(new Event("input", { bubbles: true }));
  }
}

function click(id) {
  const b = $(id);
  if (!activeConv() || !b || b.hidden || b.disabled || b.offsetParent === null) return toast("Open a conversation first");
  b.click();
}

function closeConv() {
  const select = $("close-disposition");
  if (!activeConv() || select.offsetParent === null) return toast("Open a conversation first");
  select.focus();
  toast("Choose the outcome, then Enter or Close");
}

function renderHelp() {
  const list = $("shortcuts-list");
  if (list.childElementCount) return;
  for (const s of SHORTCUTS) {
    const keys = document.createElement("dt");
    s.keys.forEach((k, i) => {
      if (i) keys.append(" or ");
      const kbd = document.createElement("kbd");
      kbd.textContent = k;
      keys.append(kbd);
    });
    const what = document.createElement("dd");
    what.textContent = s.what;
    list.append(keys, what);
  }
}

function toggleHelp() {
  const dialog = $("shortcuts-dialog");
  if (dialog.open) return dialog.close();
  renderHelp();
  dialog.showModal();
}

function onKeydown(ev) {
  if (ev.defaultPrevented || ev.isComposing || !read("session").signedIn) return;
  if (document.querySelector("dialog[open]:not(#shortcuts-dialog)")) return; // a dialog has the keyboard
  if (ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    const i = ALT[ev.code];
    if (i === undefined) return;
    ev.preventDefault();
    SHORTCUTS[i].run();
    return;
  }
  if (ev.ctrlKey || ev.metaKey || ev.altKey || isTyping(ev.target)) return;
  const i = PLAIN[ev.key];
  if (i === undefined) return;
  if ($("shortcuts-dialog").open && ev.key !== "?") return;
  ev.preventDefault();
  SHORTCUTS[i].run();
}

export function wire() {
  document.addEventListener("keydown", onKeydown);
  $("shortcuts-open").addEventListener("click", toggleHelp);
  $("shortcuts-close").addEventListener("click", () => $("shortcuts-dialog").close());
}
