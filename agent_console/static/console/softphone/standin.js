// The stand-in's softphone: the local Twilio stand-in's `client:agent_<id>` leg, driven with no audio
// through the stand-in's dev API (docs/subsystems/phone.md, "The stand-in and the console"):
//
//   GET  {base}/dev/clients/{identity}                         [{call_sid, status, from, to, conference, muted, hold}]
//   POST {base}/dev/clients/{identity}/calls/{call_sid}/answer  answer a ringing leg
//   POST {base}/dev/clients/{identity}/calls/{call_sid}/hangup  hang it up
//
// The legs are looked at every second while the console has a call going (watch(true)), every 4 s otherwise.

import { baseDevice } from "./base.js";

const RINGING = new Set(["queued", "initiated", "ringing"]);
const LIVE = new Set(["in-progress", "answered", "in_progress", "connected"]);
const FAST_MS = 1000;
const SLOW_MS = 4000;
const ERROR_MS = 5000;

async function call(url, method = "GET") {
  let res;
  try {
    res = await fetch(url, { method, credentials: "same-origin", headers: { Accept: "application/json" } });
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  return { ok: res.ok, status: res.status, data };
}

function refusal(r, what) {
  if (r.status === 0) return `Cannot reach the stand-in to ${what}.`;
  const d = r.data && typeof r.data === "object" ? r.data : {};
  const said = typeof d.message === "string" && d.message ? d.message : typeof d.error === "string" ? d.error : "";
  return `The stand-in did not ${what}${said ? `: ${said}` : ` (error ${r.status})`}.`;
}

/** The leg that matters: a live one, else a ringing one, else none. */
export function pickLeg(legs) {
  const list = (Array.isArray(legs) ? legs : []).filter((l) => l && typeof l.call_sid === "string" && l.call_sid);
  return list.find((l) => LIVE.has(String(l.status))) || list.find((l) => RINGING.has(String(l.status))) || null;
}

export function createStandinDevice(config) {
  const identity = String(config.identity || "");
  const base = String(config.base || "/standin/twilio").replace(/\/+$/, "");
  const dev = baseDevice("standin", identity, "Stand-in softphone (no audio)");
  const legsUrl = `${base}/dev/clients/${encodeURIComponent(identity)}`;
  const callUrl = (sid, verb) => `${legsUrl}/calls/${encodeURIComponent(sid)}/${verb}`;
  let running = false;
  let busy = false;
  let timer = null;
  let leg = null;
  let muted = false;

  function schedule(ms) {
    clearTimeout(timer);
    if (running) timer = setTimeout(poll, ms);
  }

  async function poll() {
    if (!running) return;
    const r = await call(legsUrl);
    if (!running) return;
    if (!r.ok || !Array.isArray(r.data)) {
      const message =
        r.status === 404
          ? "The stand-in does not serve the agents' call legs (its dev API answered 404)."
          : r.status === 0
            ? "Cannot reach the stand-in's softphone API."
            : `The stand-in's softphone API failed (error ${r.status}).`;
      leg = null;
      dev.emit({ state: "error", callSid: null, from: "", message });
      return schedule(ERROR_MS);
    }
    const next = pickLeg(r.data);
    if (next?.call_sid !== leg?.call_sid) muted = false;
    leg = next;
    if (!leg) dev.emit({ state: "ready", callSid: null, from: "", muted: false, message: "" });
    else if (LIVE.has(String(leg.status))) dev.emit({ state: "connected", callSid: leg.call_sid, from: String(leg.from || ""), muted: muted || leg.muted === true, message: "" });
    else dev.emit({ state: "ringing", callSid: leg.call_sid, from: String(leg.from || ""), muted: false, message: "" });
    schedule(busy || leg ? FAST_MS : SLOW_MS);
  }

  dev.start = async () => {
    if (running) return;
    running = true;
    dev.emit({ state: "starting", message: "" });
    await poll();
  };
  dev.stop = () => {
    running = false;
    clearTimeout(timer);
    if (leg) call(callUrl(leg.call_sid, "hangup"), "POST"); // best effort: the page is going
    leg = null;
    dev.emit({ state: "off", callSid: null, message: "" });
  };
  dev.watch = (on) => {
    const was = busy;
    busy = !!on;
    if (busy && !was && running) schedule(0);
  };
  dev.answer = async () => {
    if (!leg || !RINGING.has(String(leg.status))) return { ok: false, message: "No call is ringing on this softphone." };
    const r = await call(callUrl(leg.call_sid, "answer"), "POST");
    if (!r.ok) {
      dev.emit({ message: refusal(r, "answer the call") });
      return { ok: false, message: refusal(r, "answer the call") };
    }
    dev.emit({ state: "connected", message: "" });
    schedule(0);
    return { ok: true, message: "" };
  };
  dev.hangup = async () => {
    if (!leg) return { ok: true, message: "" }; // nothing to hang up
    const r = await call(callUrl(leg.call_sid, "hangup"), "POST");
    if (!r.ok && r.status !== 404) return { ok: false, message: refusal(r, "hang up") };
    leg = null;
    muted = false;
    dev.emit({ state: "ready", callSid: null, from: "", muted: false, message: "" });
    schedule(FAST_MS);
    return { ok: true, message: "" };
  };
  dev.mute = async (on) => {
    // no audio here: the caller's side is muted by the hub's call action; the leg only remembers it
    muted = !!on;
    dev.emit({ muted });
    return { ok: true, message: "" };
  };
  return dev;
}
