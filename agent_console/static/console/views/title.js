// The page title counts what waits for the agent: offers and unread messages ("(3) Agent console").

import { subscribe } from "../core/store.js";
import { allConvs } from "../model/conversations.js";
import { offerCount } from "./offers.js";

function render() {
  let count = offerCount();
  for (const c of allConvs()) count += c.unread;
  document.title = (count ? `(${count}) ` : "") + "Agent console · Contact centre";
}

export function wire() {
  subscribe("offers", render);
  subscribe("conversations", render);
  render();
}
