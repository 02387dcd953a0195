// Conversation panes by channel. A pane draws one conversation in the centre column, under the header
// that every channel shares (name, channel, Transfer, Back to bot, Close). Chat, SMS and WhatsApp share
// the transcript + composer pane (panes/messaging.js) with their own config; a call card (voice), an
// email thread view or a co-browse view registers its own pane, in panes/index.js, without touching
// any other.
//
// A pane is an object:
//   {
//     name: "messaging",
//     mount(host)                  once, before its first show: claim or build its root element in host
//     show(conv, config)           this conversation is now the open one (draw it whole)
//     update(conv, change, config) something about the open conversation changed (a `conversations`
//                                  change: message, status, upsert, closed, outbox, reply_failed)
//     hide()                       another pane (or none) takes the centre
//   }
// `config` is what registerPane was given for that channel (the same pane may serve several channels).

const byChannel = new Map(); // channel name -> {pane, config}
let fallback = null;

/** The pane (and its config) for a channel; "*" is the pane of channels nobody registered. */
export function registerPane(channel, pane, config = {}) {
  for (const fn of ["mount", "show", "update", "hide"]) if (typeof pane?.[fn] !== "function") throw new Error(`pane ${pane?.name} has no ${fn}()`);
  const entry = { pane, config: Object.freeze({ ...config }) };
  if (channel === "*") fallback = entry;
  else byChannel.set(channel, entry);
}

export function paneFor(channel) {
  const entry = byChannel.get(channel) || fallback;
  if (!entry) throw new Error(`no pane for channel ${channel} and no fallback`);
  return entry;
}

export function registeredChannels() {
  return [...byChannel.keys()];
}
