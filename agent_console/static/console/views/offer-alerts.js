// Offers that cannot be missed: every new offer beeps (core/sound.js, on by default, the volume and the off switch
// remembered in this browser), shows a desktop notification when the agent allowed them and is looking elsewhere,
// and is announced to screen readers (#offer-announce, an assertive live region). The permission for desktop
// notifications is asked on a gesture that means "I want work": choosing Available, or the Alerts panel's Allow;
// never on load.
// No slice of its own: it reads `offers` (views/offers.js) and `presence` (views/statusbar.js).

import { $, h, key } from "../core/dom.js";
import { beep, setSoundPrefs, soundPrefs, unlock } from "../core/sound.js";
import { subscribe } from "../core/store.js";
import { humanize } from "../core/format.js";
import { channelInfo } from "../model/channels.js";
import { offerName } from "./offers.js";

const shown = new Map(); // conversation id -> Notification

function notificationsSupported() {
  return typeof window.Notification === "function";
}

function permission() {
  return notificationsSupported() ? Notification.permission : "unsupported";
}

/** Ask for the desktop notification permission (must run inside a user gesture). */
export function askNotifications() {
  if (permission() !== "default") return;
  try {
    const asked = Notification.requestPermission(renderSettings);
    if (asked && typeof asked.then === "function") asked.then(renderSettings, renderSettings);
  } catch {
    /* an old browser: nothing to ask */
  }
}

function announce(text) {
  const region = $("offer-announce");
  // a live region only speaks changes: clear, then set on the next frame
  region.textContent = "";
  requestAnimationFrame(() => (region.textContent = text));
}

function describe(offer) {
  const name = offerName(offer);
  const channel = channelInfo(offer.channel || "web", offer.channel_label).label;
  const secs = Math.max(0, Math.round((Number(offer.expires_at) || 0) - Date.now() / 1000));
  const queue = offer.queue ? `, queue ${humanize(offer.queue)}` : "";
  return { name, channel, text: `New ${channel} offer from ${name}${queue}. ${secs} seconds to accept: press Alt+A.` };
}

function onOffers(map, change) {
  if (change.type === "added") {
    const entry = map.get(change.id);
    if (!entry) return;
    const { name, channel, text } = describe(entry.data);
    beep();
    announce(text);
    if (permission() === "granted" && (document.hidden || !document.hasFocus())) {
      try {
        const n = new Notification(`New ${channel}: ${name}`, {
          body: entry.data.preview ? String(entry.data.preview).slice(0, 140) : "Accept it in the agent console.",
          tag: `offer-${change.id}`,
          requireInteraction: true,
        });
        n.onclick = () => {
          window.focus();
          entry.node.querySelector('[data-testid="offer-accept"]')?.focus();
          n.close();
        };
        shown.set(change.id, n);
      } catch {
        /* notifications refused at the last moment: the sound and the card remain */
      }
    }
  } else if (change.type === "removed" || change.type === "reset") {
    for (const [id, n] of [...shown]) {
      if (change.type === "reset" || id === key(change.id)) {
        n.close();
        shown.delete(id);
      }
    }
  }
}

// ---------- the Alerts panel (top bar)

function renderSettings() {
  const prefs = soundPrefs();
  $("sound-on").checked = prefs.on;
  $("sound-volume").value = String(Math.round(prefs.volume * 100));
  $("sound-volume").disabled = !prefs.on;
  $("alerts-toggle").dataset.sound = prefs.on ? "on" : "off";
  $("alerts-toggle-label").textContent = prefs.on ? "Sound on" : "Sound off";
  const p = permission();
  const words = {
    granted: "Desktop notifications are on for this browser.",
    denied: "Desktop notifications are blocked: allow them in the browser's site settings.",
    default: "Desktop notifications are off.",
    unsupported: "This browser has no desktop notifications.",
  };
  $("notify-state").textContent = words[p] || words.default;
  $("notify-state").dataset.permission = p;
  $("notify-allow").hidden = p !== "default";
}

function setPanel(open) {
  $("alert-settings").hidden = !open;
  $("alerts-toggle").setAttribute("aria-expanded", String(open));
  if (open) {
    renderSettings();
    $("sound-on").focus();
  }
}

export function wire() {
  subscribe("offers", onOffers);
  // audio may only start after a gesture: unlock it on the first one
  const once = () => {
    unlock();
    window.removeEventListener("pointerdown", once, true);
    window.removeEventListener("keydown", once, true);
  };
  window.addEventListener("pointerdown", once, true);
  window.addEventListener("keydown", once, true);
  // the sensible moment to ask: the agent makes themselves Available (a gesture, and they now want offers)
  $("status-select").addEventListener("change", (ev) => {
    if (ev.target.value === "available") askNotifications();
  });
  $("alerts-toggle").addEventListener("click", () => setPanel($("alert-settings").hidden));
  $("alert-settings").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") {
      ev.preventDefault();
      setPanel(false);
      $("alerts-toggle").focus();
    }
  });
  document.addEventListener("pointerdown", (ev) => {
    if (!$("alert-settings").hidden && !ev.target.closest?.("#alert-settings, #alerts-toggle")) setPanel(false);
  });
  $("sound-on").addEventListener("change", (ev) => {
    setSoundPrefs({ on: ev.target.checked });
    renderSettings();
  });
  $("sound-volume").addEventListener("input", (ev) => setSoundPrefs({ volume: Number(ev.target.value) / 100 }));
  $("sound-volume").addEventListener("change", () => beep({ force: true }));
  $("sound-test").addEventListener("click", () => beep({ force: true }));
  $("notify-allow").addEventListener("click", askNotifications);
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") setPanel(false);
  });
  renderSettings();
}
