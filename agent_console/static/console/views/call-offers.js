// A call's offer: the caller's 360 opens at once (the screen pop, views/customer360.js), the offer card
// rings (it pulses, and a soft ring tone plays while a call is offered: two tones, two seconds on, four
// off, when the browser lets the page play sound). Accept and Decline are the offer card's own
// (views/offers.js). Owns no slice: it follows `offers`.
// A colleague's consultation (a warm transfer) rings the same way: a banner with who consults us about which
// caller, Answer (our ringing leg; we then talk with them while the caller is held) and Decline / Leave. It
// follows `incoming_consult` (model/calls.js).

import { h, key } from "../core/dom.js";
import { read, subscribe } from "../core/store.js";
import { answerConsult, declineConsult, isCallConv } from "../model/calls.js";
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

let banner = null;

function consultBanner() {
  if (banner) return banner;
  const text = h("span", { class: "consult-banner-text", "data-testid": "consult-request-text" });
  const answer = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "consult-answer", text: "Answer" });
  const decline = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "consult-decline", text: "Decline" });
  const error = h("span", { class: "form-error small", role: "alert" });
  const node = h("div", { class: "consult-banner", "data-testid": "consult-request", role: "alertdialog", "aria-label": "A colleague consults you", hidden: true }, text, answer, decline, error);
  answer.addEventListener("click", async () => {
    answer.disabled = true;
    const r = await answerConsult();
    answer.disabled = false;
    error.textContent = r.ok ? "" : r.message;
  });
  decline.addEventListener("click", () => declineConsult());
  document.body.append(node);
  banner = { node, text, answer, decline, error };
  return banner;
}

function renderConsult(request) {
  const b = consultBanner();
  b.node.hidden = !request;
  if (!request) return;
  const caller = request.customerName || request.customerAddress || "a caller";
  b.text.textContent = request.answered
    ? `You are talking with ${request.fromName} about ${caller} (the caller is on hold). They will transfer the call to you or take it back. `
    : `${request.fromName} wants to consult you about ${caller}. `;
  b.answer.hidden = !!request.answered;
  b.decline.textContent = request.answered ? "Leave" : "Decline";
  b.error.textContent = "";
}

function syncRing() {
  const ringing = [...read("offers").values()].some((entry) => isCallOffer(entry.data)) || !!(read("incoming_consult") && !read("incoming_consult").answered);
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
  subscribe("incoming_consult", (request) => {
    renderConsult(request);
    syncRing();
  });
}
