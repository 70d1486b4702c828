package gateway

import (
	"context"
	"errors"
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/state"
)

// Each op is split into the engine calls and a finish step that runs on the
// connection's loop. With an inline engine (memory) both run right away on
// the loop, without allocating for dig. With a blocking engine (Redis) the
// engine calls run on a worker goroutine and the finish step is posted back
// to the loop; the session is then looked up again by its full handle, since
// the connection may have closed in the meantime.

// engineError maps an engine error to its wire error.
func engineError(err error) *protoError {
	switch {
	case errors.Is(err, state.ErrUnknownHunt):
		return errUnknownHunt
	case errors.Is(err, state.ErrEnded):
		return errEnded
	case errors.Is(err, state.ErrOutOfGrid):
		return errOutOfGrid
	case errors.Is(err, state.ErrNotRanked):
		return errNotRanked
	case errors.Is(err, state.ErrNotStarted):
		return errNotStarted
	}
	return errInternal
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// callCtx is the context of one request's engine calls on a worker
// (blocking engines): bounded by EngineTimeout, so that a stalled store
// gets the player an internal error within that time, and the worker
// back, instead of waiting for the Redis client's own timeouts and retries.
func (g *Gateway) callCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(g.ctx, g.cfg.EngineTimeout)
}

// offload queues fn for a worker goroutine (blocking engines only) and
// reports whether it was queued. A burst is queued as long as the engine
// keeps up: the request is refused only when the queue is full, the calls
// taken from it lately waited longer than maxQueueWait, or a backlog has
// waited that long with no call taken (every worker stuck on a stalled
// engine), that is when the engine is truly behind; the caller then undoes what it prepared and
// answers errOverloaded. Starting a goroutine per request instead would let
// a flood against a slow engine grow goroutines and memory without bound,
// and only add to the engine's backlog; a prompt refusal lets the client
// back off.
func (g *Gateway) offload(fn func()) bool {
	now := int64(time.Since(g.epoch))
	if len(g.work) == 0 {
		// A backlog may start now: the stall clock starts with it, not
		// with the last call of a quiet hour.
		g.lastTake.Store(now)
	} else if g.queueLag.Load() > int64(maxQueueWait) || now-g.lastTake.Load() > int64(maxQueueWait) {
		// Calls wait over a second, or no worker took one for a second
		// (every worker stuck on a stalled engine): truly behind.
		return false
	}
	select {
	case g.work <- workItem{fn: fn, at: now}:
		return true
	default:
		return false
	}
}

// maxQueueWait is how long engine calls may wait in the work queue before
// new ones are refused with overloaded: a burst the engine can absorb within
// it is queued.
const maxQueueWait = time.Second

// workItem is one engine call in the work queue; at is when it was queued,
// on the gateway's monotonic clock.
type workItem struct {
	fn func()
	at int64
}

// runWork is a worker goroutine of a blocking engine.
func (g *Gateway) runWork() {
	defer g.wg.Done()
	for {
		select {
		case it := <-g.work:
			now := int64(time.Since(g.epoch))
			g.lastTake.Store(now)
			wait := now - it.at
			if len(g.work) == 0 {
				wait = 0 // caught up: whatever waited before, the queue is empty now
			}
			g.queueLag.Store(wait)
			it.fn()
		case <-g.done:
			return
		}
	}
}

// notJoinedError is the answer to an op on a hunt the session has not joined,
// given the engine's Status error for that hunt.
func notJoinedError(err error) *protoError {
	if err != nil {
		return engineError(err)
	}
	return errNotJoined
}

