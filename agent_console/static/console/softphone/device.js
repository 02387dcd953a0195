// The softphone: where the agent's leg of a call rings. One interface, whichever softphone the hub says
// this browser uses (GET /console/voice/token, contact_center/console_voice.py; docs/subsystems/phone.md):
//
//   "twilio"   Twilio's Voice JavaScript SDK (softphone/twilio.js, loaded on first use: its own chunk),
//              registered with an access token the hub mints, asked for again before it expires;
//   "standin"  the local Twilio stand-in's agent leg, no audio (softphone/standin.js), through its dev API;
//   "phone"    the agent takes calls on their own phone number (set in the top bar; PUT /console/voice/phone):
//              the hub rings that number for their leg, they answer it there; nothing rings in the browser;
//   "none"     no softphone: calls cannot be taken on this browser (the reason says why).
//
//   const device = await createDevice(config, { fetchConfig });  // config: the hub's answer
//   device.mode, device.identity, device.label
//   device.state          {state, callSid, from, muted, message, since, tokenExpiresAt}
//   device.on(fn)         fn(state, previous) on every change; returns the unsubscribe function
//   await device.start()  register (Twilio) or start watching the client's legs (stand-in)
//   device.stop()         unregister / stop watching; a live leg is dropped
//   await device.answer() answer the ringing leg             -> {ok, message}
//   await device.hangup() hang the leg up (a ringing one: reject) -> {ok, message}
//   await device.mute(on) the microphone (the stand-in has no audio: only the state)  -> {ok, message}
//   device.watch(busy)    the console has a call going: look for its leg often (stand-in)
//
// States: "off" (no softphone), "starting", "ready" (no leg), "ringing" (a leg rings: answer it),
// "connected" (the leg is answered), "error" (`message` says why in words; the device keeps trying).
// No module but softphone/phone.js holds a device; everyone else reads the `softphone` slice.

import { baseDevice } from "./base.js";
import { createStandinDevice } from "./standin.js";

export { STATES, refreshDelayMs } from "./base.js";

/** No softphone on this browser: the hub has neither Twilio Voice settings nor the stand-in. */
export function noDevice(config) {
  const dev = baseDevice("none", config?.identity, "No softphone");
  const reason = typeof config?.reason === "string" && config.reason ? config.reason : "the hub has no softphone for this browser";
  const message = `Calls cannot be taken on this browser: ${reason}.`;
  dev.emit({ state: "off", message });
  const refuse = async () => ({ ok: false, message });
  Object.assign(dev, { answer: refuse, hangup: refuse, mute: refuse });
  return dev;
}

/** The agent's own phone: the hub rings their number; the call card follows the hub's statuses of that leg. */
export function ownPhoneDevice(config) {
  const number = typeof config?.number === "string" ? config.number : "";
  const dev = baseDevice("phone", config?.identity, `Your phone ${number}`);
  dev.number = number;
  dev.emit({ state: "ready", message: "calls ring this number: answer them there" });
  Object.assign(dev, {
    answer: async () => ({ ok: true, message: "Answer on your phone." }),
    hangup: async () => ({ ok: true, message: "" }), // the hub ends the call; the phone's own leg follows
    mute: async () => ({ ok: false, message: "Mute on your phone." }),
  });
  return dev;
}

/** The device for the hub's answer. `fetchConfig()` asks the hub again (a fresh Twilio token). */
export async function createDevice(config, deps = {}) {
  if (config?.mode === "twilio" && typeof config.token === "string" && config.token) {
    const { createTwilioDevice } = await import("./twilio.js"); // Twilio's SDK: its own chunk, only here
    return createTwilioDevice(config, deps);
  }
  if (config?.mode === "phone") return ownPhoneDevice(config);
  if (config?.mode === "standin") return createStandinDevice(config, deps);
  return noDevice(config);
}
