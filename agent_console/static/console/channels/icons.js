// Channel icons: small inline SVGs built node by node (no markup strings), 16 px, currentColor.

import { svg } from "../core/dom.js";

const SHAPES = {
  // a speech bubble
  chat: () => [svg("path", { d: "M4 4.5h16a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H10l-5 4v-4H4a1 1 0 0 1-1-1v-10a1 1 0 0 1 1-1z" })],
  // a mobile phone with a text line
  sms: () => [svg("rect", { x: 6, y: 2.5, width: 12, height: 19, rx: 2 }), svg("path", { d: "M9 7.5h6M9 11h4M11 18.5h2" })],
  // a round bubble with a handset (WhatsApp-like, not its logo)
  whatsapp: () => [
    svg("path", { d: "M12 3a9 9 0 0 0-7.7 13.6L3 21l4.5-1.2A9 9 0 1 0 12 3z" }),
    svg("path", { d: "M9 8.5c0 3.3 3.2 6.5 6.5 6.5l1-1.6-2-1-1 .8a5 5 0 0 1-2.2-2.2l.8-1-1-2z" }),
  ],
  // a telephone handset
  voice: () => [svg("path", { d: "M5 3.5h3.5l1.8 4.5-2.3 1.4a11 11 0 0 0 6.6 6.6l1.4-2.3 4.5 1.8V19a1.5 1.5 0 0 1-1.5 1.5A16.5 16.5 0 0 1 3.5 5 1.5 1.5 0 0 1 5 3.5z" })],
  // an envelope
  email: () => [svg("rect", { x: 3, y: 5, width: 18, height: 14, rx: 1.5 }), svg("path", { d: "M3.5 6l8.5 7 8.5-7" })],
  // a screen with a pointer (co-browse)
  cobrowse: () => [svg("rect", { x: 3, y: 4, width: 18, height: 13, rx: 1.5 }), svg("path", { d: "M8 21h8M12 17v4M11 8l4 3-2 .5 1 2-1 .5-1-2-1 1.5z" })],
  // a file (attachments)
  file: () => [svg("path", { d: "M14 3H7a1.5 1.5 0 0 0-1.5 1.5v15A1.5 1.5 0 0 0 7 21h10a1.5 1.5 0 0 0 1.5-1.5V7.5z" }), svg("path", { d: "M14 3v4.5h4.5" })],
  // anything else: a circle with a dot
  generic: () => [svg("circle", { cx: 12, cy: 12, r: 8 }), svg("circle", { cx: 12, cy: 12, r: 1.5 })],
};

/** The SVG icon of a channel's icon name (or "file") (generic when unknown); decorative: the label goes beside it. */
export function channelIcon(name) {
  const shape = SHAPES[name] || SHAPES.generic;
  return svg(
    "svg",
    { class: "ch-icon", viewBox: "0 0 24 24", width: 16, height: 16, fill: "none", stroke: "currentColor", "stroke-width": 1.8, "stroke-linecap": "round", "stroke-linejoin": "round", "aria-hidden": "true", focusable: "false" },
    ...shape(),
  );
}
