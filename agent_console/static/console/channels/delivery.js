// Delivery status of outbound messages: forward-only updates (as contact_center/domain/channels.py
// `moves_forward`) and how a status reads ("sent ✓, delivered ✓✓, read ✓✓ coloured, failed ⚠").

const RANK = { queued: 0, sent: 1, delivered: 2, undelivered: 2, failed: 2, read: 3 };
const FINAL = new Set(["failed", "undelivered"]);

export function isStatus(s) {
  return typeof s === "string" && Object.hasOwn(RANK, s);
}

/** Whether `next` may replace `current`: statuses only move forward, and failures are final. */
export function movesForward(current, next) {
  if (!isStatus(next)) return false;
  if (!isStatus(current)) return true;
  if (FINAL.has(current)) return false;
  if (FINAL.has(next)) return RANK[current] < RANK.delivered;
  return RANK[next] > RANK[current];
}

export function isFailure(s) {
  return FINAL.has(s);
}

// Twilio's error codes an agent meets most, in words (the hub's own message wins when it sends one).
const CODE_WORDS = {
  21211: "the phone number is not valid",
  21610: "the customer has opted out (texted STOP)",
  21614: "the number is not a mobile number",
  30003: "the phone is unreachable or switched off",
  30004: "the message was blocked",
  30005: "the number does not exist",
  30006: "the number is a landline or its carrier cannot receive it",
  30007: "the carrier filtered the message",
  30008: "the carrier reported an unknown error",
  63016: "outside the 24-hour window: WhatsApp only accepts a template",
};

/** The error of a failed message in words. */
export function errorWords(error) {
  if (!error || typeof error !== "object") return "no reason given";
  if (typeof error.message === "string" && error.message.trim()) return error.message.trim();
  const words = CODE_WORDS[Number(error.code)];
  if (words) return words;
  return error.code != null ? `error ${error.code}` : "no reason given";
}

/** {glyph, label} of a status for the ticks next to a message. */
export function statusView(status, error) {
  switch (status) {
    case "queued":
      return { glyph: "…", label: "Queued" };
    case "sent":
      return { glyph: "✓", label: "Sent" };
    case "delivered":
      return { glyph: "✓✓", label: "Delivered" };
    case "read":
      return { glyph: "✓✓", label: "Read" };
    case "failed":
      return { glyph: "⚠", label: `Not sent: ${errorWords(error)}` };
    case "undelivered":
      return { glyph: "⚠", label: `Not delivered: ${errorWords(error)}` };
    default:
      return null;
  }
}