// notJoined answers an op on a hunt the session has not joined: unknown_hunt
// if there is no such hunt, else not_joined.
func (ls *loopState) notJoined(l *conn.Loop, s *session, r *request) {
	g := ls.g
	if g.hunts.get(r.hunt) != nil {
		// Hunts are registered on the node only after the engine knew them.
		ls.fail(l, s.h, r.ref, errNotJoined)
		return
	}
	name := string(r.hunt)
	if g.inline {
		_, err := g.engine.Status(g.ctx, name)
		ls.fail(l, s.h, r.ref, notJoinedError(err))
		return
	}
	h, ref, id := s.h, cloneBytes(r.ref), ls.id
	if !g.offload(func() {
		ctx, cancel := g.callCtx()
		_, err := g.engine.Status(ctx, name)
		cancel()
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].fail(l, h, ref, notJoinedError(err)) })
	}) {
		ls.fail(l, h, r.ref, errOverloaded)
	}
}

func (ls *loopState) dig(l *conn.Loop, s *session, r *request) {
	g := ls.g
	start := time.Now()
	i := s.findName(r.hunt)
	if i < 0 {
		ls.notJoined(l, s, r)
		return
	}
	name, player, x, y := s.joined[i].name, s.player, r.x, r.y
	if g.inline {
		// An inline engine calls the sink synchronously inside Dig; the sink
		// only posts the claimed push to the loops' inboxes, so the dug reply
		// written below is queued on this connection before the push is.
		res, err := g.engine.Dig(g.ctx, name, player, int(x), int(y))
		ls.finishDig(l, s.h, r.ref, name, 0, x, y, &res, err, start)
		return
	}
	if g.ldig != nil {
		// A miss the node's copy vouches for (most digs of a large grid)
		// is answered here, on the loop, like a ping: nothing to claim,
		// nothing to hold.
		if res, ok := g.ldig.DigLocal(name, player, int(x), int(y)); ok {
			g.m.digsLocal.Add(1)
			ls.buf = appendDug(ls.buf[:0], r.ref, name, x, y, &res)
			ls.reply(l, s.h)
			observeSince(g.m.dig, start)
			return
		}
	}
	h, ref, id := s.h, cloneBytes(r.ref), ls.id
	j := &s.joined[i]
	j.holds++
	gen := j.gen
	if !g.offload(func() {
		ctx, cancel := g.callCtx()
		res, err := g.engine.Dig(ctx, name, player, int(x), int(y))
		cancel()
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].finishDig(l, h, ref, name, gen, x, y, &res, err, start) })
	}) {
		// No finishDig will come to release this hold: a hold left behind
		// would keep every later push of the hunt from this session.
		ls.release(l, h, j)
		ls.fail(l, h, r.ref, errOverloaded)
		observeSince(g.m.dig, start)
	}
}

// finishDig answers a dig. gen is the membership the dig was made under
// (blocking engines): its hold is released only if that membership is still
// there, and not one joined since. start is when the dig was read.
func (ls *loopState) finishDig(l *conn.Loop, h conn.Handle, ref []byte, hunt string, gen uint64, x, y int64, res *state.DigResult, err error, start time.Time) {
	if err != nil {
		ls.fail(l, h, ref, engineError(err))
	} else {
		if res.Found {
			ls.g.m.found.Add(1)
		}
		ls.buf = appendDug(ls.buf[:0], ref, hunt, x, y, res)
		ls.reply(l, h)
	}
	observeSince(ls.g.m.dig, start)
	if ls.g.inline {
		return
	}
	// Release the pushes held while this dig was in flight, after dug.
	if s := ls.get(h); s != nil {
		if i := s.findGen(gen); i >= 0 { // gens are unique on the loop
			ls.release(l, h, &s.joined[i])
		}
	}
}

// release ends one hold on j and, when none is left, sends what was held.
func (ls *loopState) release(l *conn.Loop, h conn.Handle, j *joinedHunt) {
	if j.holds--; j.holds > 0 {
		return
	}
	held := j.held
	j.held, j.board, j.heldB = nil, 0, 0
	j.heldN = min(j.heldN, 0)
	for _, m := range held {
		if m != nil {
			ls.send(l, h, j, m)
		}
	}
}

