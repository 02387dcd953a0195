// The offer's sound: a short two-tone beep made with Web Audio (no file to load). On by default; the volume
// and the off switch are the agent's preference in this browser (core/prefs.js "sound").
// Browsers only let a page play sound after the person interacted with it: the AudioContext is made (or
// resumed) on the first click or key press, which signing in always is.

import { loadPref, savePref } from "./prefs.js";

const DEFAULTS = { on: true, volume: 0.6 };
let ctx = null;
let played = 0; // how many beeps actually started (the browser tests read it through data-beeps)

export function soundPrefs() {
  const p = loadPref("sound", DEFAULTS);
  const volume = Number(p.volume);
  return { on: p.on !== false, volume: Number.isFinite(volume) ? Math.max(0, Math.min(1, volume)) : DEFAULTS.volume };
}

export function setSoundPrefs(patch) {
  savePref("sound", { ...soundPrefs(), ...patch });
}

function context() {
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) return null;
  if (!ctx) {
    try {
      ctx = new Ctx();
    } catch {
      return null;
    }
  }
  if (ctx.state === "suspended") ctx.resume().catch(() => {});
  return ctx;
}

/** Unlock audio on a user gesture (called once from a click or key press). */
export function unlock() {
  context();
}

/** Two short tones (A5 then E6), at the chosen volume; nothing when the sound is off or audio is unavailable.
 *  Returns whether it played. `force`: the settings' "Test" button plays even when off. */
export function beep({ force = false } = {}) {
  const prefs = soundPrefs();
  if ((!prefs.on && !force) || prefs.volume <= 0) return false;
  const ac = context();
  if (!ac) return false;
  const t0 = ac.currentTime + 0.01;
  for (const [freq, start] of [[880, 0], [1318.5, 0.18]]) {
    const osc = ac.createOscillator();
    const gain = ac.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    gain.gain.setValueAtTime(0.0001, t0 + start);
    gain.gain.exponentialRampToValueAtTime(Math.max(0.0002, 0.5 * prefs.volume), t0 + start + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + start + 0.16);
    osc.connect(gain).connect(ac.destination);
    osc.start(t0 + start);
    osc.stop(t0 + start + 0.18);
  }
  played += 1;
  document.documentElement.dataset.beeps = String(played);
  return true;
}
