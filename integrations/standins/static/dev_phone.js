// The dev phone: texts and calls the shop through the Twilio stand-in's JSON under this page's own path.
// Text goes in with textContent only; nothing the shop or a customer wrote is ever parsed as HTML. What
// the shop says on a call (<Say>) is shown and spoken with the browser's speech synthesis.

const base = location.pathname.replace(/\/+$/, '');
const api = (path) => `${base}/api/${path}`;
const $ = (id) => document.getElementById(id);
const CUSTOM = '__custom__';
const TICKS = { queued: '…', sent: '✓', delivered: '✓✓', read: '✓✓', failed: '✗', undelivered: '✗' };

const state = { shopNumbers: [], voiceNumbers: [], version: -1, address: '', markedRead: new Set(),
  tab: 'messages', callVersion: -1, callNumber: '', callSid: '', spokenUpTo: null, call: null };

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
  state.callVersion = -1;
  $('custom').hidden = $('phone').value !== CUSTOM;
  fillShopNumbers();
  poll();
  pollCalls().catch(() => {});
}

// --- calls ---------------------------------------------------------------------------------------

const ENDED = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);

function showCallError(message) {
  $('call-error').textContent = message || '';
}

function showTab(tab) {
  state.tab = tab;
  $('tab-messages').setAttribute('aria-selected', String(tab === 'messages'));
  $('tab-call').setAttribute('aria-selected', String(tab === 'call'));
  $('messages-panel').hidden = tab !== 'messages';
  $('call-panel').hidden = tab !== 'call';
  if (tab === 'call' && !$('channel').value.startsWith('sms')) {
    $('channel').value = 'sms';
    restart();
  }
}

async function postJson(path, payload) {
  const response = await fetch(api(path), { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(payload || {}) });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `the stand-in answered ${response.status}`);
  return data;
}

