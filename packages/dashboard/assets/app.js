// The dashboard page: renders each snapshot the server pushes on /events (server-sent events,
// about once a second). Plain browser JavaScript, no dependencies, no build step.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
const int = (n) => Math.round(n).toLocaleString('en-US');
const pct = (r) => (r === null || r === undefined ? '–' : `${Math.round(r * 100)}%`);
const KIND_LABEL = { producer: 'producer', processor: 'processors', batcher: 'batcher', slot: 'batch slot' };
const COLUMNS = ['producer', 'processor', 'batcher', 'slot'];

let history = [];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

function duration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Producers → processors → batchers → batch slots, one column each, edges between. */
function drawTopology(stages) {
  const svg = $('topology');
  const width = svg.clientWidth || 1000;
  const byKind = COLUMNS.map((kind) => stages.filter((s) => s.kind === kind)).filter((col) => col.length > 0);
  const nodeW = Math.min(210, (width - 40) / byKind.length - 40);
  const nodeH = 84;
  const gapY = 14;
  const height = Math.max(...byKind.map((col) => col.length)) * (nodeH + gapY) + 10;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.style.height = `${height}px`;
  const pos = new Map();
  byKind.forEach((col, c) => {
    const x = 20 + c * ((width - 40 - nodeW) / Math.max(1, byKind.length - 1));
    const top = (height - col.length * (nodeH + gapY) + gapY) / 2;
    col.forEach((stage, r) => pos.set(stage.id, { x, y: top + r * (nodeH + gapY) }));
  });
  svg.replaceChildren();
  for (const stage of stages) {
    const from = pos.get(stage.id);
    for (const target of stage.to) {
      const to = pos.get(target);
      if (!from || !to) continue;
      const x1 = from.x + nodeW, y1 = from.y + nodeH / 2, x2 = to.x, y2 = to.y + nodeH / 2, mx = (x1 + x2) / 2;
      svg.append(el('path', { class: 'edge', d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}` }));
    }
  }
  for (const stage of stages) {
    const { x, y } = pos.get(stage.id);
    const g = el('g', { class: 'node', 'data-stage': stage.id, transform: `translate(${x},${y})` });
    g.append(el('rect', { width: nodeW, height: nodeH, rx: 6 }));
    g.append(el('text', { class: 'kind', x: 10, y: 16 }, stage.kind === 'slot' ? KIND_LABEL.slot : `${KIND_LABEL[stage.kind]} ×${stage.concurrency}`));
    g.append(el('text', { class: 'title', x: 10, y: 33 }, stage.name));
    g.append(el('text', { class: 'metric', x: 10, y: 52, 'data-metric': 'throughput' }, `${stage.kind === 'slot' ? '≈' : ''}${int(stage.perSecond)} msg/s`));
    g.append(el('text', { class: 'metric', x: 10, y: 70, 'data-metric': 'in-flight' }, stage.inFlight === null ? '' : `in flight ${int(stage.inFlight)}`));
    if (stage.load !== null) {
      g.append(el('text', { class: 'metric', x: nodeW - 10, y: 52, 'text-anchor': 'end', 'data-metric': 'load' }, `load ${pct(stage.load)}`));
      g.append(el('rect', { class: 'loadbar-bg', x: nodeW - 60, y: 62, width: 50, height: 6, rx: 3 }));
      g.append(el('rect', { class: 'loadbar', x: nodeW - 60, y: 62, width: Math.max(0, Math.min(1, stage.load)) * 50, height: 6, rx: 3 }));
    }
    svg.append(g);
  }
}

/** Acked, failed and in per second over the kept history, on one linear scale. */
function drawChart() {
  const svg = $('chart');
  const width = svg.clientWidth || 1000;
  const height = 180;
  const left = 60, right = 10, top = 10, bottom = 22;
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.replaceChildren();
  const max = Math.max(1, ...history.flatMap((p) => [p.acked, p.failed, p.in]));
  const scaleMax = niceCeil(max);
  const t1 = history.length ? history[history.length - 1].t : Date.now();
  // The kept history, at least one minute and at most five: a young pipeline fills the width.
  const span = Math.min(5 * 60_000, Math.max(60_000, history.length ? t1 - history[0].t : 0));
  const t0 = t1 - span;
  const X = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const Y = (v) => top + (1 - v / scaleMax) * (height - top - bottom);
  for (let i = 0; i <= 4; i++) {
    const v = (scaleMax * i) / 4;
    svg.append(el('line', { class: 'grid', x1: left, x2: width - right, y1: Y(v), y2: Y(v) }));
    svg.append(el('text', { class: 'axis', x: left - 6, y: Y(v) + 4, 'text-anchor': 'end' }, int(v)));
  }
  const step = span <= 60_000 ? 10_000 : 60_000;
  for (let ago = 0; ago <= span; ago += step) {
    const label = ago === 0 ? 'now' : step < 60_000 ? `-${ago / 1000}s` : `-${ago / 60_000}m`;
    svg.append(el('text', { class: 'axis', x: X(t1 - ago), y: height - 6, 'text-anchor': ago === span ? 'start' : 'middle' }, label));
  }
  for (const key of ['in', 'failed', 'acked']) {
    const points = history.filter((p) => p.t >= t0).map((p) => `${X(p.t).toFixed(1)},${Y(p[key]).toFixed(1)}`);
    if (points.length > 1) svg.append(el('polyline', { class: `series ${key}`, points: points.join(' ') }));
  }
}

function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawFailures(failures) {
  const body = $('failures').tBodies[0];
  body.replaceChildren();
  if (failures.length === 0) {
    body.innerHTML = '<tr><td class="muted">none</td></tr>';
    return;
  }
  for (const f of failures) {
    const tr = document.createElement('tr');
    const count = document.createElement('td');
    count.className = 'count';
    count.textContent = int(f.count);
    const reason = document.createElement('td');
    reason.textContent = f.reason;
    tr.append(count, reason);
    body.append(tr);
  }
}

let formFilled = false;
function drawRateLimit(s) {
  const r = s.rateLimiting;
  $('rate-limit').textContent = r
    ? `${int(r.allowedMessages)} messages per ${int(r.interval)} ms (≈ ${int((r.allowedMessages * 1000) / r.interval)}/s) · demand held back ${int(r.throttled)} times`
    : 'off (start the pipeline with producer.rateLimiting to limit it)';
  $('rate-limit').dataset.allowed = r ? String(r.allowedMessages) : '';
  $('rate-limit').dataset.interval = r ? String(r.interval) : '';
  const form = $('rate-form');
  form.hidden = !(s.allowControl && r);
  if (r && !formFilled) {
    $('rate-allowed').value = r.allowedMessages;
    $('rate-interval').value = r.interval;
    formFilled = true;
  }
}

function render(s) {
  $('pipeline-name').textContent = s.pipeline;
  document.title = `${s.pipeline} · Throughway`;
  const state = $('state');
  state.textContent = s.state;
  state.className = `state ${s.state}`;
  $('elapsed').textContent = `up ${duration(s.elapsedMs)}`;
  $('throughput').textContent = int(s.rates.acked);
  $('acked-total').textContent = int(s.totals.acked);
  $('failed-total').textContent = int(s.totals.failed);
  $('in-flight').textContent = int(s.totals.unacked);
  $('in-rate').textContent = int(s.rates.in);
  drawTopology(s.stages);
  drawChart();
  drawFailures(s.failures);
  drawRateLimit(s);
}

$('rate-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const result = $('rate-result');
  result.textContent = 'applying…';
  try {
    const res = await fetch('api/rate-limit', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ allowedMessages: Number($('rate-allowed').value), interval: Number($('rate-interval').value) }),
    });
    const body = await res.json();
    result.textContent = res.ok ? `now ${int(body.allowedMessages)} per ${int(body.interval)} ms` : `refused: ${body.error}`;
  } catch (error) {
    result.textContent = `failed: ${error.message}`;
  }
});

const events = new EventSource('events');
events.onmessage = (event) => {
  const s = JSON.parse(event.data);
  if (s.history) history = s.history;
  else history.push({ t: Date.now(), in: s.rates.in, acked: s.rates.acked, failed: s.rates.failed });
  if (history.length > 300) history.splice(0, history.length - 300);
  render(s);
};
events.onerror = () => {
  const state = $('state');
  if (state.textContent !== 'stopped') {
    state.textContent = 'disconnected';
    state.className = 'state disconnected';
  }
};
window.addEventListener('resize', () => drawChart());
