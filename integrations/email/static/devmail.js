// /dev/mail: the local outbox (polled every 3 s) and a form that mails the hub's SMTP port as a customer.
// Mail content is only ever put in the page as text (textContent); a message's HTML is shown in a
// sandboxed iframe whose document the server sends with a sandbox Content-Security-Policy.

const base = document.body.dataset.base;
const $ = (id) => document.getElementById(id);
let messages = [];
let shown = null;
let defaultTo = "";

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (cls) node.className = cls;
  return node;
}

async function api(path, options) {
  const resp = await fetch(base + path, options);
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(data.error || `HTTP ${resp.status}`);
  return data;
}

function renderList() {
  const list = $("list");
  list.replaceChildren();
  $("empty").hidden = messages.length > 0;
  for (const m of messages) {
    const li = el("li");
    li.append(el("div", m.subject || "(no subject)", "subject"), el("div", `to ${m.to} · ${m.date}`, "meta"));
    if (m.auto_submitted) li.append(el("div", `Auto-Submitted: ${m.auto_submitted}`, "auto"));
    if (shown === m.id) li.classList.add("active");
    li.addEventListener("click", () => show(m.id));
    list.append(li);
  }
}

function show(id) {
  const m = messages.find((x) => x.id === id);
  if (!m) return;
  shown = id;
  renderList();
  const detail = $("detail");
  detail.replaceChildren();
  const table = el("table");
  for (const [label, key] of [["From", "from"], ["To", "to"], ["Cc", "cc"], ["Reply-To", "reply_to"], ["Subject", "subject"],
    ["Date", "date"], ["Message-ID", "message_id"], ["In-Reply-To", "in_reply_to"], ["References", "references"],
    ["Auto-Submitted", "auto_submitted"], ["X-Loop", "x_loop"]]) {
    if (!m[key]) continue;
    const tr = el("tr");
    tr.append(el("th", label), el("td", m[key]));
    table.append(tr);
  }
  const reply = el("button", "Reply to this");
  reply.addEventListener("click", () => replyTo(m));
  const raw = el("a", "source");
  raw.href = `${base}/api/messages/${encodeURIComponent(m.id)}/raw`;
  raw.target = "_blank";
  raw.rel = "noopener";
  detail.append(table, reply, " ", raw, el("pre", m.text || "(no text part)"));
  if (m.attachments.length) {
    const ul = el("ul");
    for (const a of m.attachments) ul.append(el("li", `${a.name || "(no name)"} · ${a.content_type} · ${a.size} bytes`));
    detail.append(el("h3", "Attachments"), ul);
  }
  if (m.has_html) {
    const toggle = el("button", "Show the HTML part");
    toggle.addEventListener("click", () => {
      const frame = document.createElement("iframe");
      frame.setAttribute("sandbox", "");
      frame.setAttribute("referrerpolicy", "no-referrer");
      frame.title = "the message's HTML part";
      frame.src = `${base}/api/messages/${encodeURIComponent(m.id)}/html`;
      toggle.replaceWith(frame);
    });
    detail.append(toggle);
  }
}

function addressOf(header) {
  const match = /<([^<>]+)>\s*$/.exec(header || "");
  return (match ? match[1] : header || "").trim();
}

function replyTo(m) {
  $("from").value = addressOf(m.to);
  $("to").value = addressOf(m.reply_to) || addressOf(m.from);
  $("subject").value = /^re:/i.test(m.subject) ? m.subject : `Re: ${m.subject}`;
  $("in_reply_to").value = m.message_id;
  $("references").value = `${m.references || ""} ${m.message_id}`.trim();
  $("threading").textContent = `In reply to ${m.message_id}`;
  $("threading").hidden = false;
  $("text").value = `\n\n> ${(m.text || "").trim().split("\n").join("\n> ")}\n`;
  $("text").focus();
  $("text").setSelectionRange(0, 0);
}

function fresh() {
  $("in_reply_to").value = "";
  $("references").value = "";
  $("threading").hidden = true;
  $("to").value = defaultTo;
  $("subject").value = "";
  $("text").value = "";
}

async function refresh() {
  try {
    const data = await api("/api/messages");
    const before = messages.map((m) => m.id).join();
    messages = data.messages;
    if (messages.map((m) => m.id).join() !== before) renderList();
  } catch (err) {
    $("status").textContent = `Could not read the outbox: ${err.message}`;
  }
}

$("form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const status = $("status");
  status.className = "";
  status.textContent = "Sending…";
  const body = Object.fromEntries(new FormData($("form")).entries());
  try {
    const data = await api("/api/send", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    status.textContent = `The hub took it: sent to ${data.to} (${data.message_id}).`;
  } catch (err) {
    status.className = "error";
    status.textContent = err.message;
  }
});
$("fresh").addEventListener("click", fresh);

const setup = await api("/api/setup");
defaultTo = setup.addresses[0] || "";
$("to").value = defaultTo;
$("where").textContent = `the outbox${setup.relay ? " (a relay is set: new mail goes there, not here)" : ""} · mail to the hub goes to SMTP ${setup.smtp}`;
await refresh();
setInterval(refresh, 3000);
