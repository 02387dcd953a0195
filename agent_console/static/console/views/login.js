// The sign-in form, and which of the two screens (sign-in or console) shows.

import { $ } from "../core/dom.js";
import { subscribe } from "../core/store.js";
import { nextFromLocation } from "../core/next.js";
import { isSupervisor, startApp } from "../session.js";
import { toast } from "./toasts.js";

function render(s, change) {
  if (s.signedIn) {
    $("login-view").hidden = true;
    $("app-view").hidden = false;
    return;
  }
  if (change.type !== "signed_out") return;
  $("app-view").hidden = true;
  $("login-view").hidden = false;
  const err = $("login-error");
  err.textContent = s.message || "";
  err.hidden = !s.message;
  $("login-password").value = "";
  $("login-username").focus();
}

async function login(ev) {
  ev.preventDefault();
  const username = $("login-username").value.trim();
  const password = $("login-password").value;
  const err = $("login-error");
  err.hidden = true;
  if (!username || !password) {
    err.textContent = "Enter your username and password.";
    err.hidden = false;
    return;
  }
  const button = $("login-submit");
  button.disabled = true;
  try {
    const res = await fetch("/auth/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ username, password }),
    });
    if (res.status === 401) {
      err.textContent = "wrong username or password";
      err.hidden = false;
      $("login-password").select();
      return;
    }
    if (!res.ok) {
      err.textContent = res.status === 429 ? "Too many attempts: wait a minute and try again." : `Could not sign in (error ${res.status}).`;
      err.hidden = false;
      return;
    }
    let body = {};
    try {
      body = await res.json();
    } catch {
      /* no body */
    }
    const agent = body.agent || body;
    // /console?next=/supervisor: back where the agent was sent from (a path on this site only: core/next.js)
    const next = nextFromLocation();
    if (next && (!next.startsWith("/supervisor") || isSupervisor(agent))) {
      window.location.replace(next);
      return;
    }
    startApp(agent);
    if (next) toast("The supervisor view is for supervisors: here is your console.");
  } catch {
    err.textContent = "Cannot reach the hub. Check your connection.";
    err.hidden = false;
  } finally {
    button.disabled = false;
  }
}

export function wire() {
  $("login-form").addEventListener("submit", login);
  subscribe("session", render);
}
