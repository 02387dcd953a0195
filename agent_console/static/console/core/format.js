// Formatting: times, money, words.

export const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
export const dateTimeFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit" });
export const dateFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", year: "numeric" });
export const shortFmt = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

export function toDate(iso) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(String(iso));
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3])) : new Date(iso); // a date alone is a local day
}

/** A compact time for lists: the time today, day and time this year, the full date before. */
export function when(iso) {
  if (!iso) return "";
  const d = toDate(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return timeFmt.format(d);
  return d.getFullYear() === now.getFullYear() ? shortFmt.format(d) : dateFmt.format(d);
}

export function fmt(iso, f = timeFmt) {
  if (!iso) return "";
  const d = toDate(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : f.format(d);
}

/** Milliseconds since the epoch of an ISO time, or 0. */
export function epochMs(iso) {
  if (!iso) return 0;
  const t = toDate(iso).getTime();
  return Number.isNaN(t) ? 0 : t;
}

export function humanize(s) {
  return String(s ?? "").replace(/_/g, " ");
}

export function initials(name) {
  const parts = String(name || "?").trim().split(/\s+/).filter(Boolean);
  return ((parts[0]?.[0] || "?") + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

const MONEY_EXPONENTS = { BHD: 3, CLP: 0, ISK: 0, JOD: 3, JPY: 0, KRW: 0, KWD: 3, OMR: 3, TND: 3, VND: 0 };

/** Minor units as the hub shows money: 1999 -> "19.99 EUR". */
export function money(minor, currency = "EUR") {
  if (typeof minor !== "number" || !Number.isFinite(minor)) return "";
  const code = String(currency || "EUR").toUpperCase();
  const exp = MONEY_EXPONENTS[code] ?? 2;
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(Math.round(minor));
  if (exp === 0) return `${sign}${abs} ${code}`;
  return `${sign}${Math.floor(abs / 10 ** exp)}.${String(abs % 10 ** exp).padStart(exp, "0")} ${code}`;
}

export function optionsText(options) {
  return Object.entries(options || {})
    .map(([k, v]) => `${humanize(k)} ${v}`)
    .join(" · ");
}

/** 1536 -> "1.5 KB". */
export function bytes(n) {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 0) return "";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10240 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}

/** Lower case without accents, for searching ("Lindqvíst" matches "lindqvist"). */
export function fold(s) {
  return String(s ?? "")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase();
}
