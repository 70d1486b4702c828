// The live dashboard: polls /v1/stats once a second and draws the last two
// minutes of each figure as a small SVG chart. No dependencies.

const KEEP = 120; // samples kept (2 minutes at 1 per second)
const PALETTE = ['#5fb3ff', '#3ecf8e', '#f5b83d', '#ff6b6b', '#b48cff', '#4dd0e1', '#ff9f43', '#c0ca33'];

const $ = (id) => document.getElementById(id);
const samples = []; // { t, s } with s the /v1/stats answer
const series = {}; // card id -> array of arrays (one per line)
const huntSeries = new Map(); // hunt -> players over time
const nodeSeries = new Map(); // node -> connections over time
window.dash = { samples, last: null, errors: 0 };

// Cards: each shows a current value, a line under it and a chart. value
// returns a number (or undefined for "-"); lines returns one or more series
// points for this sample.
const cards = [
  {
    id: 'conns', title: 'Connections',
    value: (s) => s.connections.total,
    sub: (s) => `${s.connections.loops.length} loops: ${s.connections.loops.join(' / ')}`,
  },
  {
    id: 'loops', title: 'Connections per loop', multi: true,
    value: (s) => Math.max(...s.connections.loops),
    fmt: (v, s) => s.connections.loops.join(' / '),
    lines: (s) => s.connections.loops,
    legend: (s) => s.connections.loops.map((_, i) => `loop ${i}`),
  },
  {
    id: 'in', title: 'Messages in / s',
    value: (s, r) => r && r.in,
    sub: (s) => `total ${fmtInt(s.messages.in)}`,
    rate: true,
  },
  {
    id: 'out', title: 'Messages out / s',
    value: (s, r) => r && r.out,
    sub: (s) => `total ${fmtInt(s.messages.out)}`,
    rate: true,
  },
  {
    id: 'dig', title: 'Dig latency p99',
    value: (s) => s.latency_ms?.dig_p99,
    fmt: fmtMs,
    sub: () => 'last interval',
  },
  {
    id: 'fanout', title: 'Fan-out latency p99',
    value: (s) => s.latency_ms?.fanout_p99,
    fmt: fmtMs,
    sub: () => 'update in to last frame written',
  },
  {
    id: 'slow', title: 'Slow closes (1008)',
    value: (s) => s.slow_closes,
    sub: (s, r) => r ? `${fmtRate(r.slow)} / s now` : '',
  },
  {
    id: 'ratelimit', title: 'Rate-limit closes',
    value: (s) => s.rate_limit_closes,
    sub: (s, r) => r ? `${fmtRate(r.ratelimit)} / s now` : '',
  },
  {
    id: 'refused', title: 'Refused joins',
    value: (s) => s.joins_refused,
    sub: (s, r) => r && r.refused !== undefined ? `${fmtRate(r.refused)} / s now` : '',
  },
];

function build() {
  const main = $('cards');
  for (const c of cards) {
    const el = document.createElement('div');
    el.className = 'card';
    el.id = `card-${c.id}`;
    el.innerHTML = `<h2></h2><div class="value" id="v-${c.id}">-</div><div class="sub" id="s-${c.id}"></div>` +
      `<svg class="chart" id="c-${c.id}" viewBox="0 0 300 64" preserveAspectRatio="none"></svg>` +
      (c.multi ? `<div class="legend" id="l-${c.id}"></div>` : '');
    el.querySelector('h2').textContent = c.title;
    main.append(el);
    series[c.id] = [];
  }
}

