// The supervisor page's DOM helpers (supervisor.js, supervisor-evaluation.js, supervisor-callback-settings.js): one copy.
// Data goes into the page as text (textContent / text nodes), never as HTML.

export const $ = (id) => document.getElementById(id);

/** Build an element. props: class, text, value and checked (as properties), on<event>, any attribute;
 *  children: nodes or strings (as text). */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key === "value") node.value = value;
    else if (key === "checked") node.checked = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
