// The demo shop's page (shop.html): the catalogue from /shop/products.json, with category filters.
// A module of its own (not inline) so the page's Content-Security-Policy allows no inline script.
// Every product field goes into the page as text (textContent), never as HTML.

const grid = document.getElementById("products");
const note = document.getElementById("products-note");
const filters = document.getElementById("filters");
const palette = ["#2563eb", "#0f766e", "#7c3aed", "#b45309", "#be123c", "#4d7c0f", "#0369a1", "#475569"];
let products = [];
let category = null;

function colour(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return palette[h % palette.length];
}
function price(p) {
  if (typeof p.price === "string") return p.price;
  if (typeof p.price === "number") {
    try { return new Intl.NumberFormat(undefined, { style: "currency", currency: p.currency || "EUR" }).format(p.price); }
    catch { return p.price.toFixed(2); }
  }
  return "";
}
function el(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = String(text);
  return n;
}
function card(p) {
  const c = el("article", "card");
  c.dataset.testid = "product";
  c.dataset.sku = String(p.sku ?? "");
  const initials = String(p.name || "?").split(/\s+/).slice(0, 2).map((w) => w[0] || "").join("").toUpperCase();
  const thumb = el("div", "thumb", initials);
  thumb.style.background = colour(p.category || p.name);
  thumb.setAttribute("aria-hidden", "true");
  const body = el("div", "body");
  body.append(el("div", "cat", String(p.category || "").replace(/_/g, " ")), el("div", "name", p.name));
  const row = el("div", "row");
  row.append(el("span", "price", price(p)), el("span", p.in_stock ? "stock" : "stock out", p.in_stock ? "In stock" : "Out of stock"));
  body.append(row);
  c.append(thumb, body);
  return c;
}
function render() {
  const shown = products.filter((p) => !category || p.category === category);
  grid.replaceChildren(...shown.map(card));
  note.hidden = shown.length > 0;
  note.textContent = "No products here yet.";
  for (const b of filters.children) b.setAttribute("aria-pressed", String((b.dataset.category || null) === category));
}
function renderFilters() {
  const cats = [...new Set(products.map((p) => p.category).filter(Boolean))].sort();
  const all = el("button", null, "All");
  all.type = "button";
  all.addEventListener("click", () => { category = null; render(); });
  const buttons = cats.map((c) => {
    const b = el("button", null, String(c).replace(/_/g, " "));
    b.type = "button";
    b.dataset.category = c;
    b.addEventListener("click", () => { category = c; render(); });
    return b;
  });
  filters.replaceChildren(all, ...buttons);
}
try {
  const res = await fetch("/shop/products.json", { headers: { Accept: "application/json" } });
  if (!res.ok) throw new Error(String(res.status));
  const data = await res.json();
  products = Array.isArray(data) ? data : (data.products || data.items || []);
  renderFilters();
  render();
} catch (e) {
  note.textContent = "The catalogue is unavailable right now.";
}

// "Log in as a demo customer" (issue 19): only when the hub has its dev route (the demo data on, no real
// WIDGET_IDENTITY_SECRET). The hub signs a token for a demo customer with orders, as a shop's own server would
// (docs/security.md, "Signed customer identity"); the chat widget reconnects with it and shows "Your orders".
// The token lives in sessionStorage (this tab), like a shop's login session.
const DEMO_KEY = "cc_demo_login";

function demoLogin() {
  try { return JSON.parse(sessionStorage.getItem(DEMO_KEY) || "null"); } catch { return null; }
}

async function setupDemoLogin() {
  const bar = document.querySelector("header .bar");
  if (!bar || !window.ccWidget) return;
  let offer;
  try {
    const res = await fetch("/dev/widget-identity", { headers: { Accept: "application/json" } });
    if (!res.ok) return; // not a demo hub: no switch
    offer = await res.json();
  } catch { return; }
  const customers = Array.isArray(offer.customers) ? offer.customers : [];
  if (!customers.length) return;
  const button = el("button", null, "");
  button.type = "button";
  button.dataset.testid = "demo-login";
  Object.assign(button.style, { font: "inherit", fontSize: "13px", border: "1px solid #d1d5db", background: "#fff",
    borderRadius: "999px", padding: "5px 12px", cursor: "pointer", color: "#1f2328" });
  const render = () => {
    const who = demoLogin();
    button.textContent = who ? `Signed in as ${who.display_name} · Log out` : "Log in as a demo customer";
    button.setAttribute("aria-pressed", String(!!who));
  };
  async function logIn() {
    const res = await fetch("/dev/widget-identity", { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ customer_id: customers[0].customer_id }) });
    if (!res.ok) throw new Error(String(res.status));
    const got = await res.json();
    sessionStorage.setItem(DEMO_KEY, JSON.stringify({ token: got.token, display_name: String(got.display_name || "") }));
    window.ccWidget.identify(got.token);
  }
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      if (demoLogin()) {
        sessionStorage.removeItem(DEMO_KEY);
        window.ccWidget.identify(null);
      } else {
        await logIn();
      }
    } catch {
      button.textContent = "Demo login failed";
      return;
    } finally {
      button.disabled = false;
    }
    render();
  });
  window.addEventListener("cc-identity-refused", () => { sessionStorage.removeItem(DEMO_KEY); render(); });
  bar.append(button);
  render();
  const saved = demoLogin();
  if (saved && saved.token) window.ccWidget.identify(saved.token);
}
setupDemoLogin();
