// huntgate browser and Node SDK: one ES module, no dependencies, no build
// step. The wire protocol it speaks is docs/protocol.md; its own contract is
// docs/sdk.md.

/** Version of this SDK. */
export const VERSION = '1.0.0';

/** Op of each request, and the op of the reply that answers it. */
const REPLY = { join: 'joined', leave: 'left', dig: 'dug', status: 'status', rank: 'rank', ping: 'pong' };

/** Reliable update kinds: each takes the next seq of its hunt. */
const RELIABLE = new Set(['claimed', 'event', 'ended', 'started']);

/** Updates held for one hunt while it resynchronises, at most. */
const MAX_HELD = 8192;

/** A rejoin refused with rate_limited is asked again after 1 to 2 times this (ms). */
const RETRY_MIN = 500;

/**
 * An error from the gateway (code is the wire code, such as `not_joined`) or
 * from the SDK itself (`closed`, `disconnected`, `no_websocket`).
 */
export class HuntError extends Error {
  constructor(code, message, extra) {
    super(message || code);
    this.name = 'HuntError';
    this.code = code;
    if (extra) Object.assign(this, extra);
  }
}

/**
 * A player's connection to a huntgate gateway, with reconnect and resume.
 *
 * Reliable updates (claimed, event, ended, started) reach `update` listeners once each
 * and in seq order per hunt, across reconnects; what the gateway's history no
 * longer holds is reported with a `reset` event carrying the fresh status.
 */
export class HuntClient {
  /**
   * @param {string} url gateway address, `ws://host:port` (the path defaults
   *   to `/ws`) or a full `ws://host:port/ws` URL
   * @param {object} [opts] see docs/sdk.md
   */
  constructor(url, opts = {}) {
    this._opts = opts;
    this._WS = opts.WebSocket || globalThis.WebSocket;
    if (typeof this._WS !== 'function') {
      throw new HuntError('no_websocket', 'no WebSocket class: pass one as the WebSocket option');
    }
    this._url = buildURL(url, opts);
    const rc = opts.reconnect === false ? null : (opts.reconnect || {});
    this._rc = rc && {
      minDelay: rc.minDelay ?? 250,
      maxDelay: rc.maxDelay ?? 10000,
    };
    this._state = 'idle';
    this._ws = null;
    this._listeners = new Map();
    this._nextRef = 1;
    this._order = 0; // creation order of requests, kept when they are resent
    this._everOpen = false;
    this._inflight = new Map(); // ref -> request sent on the current socket
    this._queue = []; // requests waiting for the connection
    this._hunts = new Map(); // hunt -> tracking of a joined hunt
    this._attempt = 0;
    this._timer = null;
    this._afterMs = -1; // reconnect notice: wait this long before redialling
    this._noticeAt = 0;
    this._connectWaiters = [];
    this._syncing = 0; // rejoins still unanswered after a reconnect
  }

  /** The connection state: 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'. */
  get state() {
    return this._state;
  }

  /** The hunts this client is joined to (or rejoining). */
  get hunts() {
    return [...this._hunts.keys()];
  }

  /**
   * Opens the connection. Resolves once it is open (after a reconnect, once
   * every joined hunt is rejoined); a failed attempt is retried with backoff
   * in the meantime. Rejects with code `closed` if close() is called first.
   */
  connect() {
    if (this._state === 'closed') return Promise.reject(closedError());
    if (this._state === 'open') return Promise.resolve();
    const p = new Promise((resolve, reject) => this._connectWaiters.push({ resolve, reject }));
    if (this._state === 'idle') {
      this._setState('connecting');
      this._dial();
    }
    return p;
  }

  /** Joins hunt; resolves with its status object. */
  join(hunt) {
    return this._request({ op: 'join', hunt });
  }

  /** Leaves hunt; resolves once the gateway confirmed. */
  leave(hunt) {
    const h = this._hunts.get(hunt);
    if (h && (this._state !== 'open' || (h.retry && !h.live))) {
      // Not joined on any socket now (or only waiting to rejoin after a
      // rate_limited refusal on this one, with no join in flight): forgetting
      // it is the whole leave. Asking the gateway would get not_joined.
      clearTimeout(h.retry);
      h.retry = null;
      this._hunts.delete(hunt);
      return Promise.resolve();
    }
    if (h) {
      // A rejoin timer still pending would join again after the leave.
      clearTimeout(h.retry);
      h.retry = null;
    }
    return this._request({ op: 'leave', hunt });
  }

  /** Digs (x, y) in hunt; resolves with the dug reply. */
  dig(hunt, x, y) {
    return this._request({ op: 'dig', hunt, x, y });
  }