// joinResult carries the engine side of a join to its finish step.
type joinResult struct {
	info   *huntInfo
	again  bool   // the session had joined the hunt already: no new membership
	held   bool   // the membership was added before the engine calls, with a hold
	gen    uint64 // with held: the joinedHunt.gen of that membership
	st     state.Status
	ups    []state.Update
	since  uint64
	replay bool
	err    error
}

// joinCall makes the engine calls of a join. For a new membership the node
// starts watching the hunt before Join and History, so that no update falls
// between the snapshot and the live stream (the live copies of what the
// snapshot covers are skipped by seq).
func (g *Gateway) joinCall(ctx context.Context, info *huntInfo, name, player string, again bool, r *request) *joinResult {
	res := &joinResult{again: again, since: r.since}
	if info == nil {
		if _, err := g.engine.Status(ctx, name); err != nil {
			res.err = err
			return res
		}
		info = g.hunts.register(name)
	}
	res.info = info
	var err error
	if again {
		res.st, err = g.engine.Status(ctx, info.name)
	} else {
		g.hunts.watch(info, g.engine.Watch)
		if g.local != nil && g.local.AwaitLocal(ctx, info.name) {
			// The first joins of the hunt on this node waited together for
			// the one read that put the node's copy in step.
			st, ups, replay, ok := g.local.JoinLocal(info.name, player, r.hasSince && r.hasEpoch, r.epoch, r.since)
			if ok {
				res.st, res.ups, res.replay = st, ups, replay
				return res
			}
		}
		res.st, err = g.engine.Join(ctx, info.name, player)
		if err != nil {
			g.hunts.unwatch(info, g.engine.Unwatch)
		}
	}
	if err != nil {
		res.err = err
		return res
	}
	if r.hasSince && r.hasEpoch {
		ups, ok, err := g.engine.History(ctx, info.name, r.epoch, r.since)
		if err == nil && ok {
			res.ups, res.replay = ups, true
		}
	}
	return res
}

func (ls *loopState) join(l *conn.Loop, s *session, r *request) {
	g := ls.g
	again := s.findName(r.hunt) >= 0
	if !again {
		if !s.allows(r.hunt) {
			ls.refuseJoin(l, s.h, r.ref, errForbidden)
			return
		}
		if len(s.joined) >= g.cfg.MaxHunts {
			ls.refuseJoin(l, s.h, r.ref, errTooManyHunts)
			return
		}
	}
	info := g.hunts.get(r.hunt)
	var name string
	if info != nil {
		name = info.name
	} else {
		name = string(r.hunt)
	}
	player := s.player
	if g.inline {
		ls.finishJoin(l, s.h, r.ref, player, g.joinCall(g.ctx, info, name, player, again, r))
		return
	}
	if info != nil && !again && g.local != nil && ls.joinLocal(l, s, r, info) {
		return
	}
	h, ref, id, rc := s.h, cloneBytes(r.ref), ls.id, *r
	rc.ref, rc.hunt, rc.ts = nil, nil, nil
	if info != nil {
		ls.joinHeld(l, h, ref, player, info, again, 0, &rc)
		return
	}
	// First join of this hunt on the node: it gets a node id only once the
	// engine has confirmed that it exists. The membership stands meanwhile,
	// without an id, so that a dig or a leave behind the join finds it, as
	// behind the join of a hunt the node knows.
	var pending uint64
	if !again {
		pending = ls.addPending(s, name).gen
	}
	if !g.offload(func() {
		// Joins queued behind the first that registered the hunt, or
		// running beside it on other workers, need not ask again: a crowd's
		// first joins make one check, not one each.
		ctx, cancel := g.callCtx()
		info, err := g.hunts.lookup(ctx, name, func() error {
			_, err := g.engine.Status(ctx, name)
			return err
		})
		cancel()
		if err != nil {
			g.node.Post(id, func(l *conn.Loop) { g.loops[id].failPending(l, h, ref, pending, engineError(err)) })
			return
		}
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].joinHeld(l, h, ref, player, info, again, pending, &rc) })
	}) {
		ls.failPending(l, h, ref, pending, errOverloaded)
	}
}

