// The top bar's softphone line: which softphone takes this browser's calls and how it is (ready,
// ringing, connected, not working and why; or that calls cannot be taken here). Hidden while the hub has
// no channel with calls. Owns no slice: it draws `softphone`.

import { $, h } from "../core/dom.js";
import { subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";
import { describe } from "../softphone/phone.js";

function render(s) {
  const el = $("softphone-status");
  const words = describe(s);
  el.hidden = !words;
  el.dataset.mode = s.mode || "";
  el.dataset.state = s.state;
  el.title = words;
  const short = s.mode === "none" || s.state === "off" ? "Calls: not on this browser" : s.state === "error" ? "Softphone: not working" : `Softphone: ${s.state === "ringing" ? "ringing" : s.state === "connected" ? "on a call" : s.state}`;
  el.replaceChildren(channelIcon("voice"), h("span", { text: short }));
}

export function wire() {
  subscribe("softphone", render);
}
