// The Socket.IO connection to the hub's /agent namespace (docs/subsystems/realtime.md).
// Owner of the `connection` slice: {state: "connecting"|"online"|"offline"|"ended", label, reconnect}.
// Views and models register their event handlers with on(); they are bound to every socket this module opens.

import { io } from "socket.io-client";
import { defineSlice } from "./store.js";

const connection = defineSlice("connection", { state: "connecting", label: "Connecting…", reconnect: false }, "core/socket.js");

const handlers = []; // [event, fn]
let socket = null;
let connectedOnce = false;

function setConn(state, label, extra = {}) {
  connection.set({ state, label, reconnect: false, ...extra }, { type: state });
}

/** Handle a hub event on every socket (the current one and later ones). */
export function on(event, fn) {
  handlers.push([event, fn]);
  socket?.on(event, fn);
}

export function isConnected() {
  return !!socket?.connected;
}

/** socket.timeout(ms).emit(event, payload, (err, ack) => ...) on the current socket; false when not connected. */
export function request(event, payload, ms, callback) {
  const s = socket;
  if (!s?.connected) return false;
  s.timeout(ms).emit(event, payload, (err, ack) => callback(err, ack, s));
  return true;
}

/** Fire and forget (typing). */
export function send(event, payload) {
  if (socket?.connected) socket.emit(event, payload);
}

/** The socket an ack came from is still the current one (a logout or a new login did not replace it). */
export function isCurrent(s) {
  return s === socket;
}

/** Open the /agent connection (once; a second call while open does nothing). */
export function connect() {
  if (socket) return;
  setConn("connecting", "Connecting…");
  const s = io("/agent", { withCredentials: true });
  socket = s;
  for (const [event, fn] of handlers) s.on(event, fn);

  s.on("connect", () => {
    const reconnect = connectedOnce;
    connectedOnce = true;
    setConn("online", "Connected", { reconnect });
  });
  s.on("disconnect", (reason) => {
    if (reason === "io client disconnect") return;
    setConn("offline", "Reconnecting…");
  });
  s.on("connect_error", async (err) => {
    if (s.active) {
      setConn("offline", "Reconnecting…");
      return;
    }
    // refused by the hub: most likely the session is gone
    let authed = false;
    try {
      authed = (await fetch("/auth/me", { credentials: "same-origin" })).ok;
    } catch {
      /* hub unreachable */
    }
    if (socket !== s) return;
    if (!authed) {
      setConn("ended", "Signed out");
    } else {
      setConn("offline", `Refused: ${err?.message || "error"}`);
      setTimeout(() => socket === s && !s.connected && s.connect(), 5000);
    }
  });
}

/** Close the connection (logout, session ended). */
export function disconnect() {
  if (socket) {
    socket.removeAllListeners();
    socket.disconnect();
  }
  socket = null;
  connectedOnce = false;
  setConn("connecting", "Connecting…");
}
