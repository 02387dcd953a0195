// The top bar: the connection indicator, the agent's name, their presence (status) and Log out.
// Owner of the `presence` slice: {status, reason, missed, until, by} as the hub last confirmed it: `reason`
// "missed_offers" when the hub set the agent Away, `until` (epoch s) the end of a wrap-up, `by` a supervisor.
// The state the agent last had is remembered in this browser (per agent) and given back when the console is
// reopened on a session still valid (the hub says offline once the last tab has been gone 15 s); a logout or
// an ended session forgets it.

import { $, h } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { humanize } from "../core/format.js";
import { isSupervisor, logout } from "../session.js";
import { toast } from "./toasts.js";
import { loadPref, savePref } from "../core/prefs.js";

const presence = defineSlice("presence", { status: "offline" }, "views/statusbar.js");
const RESTORE_WITHIN_MS = 12 * 60 * 60 * 1000; // a session's longest life

function agentKey() {
  const a = read("session").agent;
  return a?.id != null ? `lastStatus.${a.id}` : null;
}

/** Remember the state the agent has now (not the hub's passing ones: wrap-up, busy). */
function remember(status) {
  const k = agentKey();
  if (k && CHOICES.has(status)) savePref(k, { status, at: Date.now() });
}

function forget() {
  const k = agentKey();
  if (k) savePref(k, undefined);
}

/** hello said offline (the console was closed): give back the state the agent left with, if it was one that
 *  takes or pauses work. */
export function restoreLastStatus(helloStatus) {
  const k = agentKey();
  const saved = k ? loadPref(k, null) : null;
  if (helloStatus !== "offline" || !saved || !["available", "away"].includes(saved.status)) return;
  if (!(Date.now() - Number(saved.at) < RESTORE_WITHIN_MS)) return;
  socket.request("set_status", { status: saved.status }, 10000, (err, ack) => {
    if (err || !ack?.ok) return;
    setStatusUi(ack.status || saved.status);
    toast(`Welcome back: you are ${ack.status === "away" ? "Away" : "Available"} again, as you left it.`);
  });
}
const CHOICES = new Set(["available", "away", "offline"]);

/** Show a status the hub confirmed (or told us: wrap-up after the last conversation, a supervisor's change). */
export function setStatusUi(status, extra = {}) {
  const select = $("status-select");
  // a status the agent cannot pick (wrap_up, busy) shows as a disabled extra option while it lasts
  select.querySelector("option[data-extra]")?.remove();
  if (!CHOICES.has(status)) select.append(h("option", { value: status, "data-extra": "true", disabled: true, text: humanize(status).replace(/^./, (c) => c.toUpperCase()) }));
  select.value = status;
  select.dataset.confirmed = status; // what the hub last acknowledged
  $("status-dot").dataset.status = status;
  const reason = extra.reason && typeof extra.reason === "object" ? extra.reason : extra.reason ? { reason: extra.reason, missed: extra.missed } : null;
  presence.set({ status, reason: status === "away" ? reason : null, until: status === "wrap_up" ? Number(extra.until) || null : null, by: extra.by || null }, { type: "status" });
  if (extra.remember !== false) remember(status);
}

function onStatusChange() {
  const select = $("status-select");
  const wanted = select.value;
  const previous = presence.get().status;
  $("status-dot").dataset.status = wanted;
  if (!socket.isConnected()) {
    setStatusUi(previous);
    toast("Not connected: status unchanged", "error");
    return;
  }
  select.disabled = true;
  socket.request("set_status", { status: wanted }, 10000, (err, ack) => {
    select.disabled = false;
    if (err || !ack?.ok) {
      setStatusUi(previous);
      toast(ack?.error?.message || "Could not change status", "error");
      return;
    }
    setStatusUi(ack.status || wanted);
  });
}

export function wire() {
  $("status-select").addEventListener("change", onStatusChange);
  $("logout").addEventListener("click", () => {
    forget(); // signing out is going offline on purpose: the next sign-in starts offline
    logout();
  });
  subscribe("session", (s, change) => {
    if (change.type === "signed_out" && s.message) forget(); // the session ended: nothing to restore
    if (s.agent) $("agent-name").textContent = s.agent.display_name || s.agent.username || "";
    // the link to the supervisor view, for those the hub lets in (it checks the role again: this only hides it)
    $("supervisor-link").hidden = !(s.signedIn && isSupervisor(s.agent));
  });
  subscribe("connection", (c) => {
    const el = $("conn-state");
    el.dataset.state = c.state === "ended" ? "offline" : c.state;
    el.querySelector(".conn-label").textContent = c.label;
  });
  // the hub changed our status: wrap-up after the last conversation closed (then available), or a supervisor
  socket.on("status", (p) => {
    if (p && typeof p.status === "string") setStatusUi(p.status, p);
  });
}
