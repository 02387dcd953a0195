// The shared half of every softphone (softphone/device.js describes the interface): its state, its
// listeners, the refusals of a device that has nothing to do, and when to refresh a token.

export const STATES = ["off", "starting", "ready", "ringing", "connected", "error"];

/** The shared half of every device: its state and the listeners. `emit(patch)` is for the implementation. */
export function baseDevice(mode, identity, label) {
  const subs = new Set();
  const dev = {
    mode,
    identity: identity || "",
    label,
    state: { state: "starting", callSid: null, from: "", muted: false, message: "", since: Date.now(), tokenExpiresAt: null },
    on(fn) {
      subs.add(fn);
      return () => subs.delete(fn);
    },
    emit(patch) {
      const prev = dev.state;
      const next = { ...prev, ...patch };
      if (next.state !== prev.state) next.since = Date.now();
      if (Object.keys(next).every((k) => next[k] === prev[k])) return;
      dev.state = next;
      for (const fn of [...subs]) {
        try {
          fn(next, prev);
        } catch (err) {
          setTimeout(() => {
            throw err;
          });
        }
      }
    },
    async start() {},
    stop() {},
    async answer() {
      return { ok: false, message: "No call is ringing on this softphone." };
    },
    async hangup() {
      return { ok: false, message: "No call on this softphone." };
    },
    async mute() {
      return { ok: false, message: "No call on this softphone." };
    },
    watch() {},
  };
  return dev;
}

/** When to ask for a new token (ms from now): two minutes before it expires, or half-way for a short one. */
export function refreshDelayMs(expiresAt, nowMs = Date.now()) {
  const left = Number(expiresAt) * 1000 - nowMs;
  if (!Number.isFinite(left)) return 60_000;
  return Math.max(5_000, left > 240_000 ? left - 120_000 : left / 2);
}
