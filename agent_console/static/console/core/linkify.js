// Links in message text, safely: http, https and mailto URLs become <a> elements (target a new tab, rel
// "noopener noreferrer"), everything else stays text. Built node by node (text nodes and one element per link),
// never through innerHTML; a URL's href is what the URL parser normalised, and anything whose scheme is not one of
// the three stays text. Pure (DOM only): the browser tests load it and try the hostile cases.

const CANDIDATE = /\b(?:https?:\/\/|mailto:|www\.)[^\s<>"'`]+|[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/gi;
const TRAILING = /[.,;:!?)\]}'"»]+$/;
const ALLOWED = new Set(["http:", "https:", "mailto:"]);

/** The safe href of a candidate, or null. */
export function safeHref(raw) {
  let candidate = raw;
  if (/^www\./i.test(candidate)) candidate = `https://${candidate}`;
  else if (!/^(?:https?:|mailto:)/i.test(candidate) && candidate.includes("@")) candidate = `mailto:${candidate}`;
  let url;
  try {
    url = new URL(candidate);
  } catch {
    return null;
  }
  if (!ALLOWED.has(url.protocol)) return null;
  if (url.protocol !== "mailto:" && !url.hostname) return null;
  if (url.username || url.password) return null; // https://trusted.example@evil.example: a lie about the host
  return url.href;
}

/** `text` as a DocumentFragment of text nodes and safe links. */
export function linkify(text, doc = document) {
  const frag = doc.createDocumentFragment();
  const s = String(text ?? "");
  let last = 0;
  for (const m of s.matchAll(CANDIDATE)) {
    let raw = m[0];
    const trail = raw.match(TRAILING);
    if (trail) {
      // keep a closing bracket that belongs to the URL (Wikipedia's "Foo_(bar)")
      const opens = (raw.match(/\(/g) || []).length;
      let cut = trail[0];
      if (cut.startsWith(")") && opens > 0) cut = cut.slice(1);
      raw = raw.slice(0, raw.length - cut.length);
    }
    const href = raw ? safeHref(raw) : null;
    if (!href) continue;
    if (m.index > last) frag.append(doc.createTextNode(s.slice(last, m.index)));
    const a = doc.createElement("a");
    a.href = href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = raw;
    frag.append(a);
    last = m.index + raw.length;
  }
  if (last < s.length) frag.append(doc.createTextNode(s.slice(last)));
  return frag;
}
