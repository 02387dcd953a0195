// The dev phone: talks to the Twilio stand-in's JSON under this page's own path. Text goes in with
// textContent only; nothing the shop or a customer wrote is ever parsed as HTML.

const base = location.pathname.replace(/\/+$/, '');
const api = (path) => `${base}/api/${path}`;
const $ = (id) => document.getElementById(id);
const CUSTOM = '__custom__';
const TICKS = { queued: '…', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '✗', undelivered: '✗' };

const state = { shopNumbers: [], version: -1, address: '', markedRead: new Set() };

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(message) {
  $('error').textContent = message || '';
}

function myNumber() {
  return $('phone').value === CUSTOM ? $('custom').value.trim() : $('phone').value;
}

function myAddress() {
  const number = myNumber();
  return $('channel').value === 'whatsapp' ? `whatsapp:${number}` : number;
}

function fillShopNumbers() {
  const channel = $('channel').value;
  const select = $('shop');
  select.replaceChildren();
  for (const shop of state.shopNumbers.filter((n) => n.channel === channel)) {
    select.append(new Option(shop.number, shop.address));
  }
  if (!select.options.length) select.append(new Option(`no ${channel} number`, ''));
}

function fillPhones(demoPhones) {
  const select = $('phone');
  for (const phone of demoPhones) select.append(new Option(`${phone.name} ${phone.number}`, phone.number));
  select.append(new Option('Another number…', CUSTOM));
}

function mediaNode(item) {
  const url = api(`media/${encodeURIComponent(item.sid)}`);
  if (item.content_type.startsWith('image/')) {
    const img = el('img');
    img.src = url;
    img.alt = 'attachment';
    return img;
  }
  const link = el('a', '', `attachment (${item.content_type})`);
  link.href = url;
  link.target = '_blank';
  link.rel = 'noopener';
  return link;
}

function metaNode(entry) {
  const meta = el('div', 'meta', entry.at.slice(11, 16));
  if (entry.direction === 'in') {
    const answer = entry.hub_status === null ? 'hub unreachable' : `hub ${entry.hub_status}`;
    meta.append(' · ', answer);
    return meta;
  }
  const tick = el('span', `tick ${entry.status}`, ` ${TICKS[entry.status] || ''} ${entry.status}`);
  meta.append(tick);
  if (entry.error_code) meta.append(` · error ${entry.error_code} ${entry.error_words}`);
  return meta;
}

function bubble(entry) {
  const node = el('div', `bubble ${entry.direction}`);
  for (const item of entry.media) node.append(mediaNode(item));
  if (entry.body) node.append(el('div', '', entry.body));
  node.append(metaNode(entry));
  return node;
}

function markRead(entries) {
  if ($('channel').value !== 'whatsapp' || document.hidden) return;
  for (const entry of entries) {
    if (entry.direction === 'out' && entry.status === 'delivered' && !state.markedRead.has(entry.sid)) {
      state.markedRead.add(entry.sid);
      fetch(api('read'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ sid: entry.sid }) });
    }
  }
}

function render(entries) {
  const thread = $('thread');
  const atBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 40;
  thread.replaceChildren(...entries.map(bubble));
  if (atBottom) thread.scrollTop = thread.scrollHeight;
}

async function poll() {
  const address = myAddress();
  if (!myNumber()) return;
  const response = await fetch(api(`messages?address=${encodeURIComponent(address)}`));
  if (!response.ok) return;
  const data = await response.json();
  if (data.version === state.version && address === state.address) return;
  state.version = data.version;
  state.address = address;
  render(data.messages);
  markRead(data.messages);
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(',', 2)[1] || '');
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function send(event) {
  event.preventDefault();
  showError('');
  const file = $('file').files[0];
  const media = file ? [{ content_type: file.type || 'application/octet-stream', data: await readFile(file) }] : [];
  const payload = { from: myNumber(), to: $('shop').value, body: $('body').value,
    profile_name: $('name').value, media };
  const response = await fetch(api('send'), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError(data.error || `the stand-in answered ${response.status}`);
    return;
  }
  $('body').value = '';
  $('file').value = '';
  $('file-name').textContent = '';
  state.version = -1;
  poll();
}

function restart() {
  state.version = -1;
  $('custom').hidden = $('phone').value !== CUSTOM;
  fillShopNumbers();
  poll();
}

async function start() {
  const response = await fetch(api('setup'));
  const setup = await response.json();
  state.shopNumbers = setup.shop_numbers;
  fillPhones(setup.demo_phones);
  for (const id of ['phone', 'channel']) $(id).addEventListener('change', restart);
  $('custom').addEventListener('change', restart);
  $('compose').addEventListener('submit', send);
  $('file').addEventListener('change', () => { $('file-name').textContent = $('file').files[0]?.name || ''; });
  restart();
  setInterval(() => poll().catch(() => {}), 1000);
}

start().catch((error) => showError(`could not start: ${error}`));
