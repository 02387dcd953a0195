// Twilio's softphone: the Voice JavaScript SDK (@twilio/voice-sdk, pinned in package.json, bundled by
// esbuild into a chunk of its own that only loads when the hub says "twilio").
//
// The Device registers with the access token the hub minted (GET /console/voice/token: a VoiceGrant for
// `agent_<id>`, at most an hour). A new token is fetched before the old one expires (two minutes before,
// or half-way through a short one; also on the SDK's `tokenWillExpire`) and handed to device.updateToken.
// The hub's voice adapter dials `client:agent_<id>` into the call's conference when the agent accepts: that
// leg arrives as the Device's `incoming` call, which the call model answers (softphone/phone.js).

import { Device } from "@twilio/voice-sdk";
import { baseDevice, refreshDelayMs } from "./base.js";

const RETRY_MS = 15_000;

/** A Twilio SDK error in words: "Signaling connection error (error 53000)." */
export function twilioErrorText(err) {
  if (!err) return "Twilio's softphone failed.";
  const words = String(err.explanation || err.description || err.message || err).replace(/[.\s]+$/, "");
  return `${words}${err.code ? ` (error ${err.code})` : ""}.`;
}

export function createTwilioDevice(config, { fetchConfig } = {}) {
  const dev = baseDevice("twilio", config.identity, "Twilio softphone");
  let device = null;
  let current = null; // the SDK's Call of our leg
  let token = config.token;
  let expiresAt = Number(config.expires_at) || null;
  let refreshTimer = null;
  let refreshing = null;
  let stopped = false;

  function legState() {
    if (!current) return { state: device?.state === "registered" ? "ready" : "starting", callSid: null, from: "", muted: false };
    const status = current.status();
    return {
      state: status === "pending" ? "ringing" : status === "closed" ? "ready" : "connected",
      callSid: current.parameters?.CallSid || null,
      from: current.parameters?.From || "",
      muted: current.isMuted(),
    };
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    if (stopped || !expiresAt) return;
    refreshTimer = setTimeout(refresh, refreshDelayMs(expiresAt));
  }

  async function refresh() {
    if (stopped || refreshing || typeof fetchConfig !== "function") return refreshing;
    refreshing = (async () => {
      const fresh = await fetchConfig().catch(() => null);
      if (stopped) return;
      if (!fresh || fresh.mode !== "twilio" || typeof fresh.token !== "string" || !fresh.token) {
        dev.emit({ message: "Could not renew the softphone's access: trying again shortly." });
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(refresh, RETRY_MS);
        return;
      }
      token = fresh.token;
      expiresAt = Number(fresh.expires_at) || null;
      device?.updateToken(token);
      dev.emit({ tokenExpiresAt: expiresAt, message: dev.state.state === "error" ? dev.state.message : "" });
      scheduleRefresh();
    })().finally(() => {
      refreshing = null;
    });
    return refreshing;
  }

  function onIncoming(call) {
    if (current && current.status() !== "closed") {
      call.reject(); // one leg at a time: a call takes the whole agent
      return;
    }
    current = call;
    const done = () => {
      if (current !== call) return;
      current = null;
      dev.emit({ ...legState(), message: "" });
    };
    call.on("accept", () => dev.emit({ ...legState(), message: "" }));
    call.on("mute", () => dev.emit(legState()));
    call.on("disconnect", done);
    call.on("cancel", done);
    call.on("reject", done);
    call.on("error", (err) => dev.emit({ message: twilioErrorText(err) }));
    dev.emit({ ...legState(), message: "" });
  }

  dev.start = async () => {
    stopped = false;
    if (!Device.isSupported) {
      dev.emit({ state: "error", message: "This browser cannot run Twilio's softphone (no WebRTC): use a current Chrome, Edge, Firefox or Safari." });
      return;
    }
    dev.emit({ state: "starting", tokenExpiresAt: expiresAt, message: "Connecting to Twilio…" });
    device = new Device(token, {
      codecPreferences: ["opus", "pcmu"],
      closeProtection: "A call is in progress: leaving this page hangs it up.",
      tokenRefreshMs: 60_000,
      logLevel: "warn",
    });
    device.on("registered", () => dev.emit({ ...legState(), message: "" }));
    device.on("unregistered", () => !stopped && dev.emit({ state: "starting", message: "Reconnecting to Twilio…" }));
    device.on("error", (err) => dev.emit({ state: current ? dev.state.state : "error", message: twilioErrorText(err) }));
    device.on("incoming", onIncoming);
    device.on("tokenWillExpire", () => refresh());
    scheduleRefresh();
    try {
      await device.register();
    } catch (err) {
      if (!stopped) dev.emit({ state: "error", message: twilioErrorText(err) });
    }
  };

  dev.stop = () => {
    stopped = true;
    clearTimeout(refreshTimer);
    try {
      current?.disconnect();
      device?.destroy();
    } catch {
      /* going anyway */
    }
    current = null;
    device = null;
    dev.emit({ state: "off", callSid: null, message: "" });
  };

  dev.answer = async () => {
    if (!current || current.status() !== "pending") return { ok: false, message: "No call is ringing on this softphone." };
    try {
      current.accept();
      return { ok: true, message: "" };
    } catch (err) {
      return { ok: false, message: twilioErrorText(err) };
    }
  };

  dev.hangup = async () => {
    if (!current) return { ok: true, message: "" };
    try {
      if (current.status() === "pending") current.reject();
      else current.disconnect();
      return { ok: true, message: "" };
    } catch (err) {
      return { ok: false, message: twilioErrorText(err) };
    }
  };

  dev.mute = async (on) => {
    if (!current || current.status() === "pending") return { ok: false, message: "No call on this softphone." };
    current.mute(!!on);
    return { ok: true, message: "" };
  };

  return dev;
}