  /** Resolves with hunt's status object (joining is not needed). */
  status(hunt) {
    return this._request({ op: 'status', hunt });
  }

  /**
   * Resolves with this player's place on hunt's leaderboard: the rank reply
   * (`player`, `score`, `rank`, `seq`, `around`: up to `around` players on
   * each side, 0 to 100, the gateway's default 5 when absent). Joining is not
   * needed; rejects with code `not_ranked` before the player's first claim.
   */
  rank(hunt, around) {
    const msg = { op: 'rank', hunt };
    if (around !== undefined && around !== null) msg.around = around;
    return this._request(msg);
  }

  /** Resolves with the round trip in milliseconds. */
  ping() {
    const t0 = now();
    return this._request({ op: 'ping', ts: t0 }).then(() => now() - t0);
  }

  /**
   * Adds a listener: 'update' (u), 'reset' (hunt, status), 'state' (s),
   * 'error' (err). Returns a function that removes it.
   */
  on(event, fn) {
    let set = this._listeners.get(event);
    if (!set) this._listeners.set(event, (set = new Set()));
    set.add(fn);
    return () => this.off(event, fn);
  }

  /** Removes a listener added with on(). */
  off(event, fn) {
    this._listeners.get(event)?.delete(fn);
  }

  /** Closes for good: pending requests reject with code `closed`. */
  close() {
    if (this._state === 'closed') return;
    clearTimeout(this._timer);
    this._timer = null;
    const ws = this._ws;
    this._ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(1000, 'bye');
      } catch {
        // already closing
      }
    }
    const err = closedError();
    for (const r of this._inflight.values()) r.reject(err);
    for (const r of this._queue) r.reject(err);
    for (const w of this._connectWaiters) w.reject(err);
    this._inflight.clear();
    this._queue = [];
    this._connectWaiters = [];
    for (const h of this._hunts.values()) clearTimeout(h.retry);
    this._hunts.clear();
    this._setState('closed');
  }

  // ---- connection ----

  _dial() {
    this._timer = null;
    let ws;
    try {
      ws = new this._WS(this._url);
    } catch (e) {
      this._emit('error', new HuntError('connect_failed', String(e && e.message || e)));
      this._lost();
      return;
    }
    this._ws = ws;
    ws.onopen = () => this._opened(ws);
    ws.onmessage = (ev) => this._message(ws, ev.data);
    ws.onclose = () => {
      if (this._ws === ws) this._lost();
    };
    // Browsers follow an error with a close event; some clients (Node 20's
    // WebSocket on a refused connection) do not, so an error counts as the
    // loss of the socket too.
    ws.onerror = () => {
      if (this._ws !== ws) return;
      this._lost();
      try {
        ws.close();
      } catch {
        // never opened
      }
    };
  }

  _opened(ws) {
    if (this._ws !== ws) return;
    this._afterMs = -1;
    this._syncing = 0;
    // Rejoin first, so that queued requests (a dig) find their hunts joined
    // and listeners see the resumed stream before anything new.
    for (const h of this._hunts.values()) {
      clearTimeout(h.retry); // this rejoin supersedes a retry still waiting
      h.retry = null;
      h.live = false; // not joined on this socket until its joined reply
      h.ready = false;
      h.replaying = 0;
      h.held = [];
      this._syncing++;
      this._send(this._joinMsg(h.name, true), {
        internal: true,
        resolve: (msg) => {
          this._rejoined();
          return msg;
        },
        reject: (err) => {
          this._rejoinFailed(h, err);
          this._rejoined();
        },
      });
    }
    if (this._syncing === 0) this._ready();
  }

  _rejoined() {
    if (--this._syncing === 0 && this._ws) this._ready();
  }

  _rejoinFailed(h, err) {
    if (err.code === 'closed' || err.code === 'disconnected') return;
    if (err.code === 'rate_limited') {
      // This connection's own rate limit (many hunts rejoined at once after
      // a reconnect, or a game sending fast): the hunt is still the
      // client's, so ask again once the limit has refilled (a leave()
      // meanwhile cancels this).
      clearTimeout(h.retry);
      h.retry = setTimeout(() => {
        h.retry = null;
        if (this._hunts.get(h.name) === h) this._resync(h);
      }, RETRY_MIN + Math.random() * RETRY_MIN);
      return;
    }
    if (err.code === 'overloaded' || err.code === 'internal') {
      // Not this hunt's fault: drop the socket and resume it on the next one.
      // Dropped now rather than when its close event comes, so that the
      // rejoins answered meanwhile do not open the client (state 'open',
      // connect() resolved, queued requests sent) on a socket being closed.
      const ws = this._ws;
      if (ws) {
        this._lost();
        try {
          ws.close(4000, 'resync');
        } catch {
          // already closing
        }
      }
      return;
    }
    this._hunts.delete(h.name);
    this._emit('error', new HuntError(err.code, `rejoin ${h.name}: ${err.message}`, { hunt: h.name }));
  }

  _ready() {
    this._attempt = 0;
    this._everOpen = true;
    this._setState('open');
    const q = this._queue;
    this._queue = [];
    for (const r of q) this._send(r.msg, r);
    const w = this._connectWaiters;
    this._connectWaiters = [];
    for (const x of w) x.resolve();
  }

  _lost() {
    const ws = this._ws;
    this._ws = null;
    if (ws) detach(ws);
    if (this._state === 'closed') return;
    // Requests on the lost socket: reads and joins go out again on the next
    // one; a dig may or may not have happened, so it fails (its claim, if
    // any, arrives as an update after the resume).
    for (const r of this._inflight.values()) {
      if (r.internal) {
        r.reject(new HuntError('disconnected', 'connection lost'));
      } else if (r.msg.op === 'dig') {
        r.reject(new HuntError('disconnected', 'connection lost before the dig was answered'));
      } else {
        this._queue.push(r);
      }
    }
    this._queue.sort((a, b) => a.seq - b.seq);
    this._inflight.clear();
    if (!this._rc) {
      this.close();
      return;
    }
    this._setState(this._everOpen ? 'reconnecting' : 'connecting');
    let delay;
    if (this._afterMs >= 0) {
      // The gateway is draining and said when to come back.
      delay = Math.max(0, this._afterMs - (now() - this._noticeAt));
      this._afterMs = -1;
    } else {
      const cap = Math.min(this._rc.maxDelay, this._rc.minDelay * 2 ** this._attempt);
      delay = cap / 2 + Math.random() * cap / 2;
    }
    this._attempt++;
    this._timer = setTimeout(() => this._dial(), delay);
  }

  _setState(s) {
    if (this._state === s) return;
    this._state = s;
    this._emit('state', s);
  }

  // ---- requests ----

  _request(msg) {
    if (this._state === 'closed') return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const r = { msg, resolve, reject, seq: this._order++ };
      if (this._state === 'open') this._send(msg, r);
      else this._queue.push(r);
    });
  }

  _joinMsg(hunt, internal) {
    const msg = { op: 'join', hunt };
    const h = this._hunts.get(hunt);
    if (h && h.seen && !h.lost) {
      msg.since = h.last;
      msg.epoch = h.epoch;
    }
    return msg;
  }

  _send(msg, r) {
    const hunt = msg.op === 'join' && this._hunts.get(msg.hunt);
    if (hunt && hunt.retry) {
      // A join going out supersedes a rejoin retry still waiting: while a
      // retry waits, no join of its hunt is in flight (see leave()).
      clearTimeout(hunt.retry);
      hunt.retry = null;
    }
    if (msg.op === 'join' && !r.internal) {
      // Join of a hunt already joined: ask for what came since, so that the
      // stream stays gap-free (a plain join answers with a status only).
      msg = this._joinMsg(msg.hunt, false);
      r.msg = msg;
      if (!this._hunts.has(msg.hunt)) {
        this._hunts.set(msg.hunt, newHunt(msg.hunt));
        r.fresh = true;
      }
    }
    r.msg = msg;
    const ref = this._nextRef++;
    this._inflight.set(ref, r);
    this._ws.send(JSON.stringify({ ...msg, ref }));
  }

  // ---- messages ----

  _message(ws, data) {
    if (this._ws !== ws) return;
    if (typeof data !== 'string') data = new TextDecoder().decode(data);
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      return;
    }
    switch (m.op) {
      case 'update':
        this._update(m);
        return;
      case 'reconnect':
        this._afterMs = Math.max(0, Number(m.after_ms) || 0);
        this._noticeAt = now();
        return;
      case 'error': {
        const r = this._inflight.get(m.ref);
        const err = new HuntError(m.code, m.message);
        if (!r) {
          this._emit('error', err);
          return;
        }
        this._inflight.delete(m.ref);
        if (r.fresh && r.msg.op === 'join') this._hunts.delete(r.msg.hunt);
        r.reject(err);
        return;
      }
    }
    const r = this._inflight.get(m.ref);
    if (!r || REPLY[r.msg.op] !== m.op) return;
    this._inflight.delete(m.ref);
    switch (m.op) {
      case 'joined':
        this._joined(m);
        r.resolve(m.status);
        return;
      case 'left':
        this._hunts.delete(m.hunt);
        r.resolve();
        return;
      case 'status':
        r.resolve(m.status);
        return;
      default:
        r.resolve(m);
    }
  }

  _joined(m) {
    let h = this._hunts.get(m.hunt);
    if (!h) this._hunts.set(m.hunt, (h = newHunt(m.hunt)));
    if (m.reset) {
      const gap = h.seen && (h.lost || h.epoch !== m.epoch || h.last !== m.seq);
      h.epoch = m.epoch;
      h.last = m.seq;
      h.replaying = 0;
      h.seen = true;
      h.lost = false;
      if (gap) this._emit('reset', m.hunt, m.status);
    } else {
      h.replaying = m.replayed || 0;
    }
    h.ready = true;
    h.live = true;
    h.resyncing = false;
    if (h.replaying === 0) this._checkHeld(h);
    else this._drainHeld(h);
  }

  _update(u) {
    const h = this._hunts.get(u.hunt);
    if (!h) return;
    if (!h.ready) {
      if (u.kind !== 'leaderboard') this._hold(h, u);
      return;
    }
    // The N updates of a replay follow their joined reply at once; after
    // the last one, whatever is still held beyond a gap asks again.
    const endReplay = h.replaying > 0 && --h.replaying === 0;
    this._deliver(h, u);
    if (endReplay) this._checkHeld(h);
  }

  _deliver(h, u) {
    const reliable = RELIABLE.has(u.kind);
    if (u.epoch !== h.epoch) {
      // Any update of another epoch means the history behind h.epoch is
      // gone (docs/protocol.md, Resume): a hunt given a new epoch in cluster
      // mode announces it with a leaderboard only, so waiting for a
      // reliable one would leave listeners on stale state.
      this._resync(h);
      return;
    }
    if (!reliable) {
      if (u.seq >= h.last) this._emit('update', u);
      return;
    }
    if (u.seq <= h.last) return; // already delivered
    if (u.seq !== h.last + 1) {
      this._hold(h, u);
      if (h.replaying === 0) this._resync(h);
      return;
    }
    h.last = u.seq;
    this._emit('update', u);
    if (h.held.length) this._drainHeld(h);
  }

  _hold(h, u) {
    if (h.held.length >= MAX_HELD) {
      // Too far behind to patch up: start over from a fresh status.
      h.held = [];
      h.lost = true;
      this._resync(h);
      return;
    }
    h.held.push(u);
  }

  _drainHeld(h) {
    const held = h.held.filter((u) => u.epoch === h.epoch && u.seq > h.last).sort((a, b) => a.seq - b.seq);
    let i = 0;
    for (; i < held.length && held[i].seq <= h.last + 1; i++) {
      if (held[i].seq === h.last + 1) {
        h.last = held[i].seq;
        this._emit('update', held[i]);
      }
    }
    h.held = held.slice(i);
  }

  _checkHeld(h) {
    if (!h.ready) return;
    this._drainHeld(h);
    if (h.held.length) this._resync(h);
  }

  /** Asks the gateway again for what followed h.last (a gap was seen). */
  _resync(h) {
    if (h.resyncing || !this._ws || this._state !== 'open') return;
    h.resyncing = true;
    h.ready = false;
    this._send(this._joinMsg(h.name, true), {
      internal: true,
      resolve: () => {},
      reject: (err) => {
        h.resyncing = false;
        this._rejoinFailed(h, err);
      },
    });
  }

  _emit(event, ...args) {
    const set = this._listeners.get(event);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (e) {
        // A listener's bug must not break delivery to the others.
        setTimeout(() => {
          throw e;
        });
      }
    }
  }
}

function newHunt(name) {
  // seen: a joined reply set epoch and last; lost: they no longer describe
  // what listeners saw, so the next join asks for a fresh status. live: joined
  // on the current socket (a joined reply came on it).
  return { name, epoch: 0, last: 0, seen: false, lost: false, ready: false, live: false, resyncing: false, replaying: 0, held: [], retry: null };
}

function detach(ws) {
  ws.onopen = ws.onmessage = ws.onclose = null;
  ws.onerror = () => {};
}

function closedError() {
  return new HuntError('closed', 'the client was closed');
}

function now() {
  return globalThis.performance ? performance.now() : Date.now();
}

function buildURL(url, opts) {
  const u = new URL(url);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  if (u.protocol === 'https:') u.protocol = 'wss:';
  if (u.pathname === '' || u.pathname === '/') u.pathname = '/ws';
  if (opts.token) u.searchParams.set('token', opts.token);
  else if (opts.player) u.searchParams.set('player', opts.player);
  return u.toString();
}