async function tick() {
  let s;
  try {
    const r = await fetch('/v1/stats', { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    s = await r.json();
  } catch (e) {
    window.dash.errors++;
    $('live').textContent = 'unreachable';
    $('live').className = 'pill bad';
    return;
  }
  $('live').textContent = s.draining ? 'draining' : 'live';
  $('live').className = `pill ${s.draining ? 'bad' : 'ok'}`;
  const t = performance.now();
  const prev = samples[samples.length - 1];
  samples.push({ t, s });
  if (samples.length > KEEP) samples.shift();
  window.dash.last = s;
  let rates;
  if (prev) {
    const dt = (t - prev.t) / 1000;
    const d = (f) => {
      const a = f(s), b = f(prev.s);
      return a === undefined || b === undefined ? undefined : Math.max(0, (a - b) / dt);
    };
    rates = {
      in: d((x) => x.messages.in), out: d((x) => x.messages.out),
      slow: d((x) => x.slow_closes), ratelimit: d((x) => x.rate_limit_closes), refused: d((x) => x.joins_refused),
    };
  }
  for (const c of cards) {
    const v = c.value(s, rates);
    const el = $(`v-${c.id}`);
    el.textContent = v === undefined || v === null ? '-' : (c.fmt ? c.fmt(v, s) : c.rate ? fmtRate(v) : fmtInt(v));
    el.dataset.value = v === undefined || v === null ? '' : String(v);
    $(`s-${c.id}`).textContent = c.sub ? c.sub(s, rates) : '';
    const pts = c.lines ? c.lines(s) : [v === undefined || v === null ? NaN : v];
    const ser = series[c.id];
    for (let i = 0; i < pts.length; i++) {
      ser[i] = ser[i] || [];
      ser[i].push(pts[i]);
      if (ser[i].length > KEEP) ser[i].shift();
    }
    ser.length = pts.length;
    chart($(`c-${c.id}`), ser);
    if (c.legend) {
      $(`l-${c.id}`).innerHTML = c.legend(s).map((n, i) => `<span><svg width="8" height="8"><rect width="8" height="8" rx="2" fill="${PALETTE[i % PALETTE.length]}"/></svg> ${n}</span>`).join('');
    }
  }
  hunts(s);
  nodes(s);
  $('uptime').textContent = fmtDuration(s.uptime_s);
  $('updated').textContent = new Date().toLocaleTimeString();
}

function hunts(s) {
  const names = Object.keys(s.hunts || {}).sort();
  for (const n of names) {
    const a = huntSeries.get(n) || [];
    a.push(s.hunts[n].players);
    if (a.length > KEEP) a.shift();
    huntSeries.set(n, a);
  }
  for (const n of [...huntSeries.keys()]) if (!(n in (s.hunts || {}))) huntSeries.delete(n);
  const tb = $('hunts').tBodies[0];
  tb.replaceChildren(...names.map((n) => {
    const h = s.hunts[n];
    const tr = document.createElement('tr');
    tr.dataset.hunt = n;
    for (const v of [n, h.players, h.local_players, h.seq, h.treasures_left, h.state]) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    tr.append(miniChart(huntSeries.get(n)));
    return tr;
  }));
}

function nodes(s) {
  const card = $('nodes-card');
  if (!s.nodes) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  for (const n of s.nodes) {
    const a = nodeSeries.get(n.id) || [];
    a.push(n.connections ?? NaN);
    if (a.length > KEEP) a.shift();
    nodeSeries.set(n.id, a);
  }
  for (const id of [...nodeSeries.keys()]) if (!s.nodes.some((n) => n.id === id)) nodeSeries.delete(id);
  $('nodes').tBodies[0].replaceChildren(...s.nodes.map((n) => {
    const tr = document.createElement('tr');
    tr.dataset.node = n.id;
    for (const v of [n.id + (n.self ? ' (this node)' : ''), n.connections ?? '-']) {
      const td = document.createElement('td');
      td.textContent = v;
      tr.append(td);
    }
    tr.append(miniChart(nodeSeries.get(n.id)));
    return tr;
  }));
}

// miniChart is a table cell with a small chart of one series.
function miniChart(series) {
  const td = document.createElement('td');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('class', 'mini');
  svg.setAttribute('viewBox', '0 0 300 64');
  svg.setAttribute('preserveAspectRatio', 'none');
  chart(svg, [series]);
  td.append(svg);
  return td;
}

// chart draws each series as a line over the last KEEP samples, scaled to
// the largest value shown (at least 1); gaps (NaN) break the line.
function chart(svg, ser) {
  let max = 1;
  for (const a of ser) for (const v of a) if (Number.isFinite(v) && v > max) max = v;
  const W = 300, H = 64, pad = 3;
  const x = (i) => (i + KEEP - ser[0].length) * (W / (KEEP - 1));
  const y = (v) => H - pad - (v / max) * (H - 2 * pad);
  let out = `<line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" stroke="#26304a" stroke-width="1" vector-effect="non-scaling-stroke"/>`;
  ser.forEach((a, k) => {
    const colour = PALETTE[k % PALETTE.length];
    let d = '', start = -1, last = -1;
    a.forEach((v, i) => {
      if (!Number.isFinite(v)) return;
      d += `${d && last === i - 1 ? 'L' : 'M'}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
      if (start < 0) start = i;
      last = i;
    });
    if (!d) return;
    if (ser.length === 1) {
      out += `<path d="${d}L${x(last).toFixed(1)},${H}L${x(start).toFixed(1)},${H}Z" fill="${colour}" fill-opacity=".12" stroke="none"/>`;
    }
    out += `<path d="${d}" fill="none" stroke="${colour}" stroke-width="1.6" vector-effect="non-scaling-stroke" stroke-linejoin="round"/>`;
  });
  out += `<text x="${W - 2}" y="10" text-anchor="end" font-size="9" fill="#8a93ab">${fmtShort(max)}</text>`;
  svg.innerHTML = out;
}

function fmtInt(v) {
  return Math.round(v).toLocaleString('en-US');
}
function fmtRate(v) {
  if (v === undefined) return '-';
  return v >= 100 ? fmtInt(v) : v.toFixed(1);
}
function fmtMs(v) {
  return v >= 100 ? `${Math.round(v)} ms` : `${v.toFixed(2)} ms`;
}
function fmtShort(v) {
  if (v >= 1e6) return `${(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(1)}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
function fmtDuration(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s}s`;
}

build();
await tick();
setInterval(tick, 1000);
