// Where to go after signing in: the `next` of /console?next=/supervisor (the hub sends a supervisor there when
// their session is missing). Only a path on this site is followed, never another site: `next` comes from a URL
// anyone can send an agent, so an absolute URL would make the sign-in page an open redirect.

/**
 * `raw` if it is a path on `origin` (normalised: path, query, hash), else null.
 *
 * Accepted: one "/" then the path ("/supervisor", "/supervisor?x=1#y"). Refused: empty, not starting with "/",
 * "//host" and "/\host" (both mean another host to a browser), any backslash, control or whitespace character
 * (a browser drops tabs and newlines, so "/\t/evil" would become "//evil"), anything with a scheme
 * ("https://...", "javascript:..."), and whatever still resolves to another origin.
 */
export function safeNextPath(raw, origin) {
  if (typeof raw !== "string" || raw.length === 0 || raw.length > 2048) return null;
  if (raw[0] !== "/" || raw[1] === "/" || raw[1] === "\\") return null;
  if (/[\\\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(raw)) return null;
  let url;
  try {
    url = new URL(raw, origin);
  } catch {
    return null;
  }
  if (url.origin !== origin || (url.protocol !== "http:" && url.protocol !== "https:")) return null;
  return url.pathname + url.search + url.hash;
}

/** The page's own `next`, when it is safe and not the console itself (else null: stay on the console). */
export function nextFromLocation(loc = window.location) {
  const raw = new URLSearchParams(loc.search).get("next");
  const path = safeNextPath(raw, loc.origin);
  if (!path || path === "/console" || path.startsWith("/console?") || path.startsWith("/console#")) return null;
  return path;
}