function speak(text) {
  if (!$('speak').checked || !('speechSynthesis' in window)) return;
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = 'en-US';
  window.speechSynthesis.speak(utterance);
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

function callLine(entry) {
  const line = el('div', `line ${entry.kind}`);
  const prefix = { play: '', note: '', error: '⚠ ' }[entry.kind] || '';
  line.textContent = prefix + entry.text;
  line.title = entry.at;
  return line;
}

function renderStatus(call) {
  const status = $('call-status');
  status.replaceChildren();
  if (!call) {
    status.textContent = 'No call';
  } else {
    const incoming = call.direction !== 'inbound';
    const who = incoming ? `call from ${call.from}` : `call to ${call.to}`;
    status.append(`${who}: ${call.status}`);
    if (call.conference) status.append(call.hold ? ' · on hold' : ' · with the shop');
    if (call.answered) {
      const end = call.ended ? new Date(call.ended) : new Date();
      status.append(el('span', 'timer', clock((end - new Date(call.answered)) / 1000)));
    }
  }
  const live = call && !ENDED.has(call.status);
  const ringingHere = live && call.direction !== 'inbound' && call.status === 'ringing';
  $('call-button').hidden = Boolean(live);
  $('answer-button').hidden = !ringingHere;
  $('hangup-button').hidden = !live;
  $('hangup-button').textContent = ringingHere ? 'Decline' : 'Hang up';
}

function renderListening(call) {
  const listening = call && !ENDED.has(call.status) ? call.listening : null;
  const hints = $('hints');
  hints.replaceChildren();
  if (!listening) {
    $('listening').textContent = '';
    return;
  }
  const ways = [];
  if (listening.input.includes('dtmf')) {
    ways.push(listening.finish_on_key ? `keys (end with ${listening.finish_on_key})` : 'keys');
  }
  if (listening.input.includes('speech')) ways.push('speech');
  $('listening').textContent = listening.kind === 'record'
    ? 'The shop is recording: say something, or press a key to stop'
    : `The shop is listening: ${ways.join(' or ')}`;
  for (const hint of listening.hints.slice(0, 12)) {
    const chip = el('button', '', hint);
    chip.type = 'button';
    chip.addEventListener('click', () => { $('speech').value = hint; $('speech').focus(); });
    hints.append(chip);
  }
}

function renderCall(call) {
  state.call = call;
  renderStatus(call);
  renderListening(call);
  const transcript = $('transcript');
  const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 40;
  transcript.replaceChildren(...(call ? call.transcript.map(callLine) : []));
  if (atBottom) transcript.scrollTop = transcript.scrollHeight;
  if (!call) return;
  const newest = call.transcript.length ? call.transcript[call.transcript.length - 1].id : 0;
  if (state.spokenUpTo === null) {
    state.spokenUpTo = newest; // the page just opened: speak only what comes next
  } else if (state.callSid !== call.call_sid) {
    state.spokenUpTo = ENDED.has(call.status) ? newest : 0; // a new call (a ringing one, say): from its start
  }
  state.callSid = call.call_sid;
  for (const entry of call.transcript) {
    if (entry.id > state.spokenUpTo && entry.kind === 'say') speak(entry.text);
  }
  state.spokenUpTo = Math.max(state.spokenUpTo, newest);
}

async function pollCalls() {
  const number = myNumber();
  if (!number) return;
  const response = await fetch(api(`calls?number=${encodeURIComponent(number)}`));
  if (!response.ok) return;
  const data = await response.json();
  if (data.version === state.callVersion && number === state.callNumber) {
    if (state.call) renderStatus(state.call);
    return;
  }
  state.callVersion = data.version;
  state.callNumber = number;
  const live = data.calls.filter((c) => !ENDED.has(c.status));
  const call = live.length ? live[live.length - 1] : (data.calls.find((c) => c.call_sid === state.callSid)
    || data.calls[data.calls.length - 1] || null);
  renderCall(call);
}

async function callShop() {
  showCallError('');
  const to = state.voiceNumbers.includes($('shop').value) ? $('shop').value : state.voiceNumbers[0];
  try {
    const data = await postJson('call', { from: myNumber(), to });
    state.callSid = data.call_sid;
    state.spokenUpTo = 0;
    state.callVersion = -1;
    await pollCalls();
  } catch (error) {
    showCallError(String(error.message || error));
  }
}

async function callAction(action, payload) {
  showCallError('');
  if (!state.call) return;
  try {
    const data = await postJson(`calls/${encodeURIComponent(state.call.call_sid)}/${action}`, payload);
    if (data.accepted === false) showCallError('Nothing on the line was listening for that.');
    state.callVersion = -1;
    await pollCalls();
  } catch (error) {
    showCallError(String(error.message || error));
  }
}

function fillKeypad() {
  for (const key of ['1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '0', '#']) {
    const button = el('button', '', key);
    button.type = 'button';
    button.addEventListener('click', () => callAction('digits', { digits: key }));
    $('keypad').append(button);
  }
}

function startCalls() {
  fillKeypad();
  $('tab-messages').addEventListener('click', () => showTab('messages'));
  $('tab-call').addEventListener('click', () => showTab('call'));
  $('call-button').addEventListener('click', callShop);
  $('answer-button').addEventListener('click', () => callAction('answer'));
  $('hangup-button').addEventListener('click', () => callAction('hangup'));
  $('speech-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const text = $('speech').value.trim();
    if (!text) return;
    const confidence = Math.min(1, Math.max(0, Number($('confidence').value) || 0));
    $('speech').value = '';
    callAction('speech', { text, confidence });
  });
  setInterval(() => pollCalls().catch(() => {}), 1000);
}

async function start() {
  const response = await fetch(api('setup'));
  const setup = await response.json();
  state.shopNumbers = setup.shop_numbers;
  state.voiceNumbers = setup.voice_numbers || [];
  fillPhones(setup.demo_phones);
  startCalls();
  for (const id of ['phone', 'channel']) $(id).addEventListener('change', restart);
  $('custom').addEventListener('change', restart);
  $('compose').addEventListener('submit', send);
  $('file').addEventListener('change', () => { $('file-name').textContent = $('file').files[0]?.name || ''; });
  restart();
  setInterval(() => poll().catch(() => {}), 1000);
}

start().catch((error) => showError(`could not start: ${error}`));
