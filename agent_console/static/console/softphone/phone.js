// The console's softphone: started once the agent is signed in and the hub has a channel with calls
// (a `hello.channels` entry with `call_actions`), stopped on sign-out. It asks the hub which softphone
// to use (GET /console/voice/token) and holds that device (softphone/device.js).
// Owner of the `softphone` slice: {mode: null|"twilio"|"standin"|"phone"|"none", label, identity, state, callSid,
// from, muted, message, since, tokenExpiresAt}. The call model (model/calls.js) answers, hangs up and mutes
// through the commands below; views only read the slice.

import { api, errorText } from "../core/http.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import { createDevice } from "./device.js";

const INITIAL = Object.freeze({ mode: null, label: "", identity: "", state: "off", callSid: null, from: "", muted: false, message: "", since: 0, tokenExpiresAt: null });
const softphone = defineSlice("softphone", INITIAL, "softphone/phone.js");
const RETRY_MS = 10_000;

let device = null;
let starting = null;
let generation = 0; // a sign-out while starting discards what that start made
let retryTimer = null;
let busy = false;

/** The hub lists a channel that has calls. */
export function hubHasCalls() {
  const list = read("channels");
  return Array.isArray(list) && list.some((c) => Array.isArray(c.call_actions) && c.call_actions.length > 0);
}

async function fetchConfig() {
  const r = await api("/console/voice/token");
  if (!r.ok || !r.data || typeof r.data !== "object") throw new Error(errorText(r, "Could not ask the hub for the softphone"));
  return r.data;
}

function publish(dev, s) {
  softphone.set({ mode: dev.mode, label: dev.label, identity: dev.identity, ...s }, { type: "state", previous: softphone.get().state });
}

async function start() {
  if (device || starting) return;
  const mine = ++generation;
  clearTimeout(retryTimer);
  softphone.set({ ...INITIAL, state: "starting", message: "Setting up the softphone…" }, { type: "starting" });
  starting = (async () => {
    let config;
    try {
      config = await fetchConfig();
    } catch (err) {
      if (mine !== generation) return;
      softphone.set({ ...INITIAL, state: "error", message: `${err.message} Trying again shortly.` }, { type: "error" });
      retryTimer = setTimeout(() => mine === generation && start(), RETRY_MS);
      return;
    }
    if (mine !== generation) return;
    let dev;
    try {
      dev = await createDevice(config, { fetchConfig });
    } catch (err) {
      // e.g. the SDK's chunk could not be loaded
      if (mine === generation) softphone.set({ ...INITIAL, mode: config.mode, state: "error", message: `The softphone could not start: ${err?.message || err}` }, { type: "error" });
      return;
    }
    if (mine !== generation) return dev.stop();
    device = dev;
    dev.on((s) => mine === generation && publish(dev, s));
    publish(dev, dev.state);
    dev.watch(busy);
    await dev.start();
  })().finally(() => {
    if (mine === generation) starting = null;
  });
  return starting;
}

function stop() {
  generation++;
  clearTimeout(retryTimer);
  starting = null;
  const dev = device;
  device = null;
  dev?.stop();
  softphone.set(INITIAL, { type: "reset" });
}

/** The agent's own number for calls (null: the softphone again); the softphone starts again with the hub's new answer. */
export async function setOwnNumber(number) {
  const r = await api("/console/voice/phone", { method: "PUT", body: { phone_number: number || null } });
  if (!r.ok) return { ok: false, message: errorText(r, "The number could not be saved") };
  stop();
  sync();
  return { ok: true, number: r.data?.phone_number || null };
}

const NONE = { ok: false, message: "The softphone is not ready." };

/** Answer the leg that rings. */
export function answer() {
  return device ? device.answer() : Promise.resolve(NONE);
}

/** Hang up (or reject) our leg; fine when there is none. */
export function hangup() {
  return device ? device.hangup() : Promise.resolve({ ok: true, message: "" });
}

/** Mute or unmute the agent's microphone. */
export function mute(on) {
  return device ? device.mute(on) : Promise.resolve(NONE);
}

/** The console has a call going (the stand-in then looks for its leg every second). */
export function watch(on) {
  busy = !!on;
  device?.watch(busy);
}

/** The words for the softphone's state, for the call card and the top bar. */
export function describe(s = softphone.get()) {
  if (!s.mode && s.state === "off") return "";
  if (s.state === "off" || s.mode === "none") return s.message || "Calls cannot be taken on this browser.";
  const words = { starting: "starting…", ready: "ready", ringing: "your line is ringing", connected: "your line is connected", error: "not working" }[s.state] || s.state;
  const who = s.label || "Softphone";
  const muted = s.state === "connected" && s.muted ? " · muted" : "";
  return `${who}: ${words}${muted}${s.message ? ` — ${s.message}` : ""}`;
}

function sync() {
  const signedIn = read("session").signedIn;
  if (signedIn && hubHasCalls()) start();
  else if (!signedIn && (device || starting || softphone.get().mode !== null || softphone.get().state !== "off")) stop();
}

export function wire() {
  subscribe("channels", sync);
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") stop();
    else sync();
  });
}
