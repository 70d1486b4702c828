// Run by TestSDKNode (sdk_test.go) under Node with its own WebSocket: checks
// the SDK's contract against a real gateway. Prints "STEP <name>" as it
// goes, "WAIT <what>" when the Go side must act (it answers with a line on
// stdin), and exits non-zero with the reason on failure.
import { HuntClient, HuntError } from '../huntgate.js';
import { createInterface } from 'node:readline';

const url = process.env.HUNTGATE_WS;
const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}
async function rejects(p, code, what) {
  try {
    await p;
  } catch (e) {
    check(e instanceof Error && e instanceof HuntError, `${what}: an Error (got ${e})`);
    check(e.code === code, `${what}: code ${e.code}, want ${code}`);
    return;
  }
  throw new Error(`${what}: resolved, want a rejection with ${code}`);
}
async function wait(what) {
  console.log(`WAIT ${what}`);
  await lines.next();
}
function until(pred, ms, what) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => (pred() ? resolve() : Date.now() - t0 > ms ? reject(new Error(`timeout: ${typeof what === "function" ? what() : what}`)) : setTimeout(tick, 10));
    tick();
  });
}

const c = new HuntClient(url, { player: 'nodey', WebSocket, reconnect: { minDelay: 50, maxDelay: 500 } });
const states = [];
const updates = [];
const resets = [];
c.on('state', (s) => states.push(s));
c.on('update', (u) => updates.push(u));
c.on('reset', (h, st) => resets.push({ h, st }));

console.log('STEP queued before connect');
check(c.state === 'idle', `state ${c.state} before connect`);
const early = c.status('demo');
await c.connect();
check(c.state === 'open', `state ${c.state} after connect`);
check((await early).hunt === 'demo', 'status queued before connect');

console.log('STEP join');
const st = await c.join('demo');
check(st.hunt === 'demo' && Number.isInteger(st.seq) && Number.isInteger(st.epoch), `join status ${JSON.stringify(st)}`);
check(c.hunts.includes('demo'), 'hunts lists demo');

console.log('STEP errors carry the wire code');
await rejects(c.dig('demo', 100000, 0), 'out_of_grid', 'dig outside the grid');
await rejects(c.join('nope'), 'unknown_hunt', 'join of an unknown hunt');
check(!c.hunts.includes('nope'), 'a refused join is not tracked');
await rejects(c.dig('elsewhere', 0, 0), 'unknown_hunt', 'dig in an unknown hunt');

console.log('STEP updates once each');
await wait('publish 3 events');
await until(() => updates.filter((u) => u.kind === 'event').length === 3, 5000, '3 events');
const seqs = updates.filter((u) => u.kind !== 'leaderboard').map((u) => u.seq);
check(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `contiguous seqs ${seqs}`);

console.log('STEP close rejects pending');
const d = new HuntClient(url, { player: 'closer', WebSocket });
await d.connect();
const pending = d.status('demo');
d.close();
await rejects(pending, 'closed', 'request in flight at close');
await rejects(d.join('demo'), 'closed', 'request after close');
check(d.state === 'closed', `state ${d.state} after close`);
const q = new HuntClient(url, { player: 'queued', WebSocket });
const qp = q.status('demo');
q.close();
await rejects(qp, 'closed', 'queued request at close');

console.log('STEP restart: reconnect, rejoin, reset on a new epoch');
const before = updates.length;
await wait('restart the gateway');
await until(() => resets.length === 1, 15000, () => `reset after the restart (states ${states}, hunts ${c.hunts}, updates ${updates.length})`);
check(resets[0].h === 'demo' && resets[0].st.epoch !== st.epoch, `reset ${JSON.stringify(resets[0])}`);
check(states.includes('reconnecting') && states[states.length - 1] === 'open', `states ${states}`);
const queuedDuring = await c.status('demo');
check(queuedDuring.epoch === resets[0].st.epoch, 'status after the restart');
await wait('publish after the restart');
await until(() => updates.slice(before).some((u) => u.kind === 'event' && u.data && u.data.after === 'restart'), 5000, 'event after the restart');
c.close();
console.log(`STEP done states=${states.join(',')}`);
process.exit(0);
