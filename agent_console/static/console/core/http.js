// HTTP to the hub (the /api/ routes accept the agent's session cookie).

import { humanize } from "./format.js";

let onUnauthorized = () => {};

/** Who to tell when a call comes back 401 (the session module: back to the sign-in form). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

/** A JSON call to the hub: {ok, status, data}; status 0 when the hub could not be reached. */
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch {
    return { ok: false, status: 0, data: null };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    /* not JSON */
  }
  if (res.status === 401) onUnauthorized();
  return { ok: res.ok, status: res.status, data };
}

const FIELD_LABELS = { delivery_address: "Delivery address", phone: "Phone", email: "Email", contact: "Contact", customer_id: "Customer", notes: "Notes", lines: "Lines" };

/** "lines[0].options.size" -> "Line 1 size"; "delivery_address" -> "Delivery address". */
export function fieldLabel(field) {
  const m = /^lines\[(\d+)\](?:\.(?:options\.)?(.+))?$/.exec(String(field || ""));
  if (m) return `Line ${Number(m[1]) + 1}${m[2] ? ` ${humanize(m[2] === "sku" ? "product" : m[2])}` : ""}`;
  return FIELD_LABELS[field] || humanize(field);
}

/** A readable sentence for a failed call. */
export function errorText(r, fallback = "Something went wrong.") {
  if (!r || r.status === 0) return "Cannot reach the hub. Check your connection and try again.";
  const d = r.data && typeof r.data === "object" ? r.data : {};
  const fields = Array.isArray(d.fields) ? d.fields.filter((f) => f && f.field) : [];
  if (fields.length) return fields.map((f) => `${fieldLabel(f.field)}: ${f.reason}`).join(". ");
  if (r.status >= 500) return `Something went wrong on our side (error ${r.status}). Please try again.`;
  return typeof d.message === "string" && d.message ? d.message : `${fallback} (error ${r.status})`;
}
