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
