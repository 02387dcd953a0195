// Which pane shows which channel: one line per channel. A new channel's pane (a call card for voice, an
// email thread view, a co-browse live view) is a module of its own registered here; nothing else changes.

import { registerPane } from "./registry.js";
import { messagingPane } from "./messaging.js";
import { emailPane } from "./email.js";
import { callPane } from "./call.js";
import { replyWindowNotice } from "../channels/reply-window.js";

export function registerPanes() {
  registerPane("chat", messagingPane);
  registerPane("web", messagingPane);
  registerPane("sms", messagingPane); // the SMS meter comes from the channel's `segments` (model/channels.js)
  registerPane("whatsapp", messagingPane, { notice: replyWindowNotice }); // any channel with a reply window gets it too
  registerPane("email", emailPane); // the thread, folded quotes, the sandboxed HTML, CC, the first-response clock
  registerPane("phone", callPane); // the call card: state, timer, mute, hold, transfer, hang up, notes, wrap-up; the bot part above
  registerPane("callback", callPane); // a web callback is a call the hub dials (docs/subsystems/callback.md)
  registerPane("*", messagingPane); // a channel without a pane of its own: its messages and a composer
}
