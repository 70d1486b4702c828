// The play page: the demo hunt's grid, digging by click, claims and the
// leaderboard as they happen. Built only on the SDK served next to it.
import { HuntClient } from '/sdk/huntgate.js';

const q = new URLSearchParams(location.search);
const hunt = q.get('hunt') || 'demo';
const W = clampInt(q.get('w'), 64);
const H = clampInt(q.get('h'), 64);
const player = q.get('player') || sessionStorage.getItem('huntgate.player') || 'player-' + Math.random().toString(36).slice(2, 7);
sessionStorage.setItem('huntgate.player', player);

const $ = (id) => document.getElementById(id);
$('hunt').textContent = hunt;
$('player').textContent = player;
document.title = `huntgate · ${hunt}`;

const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
const client = new HuntClient(`${scheme}//${location.host}`, { player });
// What the page received, for people poking at it from the console and for
// the browser tests.
const seen = { client, updates: [], states: [], resets: 0, digs: 0, finds: 0, joined: false };
window.play = seen;

// ---- grid ----
const canvas = $('grid');
const cell = Math.max(4, Math.floor(640 / Math.max(W, H)));
canvas.width = W * cell;
canvas.height = H * cell;
const ctx = canvas.getContext('2d');
const cells = new Map(); // y*W+x -> 'pending' | 'empty' | {points}
let hover = -1;

const colours = { bg: '#1d2538', line: '#232c42', empty: '#2f3a58', pending: '#5fb3ff', gold: '#f5b83d', hover: 'rgba(255,255,255,.12)' };

function draw() {
  ctx.fillStyle = colours.bg;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (cell >= 6) {
    ctx.strokeStyle = colours.line;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = 1; x < W; x++) { ctx.moveTo(x * cell + 0.5, 0); ctx.lineTo(x * cell + 0.5, canvas.height); }
    for (let y = 1; y < H; y++) { ctx.moveTo(0, y * cell + 0.5); ctx.lineTo(canvas.width, y * cell + 0.5); }
    ctx.stroke();
  }
  for (const [k, v] of cells) {
    const x = k % W, y = Math.floor(k / W);
    if (v === 'empty') ctx.fillStyle = colours.empty;
    else if (v === 'pending') ctx.fillStyle = colours.pending;
    else ctx.fillStyle = colours.gold;
    ctx.fillRect(x * cell + 1, y * cell + 1, cell - 1, cell - 1);
    if (typeof v === 'object' && cell >= 14) {
      ctx.fillStyle = '#1a1300';
      ctx.font = `600 ${Math.floor(cell * 0.5)}px system-ui, sans-serif`;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.fillText(String(v.points), x * cell + cell / 2 + 0.5, y * cell + cell / 2 + 1);
    }
  }
  if (hover >= 0 && !cells.has(hover)) {
    ctx.fillStyle = colours.hover;
    ctx.fillRect((hover % W) * cell + 1, Math.floor(hover / W) * cell + 1, cell - 1, cell - 1);
  }
}

function cellAt(ev) {
  const r = canvas.getBoundingClientRect();
  const x = Math.floor((ev.clientX - r.left) * (canvas.width / r.width) / cell);
  const y = Math.floor((ev.clientY - r.top) * (canvas.height / r.height) / cell);
  return x >= 0 && x < W && y >= 0 && y < H ? { x, y } : null;
}

canvas.addEventListener('mousemove', (ev) => {
  const c = cellAt(ev);
  const k = c ? c.y * W + c.x : -1;
  if (k !== hover) { hover = k; draw(); }
});
canvas.addEventListener('mouseleave', () => { hover = -1; draw(); });
canvas.addEventListener('click', async (ev) => {
  const c = cellAt(ev);
  if (!c) return;
  const k = c.y * W + c.x;
  if (cells.has(k)) return;
  cells.set(k, 'pending');
  draw();
  seen.digs++;
  try {
    const dug = await client.dig(hunt, c.x, c.y);
    if (dug.found) {
      seen.finds++;
      cells.set(k, { points: dug.points });
      $('score').textContent = dug.score;
    } else {
      cells.set(k, 'empty');
    }
  } catch (err) {
    cells.delete(k);
    feed(`dig (${c.x}, ${c.y}) failed: ${err.code}`, 'reset');
  }
  draw();
});

// ---- hunt state ----
let top = [];
function showStatus(st) {
  $('players').textContent = st.players;
  $('left').textContent = st.treasures_left;
  $('seq').textContent = st.seq;
  showTop(st.top);
  if (st.state === 'ended') $('hint').textContent = 'This hunt has ended.';
}

function showTop(list) {
  top = list || [];
  const ol = $('top');
  ol.replaceChildren(...top.map((e, i) => {
    const li = document.createElement('li');
    if (e.player === player) li.className = 'me';
    const name = document.createElement('span');
    const rank = document.createElement('span');
    rank.className = 'rank';
    rank.textContent = `${i + 1}.`;
    name.append(rank, e.player);
    const score = document.createElement('span');
    score.textContent = e.score;
    li.append(name, score);
    return li;
  }));
  if (!top.length) {
    const li = document.createElement('li');
    li.className = 'dim';
    li.textContent = 'nobody has found anything yet';
    ol.append(li);
  }
}

function feed(text, cls, pts) {
  const li = document.createElement('li');
  if (cls) li.className = cls;
  li.textContent = text;
  if (pts !== undefined) {
    const s = document.createElement('span');
    s.className = 'pts';
    s.textContent = ` +${pts}`;
    li.append(s);
  }
  const ul = $('feed');
  ul.prepend(li);
  while (ul.children.length > 60) ul.lastChild.remove();
}

client.on('state', (s) => {
  seen.states.push(s);
  const el = $('state');
  el.textContent = s;
  el.className = `pill ${s}`;
});

client.on('update', (u) => {
  if (u.hunt !== hunt) return;
  if (u.kind === 'leaderboard') {
    showTop(u.top);
    return;
  }
  seen.updates.push({ seq: u.seq, epoch: u.epoch, kind: u.kind });
  $('seq').textContent = u.seq;
  switch (u.kind) {
    case 'claimed': {
      const left = Number($('left').textContent);
      if (Number.isFinite(left) && left > 0) $('left').textContent = left - 1;
      feed(`${u.player === player ? 'you' : u.player} found ${u.treasure}`, '', u.points);
      break;
    }
    case 'event':
      feed(`event: ${JSON.stringify(u.data)}`, 'event');
      break;
    case 'ended':
      showTop(u.top);
      feed('the hunt has ended', 'reset');
      $('hint').textContent = 'This hunt has ended.';
      break;
  }
});

client.on('reset', (h, st) => {
  if (h !== hunt) return;
  seen.resets++;
  feed('missed too much while away: redrawn from the current status', 'reset');
  showStatus(st);
});

client.on('error', (err) => feed(`error: ${err.code}`, 'reset'));

draw();
showTop([]);
await client.connect();
try {
  showStatus(await client.join(hunt));
  seen.joined = true;
  feed(`joined ${hunt} as ${player}`, 'event');
} catch (err) {
  feed(`cannot join ${hunt}: ${err.code} ${err.message}`, 'reset');
}
// The player count is not pushed: refresh it now and then.
setInterval(async () => {
  if (client.state !== 'open') return;
  try {
    const st = await client.status(hunt);
    $('players').textContent = st.players;
    $('left').textContent = st.treasures_left;
  } catch {
    // shown on the next refresh
  }
}, 5000);

function clampInt(s, dflt) {
  const n = Number.parseInt(s, 10);
  return Number.isFinite(n) && n > 0 && n <= 1024 ? n : dflt;
}