// refuseJoin answers a join with an error and counts it as refused.
func (ls *loopState) refuseJoin(l *conn.Loop, h conn.Handle, ref []byte, e *protoError) {
	ls.g.m.countJoinRefused(e)
	ls.fail(l, h, ref, e)
}

// joinLocal is the common join on an engine that keeps a copy of the hunts
// its node watches (state.LocalJoiner): answered on the loop from that copy,
// with no engine round trip and no work queue, so a crowd is admitted as
// fast as it connects. It reports false, having changed nothing, when only
// the engine can answer; the join then takes the blocking path.
//
// Nothing falls between the snapshot and the live stream: the hunt is
// watched before the copy is read, every update after the copy's seq
// reaches the sink after this call, and the sink's pushes reach this loop
// after the membership added here; older copies are skipped by seq.
func (ls *loopState) joinLocal(l *conn.Loop, s *session, r *request, info *huntInfo) bool {
	g := ls.g
	g.hunts.watch(info, g.engine.Watch)
	st, ups, replay, ok := g.local.JoinLocal(info.name, s.player, r.hasSince && r.hasEpoch, r.epoch, r.since)
	if !ok {
		g.hunts.unwatch(info, g.engine.Unwatch)
		return false
	}
	ls.addMember(s, info)
	res := joinResult{info: info, st: st, ups: ups, replay: replay, since: r.since}
	ls.finishJoin(l, s.h, r.ref, s.player, &res)
	return true
}

// failPending answers a first join of a hunt on the node that did not get
// to the engine's Join, dropping its membership (gen pending) if it is still
// there. The engine never counted it, so there is nothing to leave.
func (ls *loopState) failPending(l *conn.Loop, h conn.Handle, ref []byte, pending uint64, e *protoError) {
	if s := ls.get(h); s != nil && pending != 0 {
		if i := s.findGen(pending); i >= 0 {
			ls.removeMember(s, i)
		}
	}
	ls.refuseJoin(l, h, ref, e)
}

// joinHeld is the join on a blocking engine. A new membership is added to the
// loop's member list before the engine calls, with a hold: pushes that arrive
// meanwhile are kept and sent after joined and the replay, minus what the
// replay or the status already covered. So no update falls between the
// snapshot and the live stream. pending, if not 0, is the membership that a
// first join of the hunt on the node added before the hunt had an id.
func (ls *loopState) joinHeld(l *conn.Loop, h conn.Handle, ref []byte, player string, info *huntInfo, again bool, pending uint64, rc *request) {
	g := ls.g
	s := ls.get(h)
	if s == nil {
		return
	}
	var j *joinedHunt
	if pending != 0 {
		i := s.findGen(pending)
		if i < 0 {
			// Left while the hunt was being checked: the leave was answered
			// at once, and the engine never counted this membership.
			ls.refuseJoin(l, h, ref, errLeftJoining)
			return
		}
		j = &s.joined[i]
		ls.bind(s, j, info)
	} else {
		// By name: a membership of a first join may not have the id yet.
		if s.findString(info.name) >= 0 {
			again = true
		} else if len(s.joined) >= g.cfg.MaxHunts {
			ls.refuseJoin(l, h, ref, errTooManyHunts)
			return
		}
		if !again {
			j = ls.addMember(s, info)
			j.holds++
			j.joining = true
		}
	}
	held := j != nil
	var gen uint64
	if held {
		gen = j.gen
	}
	id := ls.id
	if !g.offload(func() {
		ctx, cancel := g.callCtx()
		res := g.joinCall(ctx, info, info.name, player, again, rc)
		cancel()
		res.held, res.gen = held, gen
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].finishJoin(l, h, ref, player, res) })
	}) {
		if held {
			// Nothing can have been held yet (the loop has not run since the
			// membership got its id), and the engine never counted it.
			ls.removeMember(s, s.findGen(gen))
		}
		ls.refuseJoin(l, h, ref, errOverloaded)
	}
}

