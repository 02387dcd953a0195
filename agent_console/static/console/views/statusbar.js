// The top bar: the connection indicator, the agent's name, their presence (status) and Log out.
// Owner of the `presence` slice: {status} as the hub last confirmed it.

import { $, h } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { defineSlice, subscribe } from "../core/store.js";
import { humanize } from "../core/format.js";
import { isSupervisor, logout } from "../session.js";
import { toast } from "./toasts.js";

const presence = defineSlice("presence", { status: "offline" }, "views/statusbar.js");
const CHOICES = new Set(["available", "away", "offline"]);

/** Show a status the hub confirmed (or told us: wrap-up after the last conversation, a supervisor's change). */
export function setStatusUi(status) {
  const select = $("status-select");
  // a status the agent cannot pick (wrap_up, busy) shows as a disabled extra option while it lasts
  select.querySelector("option[data-extra]")?.remove();
  if (!CHOICES.has(status)) select.append(h("option", { value: status, "data-extra": "true", disabled: true, text: humanize(status).replace(/^./, (c) => c.toUpperCase()) }));
  select.value = status;
  select.dataset.confirmed = status; // what the hub last acknowledged
  $("status-dot").dataset.status = status;
  presence.set({ status }, { type: "status" });
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
  $("logout").addEventListener("click", logout);
  subscribe("session", (s) => {
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
    if (p && typeof p.status === "string") setStatusUi(p.status);
  });
}
