// The words of an offer's notice (views/offers.js): what became of an offer the agent declined or let time out.
// Pure (no imports): the browser tests load it as the page would and check every case.

/** "20 seconds", "1 minute", "2 minutes 30 seconds". */
export function duration(seconds) {
  const s = Math.max(1, Math.round(Number(seconds)));
  const m = Math.floor(s / 60);
  const rest = s % 60;
  const part = (n, unit) => `${n} ${unit}${n === 1 ? "" : "s"}`;
  if (!m) return part(s, "second");
  return rest ? `${part(m, "minute")} ${part(rest, "second")}` : part(m, "minute");
}

/** The notice's words. `skipSeconds`: how long the hub will not offer it to this agent again (null: not said). */
export function noticeText(kind, name, skipSeconds) {
  const skip = Number(skipSeconds);
  const known = Number.isFinite(skip) && skipSeconds !== null && skipSeconds !== undefined && skipSeconds !== "";
  const again = !known ? "" : skip > 0 ? ` It will not be offered to you again for ${duration(skip)}.` : " It may be offered to you again.";
  if (kind === "declined") return `You declined ${name}. It is back in the queue for another agent.${again}`;
  if (kind === "ended") return `While you were away, your conversation with ${name} ended or went back to the queue for another agent.`;
  if (kind === "left") return `${name} left before the offer was answered: nothing to do.`;
  return `Missed: ${name}. The offer timed out and went back to the queue.${again}`;
}
