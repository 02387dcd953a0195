// The agent's session: signed in or not, who, and the app's lifecycle (start, teardown, keep-alive).
// Owner of the `session` slice: {signedIn, agent, message}. On sign-out every other owner resets its own
// state (they subscribe to this slice): nothing here reaches into another module's state.

import * as socket from "./core/socket.js";
import { setUnauthorizedHandler } from "./core/http.js";
import { defineSlice, subscribe } from "./core/store.js";

const session = defineSlice("session", { signedIn: false, agent: null, message: "" }, "session.js");

export function currentAgent() {
  return session.get().agent;
}

/** Supervisors and admins (contact_center/supervisor.py SUPERVISOR_ROLES): the hub lets them into /supervisor. */
export function isSupervisor(agent = session.get().agent) {
  return agent?.role === "supervisor" || agent?.role === "admin";
}

export function isSignedIn() {
  return session.get().signedIn;
}

/** Merge what the hub says about the agent (login answer, /auth/me, hello). */
export function showAgent(agent) {
  if (!agent) return;
  const s = session.get();
  session.set({ ...s, agent: { ...(s.agent || {}), ...agent } }, { type: "agent" });
}

/** Show the console and connect. */
export function startApp(agent) {
  const s = session.get();
  const merged = agent && (agent.username || agent.display_name) ? { ...(s.agent || {}), ...agent } : s.agent;
  session.set({ signedIn: true, agent: merged, message: "" }, { type: "signed_in" });
  socket.connect();
}

/** Back to the sign-in form (with a message to show there, if any). */
export function showLogin(message = "") {
  session.set({ ...session.get(), signedIn: false, message }, { type: "signed_out" });
}

function teardown(message = "") {
  socket.disconnect();
  showLogin(message);
}

export async function logout() {
  try {
    await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
  } catch {
    /* signed out locally anyway */
  }
  teardown();
}

/** The session cookie is gone (idle timeout, logged out elsewhere): back to the sign-in form. */
export function sessionEnded() {
  if (!session.get().signedIn) return;
  teardown("Your session has ended. Please sign in again.");
}

// The session cookie has a 30-minute idle timeout and only /auth/me renews it; the socket does not.
// Renew it every few minutes while the agent is actually using the console.
let lastActivity = Date.now();
let lastRenewal = Date.now();

function keepAlive() {
  for (const type of ["keydown", "pointerdown"]) document.addEventListener(type, () => (lastActivity = Date.now()), { capture: true, passive: true });
  setInterval(async () => {
    if (!session.get().signedIn || lastActivity <= lastRenewal || Date.now() - lastRenewal < 5 * 60 * 1000) return;
    lastRenewal = Date.now();
    try {
      const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (res.status === 401) sessionEnded();
    } catch {
      /* offline: the socket's reconnect logic reports it */
    }
  }, 60 * 1000);
}

export function wire() {
  setUnauthorizedHandler(sessionEnded);
  socket.on("logged_out", () => {
    // the session was ended (a logout in another tab or browser, or its 12-hour limit)
    teardown("Your session has ended. Please sign in again.");
  });
  subscribe("connection", (c) => {
    if (c.state === "ended" && session.get().signedIn) teardown("Your session has ended. Please sign in again.");
  });
  keepAlive();
}

/** At page load: signed in already (a reload) or the sign-in form. */
export async function init() {
  let me = null;
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.ok) me = await res.json().catch(() => ({}));
  } catch {
    /* not signed in or hub down: the login form says the rest */
  }
  if (me) startApp(me.agent || me);
  else showLogin();
}
