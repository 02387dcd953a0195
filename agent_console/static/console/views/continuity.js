// A chat that ended while the agent was away is explained, not just gone. The agent's open conversations (id and
// name) are remembered in this browser; when hello no longer lists one (the console was closed or lost its
// connection for more than the hub's 15 s grace: it went back to the queue for another agent, or the customer
// left), the offers' notices say so. No slice: it reads `conversations` and `session`.

import { key } from "../core/dom.js";
import { loadPref, savePref } from "../core/prefs.js";
import { read, subscribe } from "../core/store.js";
import { allConvs, convName } from "../model/conversations.js";
import { showEndedNotice } from "./offers.js";

let saveTimer = null;
let ready = false; // this page's first hello was explained: until then what is saved is the previous page's

function prefKey() {
  const a = read("session").agent;
  return a?.id != null ? `open.${a.id}` : null;
}

function openNow() {
  return allConvs().filter((c) => !c.closed).map((c) => ({ id: key(c.id), name: convName(c) }));
}

function save() {
  if (!ready) return;
  const k = prefKey();
  if (k) savePref(k, openNow().slice(0, 50));
}

/** Call before hello's conversations are merged: what the console had open (in memory, or before a reload). */
export function openBeforeHello() {
  const k = prefKey();
  const known = new Map((k ? loadPref(k, []) : []).filter((c) => c && c.id != null).map((c) => [key(c.id), c.name || `Conversation #${c.id}`]));
  for (const c of openNow()) known.set(c.id, c.name);
  return known;
}

/** After the merge: say which of them are no longer the agent's. */
export function explainGone(before, hello) {
  const listed = new Set((hello?.conversations || []).map((c) => key(c.id ?? c.conversation_id)));
  for (const [id, name] of before) if (!listed.has(id)) showEndedNotice(id, name);
  ready = true;
  save();
}

let savedIds = "";

export function wire() {
  subscribe("conversations", (_, change) => {
    if (change.type === "message" || change.type === "status" || change.type === "outbox" || change.type === "read") return;
    clearTimeout(saveTimer);
    // a conversation added or gone is saved at once (the console may be closed the next moment); a rename waits
    const ids = openNow().map((c) => c.id).join(",");
    if (ids !== savedIds) {
      savedIds = ids;
      save();
    } else {
      saveTimer = setTimeout(save, 200);
    }
  });
  window.addEventListener("pagehide", save);
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") ready = false;
    if (change.type === "signed_out" && !s.message) {
      // a deliberate sign-out: nothing to explain next time
      const k = prefKey();
      if (k) savePref(k, undefined);
    }
  });
}
