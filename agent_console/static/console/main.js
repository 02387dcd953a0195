// The agent console: one page, ES modules bundled by esbuild (docs/subsystems/console.md).
// Protocol: docs/subsystems/realtime.md (Socket.IO namespace /agent, session cookie from POST /auth/login).
// This file only wires the modules together, in an order that matters where noted.

import * as socket from "./core/socket.js";
import * as session from "./session.js";
import * as channels from "./model/channels.js";
import * as conversations from "./model/conversations.js";
import * as calls from "./model/calls.js";
import * as softphone from "./softphone/phone.js";
import { registerPanes } from "./panes/index.js";
import * as login from "./views/login.js";
import * as statusbar from "./views/statusbar.js";
import * as offers from "./views/offers.js";
import * as callOffers from "./views/call-offers.js";
import * as softphoneStatus from "./views/softphone-status.js";
import * as conversationList from "./views/conversation-list.js";
import * as conversationView from "./views/conversation-view.js";
import * as closeForm from "./views/close.js";
import * as transfer from "./views/transfer.js";
import * as handback from "./views/handback.js";
import * as rightPanel from "./views/right-panel.js";
import * as orderLookup from "./views/order-lookup.js";
import * as customer360 from "./views/customer360.js";
import * as newOrder from "./views/new-order.js";
import * as title from "./views/title.js";
import * as offerAlerts from "./views/offer-alerts.js";
import * as stateLine from "./views/state-line.js";
import * as continuity from "./views/continuity.js";
import * as shortcuts from "./views/shortcuts.js";
import * as panels from "./views/panels.js";
import * as cobrowse from "./views/cobrowse.js";
import * as documents from "./views/documents.js";

/** hello: who we are, our status, the channels, then offers before conversations (an offer of a
 *  conversation already ours is ignored), then open the first conversation after a reload. */
function onHello(hello) {
  if (!hello) return;
  session.showAgent(hello.agent);
  statusbar.setStatusUi(hello.status || "offline", { reason: hello.status_reason, remember: false });
  statusbar.restoreLastStatus(hello.status || "offline");
  channels.setFromHello(hello.channels);
  offers.syncFromHello(hello.offers);
  const before = continuity.openBeforeHello();
  conversations.mergeHello(hello.conversations);
  continuity.explainGone(before, hello);
  if (conversations.activeId() === null) {
    const first = conversations.allConvs().find((c) => !c.closed);
    if (first) conversations.selectConv(first.id);
  }
}

function wire() {
  registerPanes();
  // models first: on sign-out they reset before the views redraw
  session.wire();
  channels.wire();
  conversations.wire();
  softphone.wire(); // after channels: it starts once the hub lists a channel with calls
  calls.wire();
  // views; among the `active` subscribers the centre (pane) draws before the 360 loads
  login.wire();
  statusbar.wire();
  softphoneStatus.wire();
  offers.wire();
  callOffers.wire();
  conversationList.wire();
  conversationView.wire();
  closeForm.wire();
  transfer.wire();
  handback.wire();
  rightPanel.wire();
  orderLookup.wire();
  customer360.wire();
  newOrder.wire();
  title.wire();
  offerAlerts.wire();
  stateLine.wire();
  continuity.wire();
  shortcuts.wire();
  panels.wire();
  cobrowse.wire();
  documents.wire();
  socket.on("hello", onHello);
}

wire();
session.init();
