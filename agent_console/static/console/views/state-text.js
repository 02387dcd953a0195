// The state line's words (views/state-line.js): the agent's state and why, from the presence slice and the hub's
// /console/queues.json view. Pure (no imports): the browser tests load it as the page would and check every case.

const LABELS = { chat: "chats", sms: "SMS", whatsapp: "WhatsApp", email: "emails", phone: "calls" };

function channelLabel(name) {
  return LABELS[name] || name;
}

/** "0:08" */
export function clock(seconds) {
  const s = Math.max(0, Math.ceil(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/** The agent's load against capacity: the busiest channel, from the hub's view (offers count too). */
function loadLine(view) {
  const me = view?.me;
  if (!me) return null;
  const cap = me.capacity || {};
  const load = me.load || {};
  const channels = Object.keys(cap).filter((c) => Number(cap[c]) > 0);
  if (!channels.length) return null;
  const busiest = channels.sort((a, b) => (Number(load[b]) || 0) / cap[b] - (Number(load[a]) || 0) / cap[a] || (a === "chat" ? -1 : 1))[0];
  const n = Number(load[busiest]) || 0;
  return { channel: busiest, label: channelLabel(busiest), load: n, capacity: Number(cap[busiest]), full: n >= Number(cap[busiest]) };
}

/** What the state line says: {state, text, detail}. Pure over its inputs (presence slice, queue view). */
export function describeState(p, view, now = Date.now() / 1000) {
  const status = p?.status || "offline";
  if (status === "offline") return { state: "offline", text: "Offline", detail: "you receive no offers. Choose Available to start." };
  if (status === "away") {
    if (p.reason?.reason === "missed_offers") {
      const n = Number(p.reason.missed) || 2;
      return { state: "away", text: "Away: missed offers", detail: `${n} offers in a row timed out, so the hub paused yours. Choose Available when you are back.` };
    }
    return { state: "away", text: p.by ? `Away (set by ${p.by})` : "Away", detail: "you receive no offers. Choose Available to take chats." };
  }
  if (status === "wrap_up") {
    const left = p.until ? clock(p.until - now) : "";
    return { state: "wrap_up", text: left ? `Wrap-up ${left}` : "Wrap-up", detail: "offers resume after it." };
  }
  const load = loadLine(view);
  if (load?.full) return { state: "capacity", text: `At capacity ${load.load}/${load.capacity}`, detail: `no new ${load.label} until one of yours closes.` };
  const busy = load ? `${load.load} of ${load.capacity} ${load.label}` : "";
  return { state: "available", text: "Available", detail: busy ? `${busy} · new offers ring here.` : "new offers ring here." };
}
