// A call's offer: the caller's 360 opens at once (the screen pop, views/customer360.js), the offer card
// rings (it pulses, and a soft ring tone plays while a call is offered: two tones, two seconds on, four
// off, when the browser lets the page play sound). Accept and Decline are the offer card's own
// (views/offers.js). Owns no slice: it follows `offers`.

import { key } from "../core/dom.js";
import { read, subscribe } from "../core/store.js";
import { isCallConv } from "../model/calls.js";
import { popCustomer } from "./customer360.js";

let audio = null;
let ringTimer = null;

function isCallOffer(offer) {
  return !!offer && isCallConv({ channel: offer.channel || "web" });
}

function ringOnce() {
  try {
    audio = audio || new AudioContext();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    const gain = audio.createGain();
    gain.gain.value = 0.04;
    gain.connect(audio.destination);
    const t = audio.currentTime;
    for (const freq of [440, 480]) {
      const osc = audio.createOscillator();
      osc.frequency.value = freq;
      osc.connect(gain);
      osc.start(t);
      osc.stop(t + 2);
    }
  } catch {
    /* no sound here: the card still pulses */
  }
}

function syncRing() {
  const ringing = [...read("offers").values()].some((entry) => isCallOffer(entry.data));
  if (ringing && !ringTimer) {
    ringOnce();
    ringTimer = setInterval(ringOnce, 6000);
  } else if (!ringing && ringTimer) {
    clearInterval(ringTimer);
    ringTimer = null;
  }
}

export function wire() {
  subscribe("offers", (offers, change) => {
    if (change.type === "added") {
      const entry = offers.get(key(change.id));
      if (entry && isCallOffer(entry.data)) {
        entry.node.classList.add("ringing");
        entry.node.dataset.call = "true";
        popCustomer(entry.data.customer?.id ?? entry.data.customer_id ?? null);
      }
    }
    syncRing();
  });
}
