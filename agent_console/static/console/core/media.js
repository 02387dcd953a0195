// Which attachment URLs the console shows: only the hub's own media, a same-origin /media/... URL.
// No imports: the browser test loads this module as it is.

/** The URL as a same-origin path when it is one of the hub's /media/ files, else null. */
export function mediaUrl(raw, base = window.location.href) {
  if (typeof raw !== "string" || !raw) return null;
  let u;
  try {
    u = new URL(raw, base);
  } catch {
    return null;
  }
  const origin = new URL(base).origin;
  if (u.origin !== origin || (u.protocol !== "http:" && u.protocol !== "https:")) return null;
  if (!u.pathname.startsWith("/media/")) return null; // after normalisation: /media/../api is /api
  return u.pathname + u.search;
}