func (ls *loopState) finishJoin(l *conn.Loop, h conn.Handle, ref []byte, player string, res *joinResult) {
	g := ls.g
	s := ls.get(h)
	var j *joinedHunt
	i := -1
	if s != nil && res.info != nil {
		// By name: a repeated join finds a membership still without an id.
		i = s.findString(res.info.name)
		if i >= 0 && res.held && s.joined[i].gen != res.gen {
			// Left and joined again while this join was at the engine: the
			// membership found is the later join's, this one's is gone.
			i = -1
		}
		if i >= 0 {
			j = &s.joined[i]
		}
	}
	if res.err != nil {
		if res.held && j != nil {
			ls.removeMember(s, i)
		}
		ls.refuseJoin(l, h, ref, engineError(res.err))
		return
	}
	if s == nil || (res.held && j == nil) {
		// Closed (or left) while a blocking engine was answering.
		if !res.again {
			g.leaveEngine(res.info.name, player)
		}
		if s != nil {
			// Left: the join still gets its answer, after the left.
			ls.refuseJoin(l, h, ref, errLeftJoining)
		}
		return
	}
	switch {
	case j == nil && res.again:
		ls.refuseJoin(l, h, ref, errNotJoined)
		return
	case j == nil:
		j = ls.addMember(s, res.info)
		j.epoch, j.last = res.st.Epoch, 0
	}
	if res.held {
		// Only the join that added the membership ends its pending state: a
		// repeated join answered meanwhile (Status only) must not, or a leave
		// before the first join returns would make a second engine leave.
		j.joining = false
	}
	g.m.joins.Add(1)
	replayed := -1
	last := res.st.Seq
	if res.replay {
		replayed = len(res.ups)
		last = res.since
		if n := len(res.ups); n > 0 {
			last = res.ups[n-1].Seq
		}
	}
	if j.epoch != res.st.Epoch || last > j.last || !res.again {
		j.epoch, j.last = res.st.Epoch, last
	}
	ls.buf = appendJoined(ls.buf[:0], ref, &res.st, replayed)
	ls.reply(l, h)
	for k := range res.ups {
		ls.buf = appendUpdate(ls.buf[:0], &res.ups[k])
		ls.reply(l, h)
	}
	g.m.replayed.Add(int64(len(res.ups)))
	if res.held {
		ls.release(l, h, j)
	}
}

// leaveEngine releases one membership of player in hunt: engine count and
// node watch. Its callers have dropped the membership already (the
// connection closed, or a join finished for a session that is gone), so it
// cannot be refused: a leave that finds the work queue full goes to the leave
// backlog instead.
func (g *Gateway) leaveEngine(hunt, player string) {
	if g.inline || g.local != nil {
		g.leaveNow(hunt, player)
		return
	}
	if g.offload(func() { g.leaveNow(hunt, player) }) {
		return
	}
	g.deferLeave(hunt, player)
}

// pendingLeave is a leave waiting in the leave backlog.
type pendingLeave struct{ hunt, player string }

// deferLeave puts a leave on the backlog that drainLeaves works off. Dropping
// it would leave the player counted in the hunt and the hunt watched by this
// node for good. The backlog is bounded by what the engine accepted: every
// entry is a membership whose join went through the work queue, and while
// the queue is full no new membership can start. An entry is two strings
// that already exist, so memory stays small, and one goroutine works the
// backlog off, so a mass disconnect during an engine stall costs no more
// goroutines than a quiet hour.
func (g *Gateway) deferLeave(hunt, player string) {
	g.leaveMu.Lock()
	first := len(g.leaves) == 0
	g.leaves = append(g.leaves, pendingLeave{hunt, player})
	g.leaveMu.Unlock()
	if first {
		g.log.Warn().Str("hunt", hunt).Msg("gateway: work queue full, leaves of closed connections deferred")
	}
	select {
	case g.leaveWake <- struct{}{}:
	default:
	}
}

// drainLeaves makes the deferred leaves, one at a time, until the gateway
// stops (then the engine context is cancelled and they could not be made).
func (g *Gateway) drainLeaves() {
	defer g.wg.Done()
	var batch []pendingLeave
	for {
		select {
		case <-g.leaveWake:
		case <-g.done:
			return
		}
		g.leaveMu.Lock()
		batch, g.leaves = g.leaves, batch[:0]
		g.leaveMu.Unlock()
		for i, p := range batch {
			g.leaveNow(p.hunt, p.player)
			batch[i] = pendingLeave{}
		}
	}
}

func (g *Gateway) leaveNow(hunt, player string) {
	_ = g.engine.Leave(g.ctx, hunt, player)
	if info := g.hunts.getString(hunt); info != nil {
		g.hunts.unwatch(info, g.engine.Unwatch)
	}
}

func (ls *loopState) leave(l *conn.Loop, s *session, r *request) {
	i := s.findName(r.hunt)
	if i < 0 {
		ls.notJoined(l, s, r)
		return
	}
	g := ls.g
	name, player := s.joined[i].name, s.player
	switch {
	case s.joined[i].joining:
		// The engine has not answered the join yet; finishJoin makes the
		// one engine leave when it finds the membership gone. Leaving here
		// as well would count the player out twice and could unwatch a
		// hunt other players of this node are still in.
	case g.inline || g.local != nil:
		// Counted by the engine without waiting (state.LocalJoiner).
		g.leaveNow(name, player)
	case !g.offload(func() { g.leaveNow(name, player) }):
		// The session stays joined: an overloaded reply means nothing was done.
		ls.fail(l, s.h, r.ref, errOverloaded)
		return
	}
	ls.removeMember(s, i)
	ls.buf = appendLeft(ls.buf[:0], r.ref, name)
	ls.reply(l, s.h)
}

func (ls *loopState) status(l *conn.Loop, s *session, r *request) {
	g := ls.g
	readOp(ls, l, s, r, func(ctx context.Context, name string) (state.Status, error) { return g.engine.Status(ctx, name) }, appendStatusReply)
}

// readOp answers a request that only reads a hunt (status, rank): the token
// must allow the hunt, no join is needed. call runs on the loop with an
// inline engine, else on a worker and the reply is posted back; enc encodes
// a successful result.
func readOp[T any](ls *loopState, l *conn.Loop, s *session, r *request, call func(ctx context.Context, hunt string) (T, error), enc func(dst, ref []byte, v *T) []byte) {
	g := ls.g
	if !s.allows(r.hunt) {
		ls.fail(l, s.h, r.ref, errForbidden)
		return
	}
	var name string
	if info := g.hunts.get(r.hunt); info != nil {
		name = info.name
	} else {
		name = string(r.hunt)
	}
	finish := func(ls *loopState, l *conn.Loop, h conn.Handle, ref []byte, v *T, err error) {
		if err != nil {
			ls.fail(l, h, ref, engineError(err))
			return
		}
		ls.buf = enc(ls.buf[:0], ref, v)
		ls.reply(l, h)
	}
	if g.inline {
		v, err := call(g.ctx, name)
		finish(ls, l, s.h, r.ref, &v, err)
		return
	}
	h, ref, id := s.h, cloneBytes(r.ref), ls.id
	if !g.offload(func() {
		ctx, cancel := g.callCtx()
		v, err := call(ctx, name)
		cancel()
		g.node.Post(id, func(l *conn.Loop) { finish(g.loops[id], l, h, ref, &v, err) })
	}) {
		ls.fail(l, h, ref, errOverloaded)
	}
}
