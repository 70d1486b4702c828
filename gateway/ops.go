package gateway

import (
	"errors"

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
	}
	return errInternal
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte(nil), b...)
}

// offload runs fn on a worker goroutine (blocking engines only).
func (g *Gateway) offload(fn func()) {
	select {
	case g.work <- fn:
	default:
		// The pool is saturated; running fn here keeps correctness (it only
		// blocks this goroutine) rather than dropping the request.
		go fn()
	}
}

// notJoined answers an op on a hunt the session has not joined.
func (ls *loopState) notJoined(l *conn.Loop, s *session, r *request) {
	g := ls.g
	if g.hunts.get(r.hunt) == nil && g.inline {
		if _, err := g.engine.Status(g.ctx, string(r.hunt)); err != nil {
			ls.fail(l, s.h, r.ref, engineError(err))
			return
		}
	}
	ls.fail(l, s.h, r.ref, errNotJoined)
}

func (ls *loopState) dig(l *conn.Loop, s *session, r *request) {
	g := ls.g
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
		ls.finishDig(l, s.h, r.ref, name, x, y, &res, err)
		return
	}
	h, ref, id := s.h, cloneBytes(r.ref), ls.id
	s.joined[i].holds++
	g.offload(func() {
		res, err := g.engine.Dig(g.ctx, name, player, int(x), int(y))
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].finishDig(l, h, ref, name, x, y, &res, err) })
	})
}

func (ls *loopState) finishDig(l *conn.Loop, h conn.Handle, ref []byte, hunt string, x, y int64, res *state.DigResult, err error) {
	if err != nil {
		ls.fail(l, h, ref, engineError(err))
	} else {
		if res.Found {
			ls.g.m.found.Add(1)
		}
		ls.buf = appendDug(ls.buf[:0], ref, hunt, x, y, res)
		ls.reply(l, h)
	}
	if ls.g.inline {
		return
	}
	// Release the pushes held while this dig was in flight, after dug.
	if s := ls.get(h); s != nil {
		if i := s.findName([]byte(hunt)); i >= 0 {
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
	j.held = nil
	for _, m := range held {
		ls.send(l, h, j, m)
	}
}

// joinResult carries the engine side of a join to its finish step.
type joinResult struct {
	info   *huntInfo
	again  bool // the session had joined the hunt already: no new membership
	held   bool // the membership was added before the engine calls, with a hold
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
func (g *Gateway) joinCall(info *huntInfo, name, player string, again bool, r *request) *joinResult {
	res := &joinResult{again: again, since: r.since}
	if info == nil {
		if _, err := g.engine.Status(g.ctx, name); err != nil {
			res.err = err
			return res
		}
		info = g.hunts.register(name)
	}
	res.info = info
	var err error
	if again {
		res.st, err = g.engine.Status(g.ctx, info.name)
	} else {
		g.hunts.watch(info, g.engine.Watch)
		res.st, err = g.engine.Join(g.ctx, info.name, player)
		if err != nil {
			g.hunts.unwatch(info, g.engine.Unwatch)
		}
	}
	if err != nil {
		res.err = err
		return res
	}
	if r.hasSince && r.hasEpoch {
		ups, ok, err := g.engine.History(g.ctx, info.name, r.epoch, r.since)
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
			ls.fail(l, s.h, r.ref, errForbidden)
			return
		}
		if len(s.joined) >= g.cfg.MaxHunts {
			ls.fail(l, s.h, r.ref, errTooManyHunts)
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
		ls.finishJoin(l, s.h, r.ref, player, g.joinCall(info, name, player, again, r))
		return
	}
	h, ref, id, rc := s.h, cloneBytes(r.ref), ls.id, *r
	rc.ref, rc.hunt, rc.ts = nil, nil, nil
	if info != nil {
		ls.joinHeld(l, h, ref, player, info, again, &rc)
		return
	}
	// First join of this hunt on the node: check that it exists before it
	// gets an id, then continue on the loop.
	g.offload(func() {
		if _, err := g.engine.Status(g.ctx, name); err != nil {
			g.node.Post(id, func(l *conn.Loop) { g.loops[id].fail(l, h, ref, engineError(err)) })
			return
		}
		info := g.hunts.register(name)
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].joinHeld(l, h, ref, player, info, again, &rc) })
	})
}

// joinHeld is the join on a blocking engine. A new membership is added to the
// loop's member list before the engine calls, with a hold: pushes that arrive
// meanwhile are kept and sent after joined and the replay, minus what the
// replay or the status already covered. So no update falls between the
// snapshot and the live stream.
func (ls *loopState) joinHeld(l *conn.Loop, h conn.Handle, ref []byte, player string, info *huntInfo, again bool, rc *request) {
	g := ls.g
	s := ls.get(h)
	if s == nil {
		return
	}
	if j := s.find(info.id); j != nil {
		again = true
	} else if len(s.joined) >= g.cfg.MaxHunts {
		ls.fail(l, h, ref, errTooManyHunts)
		return
	}
	held := !again
	if held {
		j := ls.addMember(s, info)
		j.holds++
	}
	id := ls.id
	g.offload(func() {
		res := g.joinCall(info, info.name, player, again, rc)
		res.held = held
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].finishJoin(l, h, ref, player, res) })
	})
}

func (ls *loopState) finishJoin(l *conn.Loop, h conn.Handle, ref []byte, player string, res *joinResult) {
	g := ls.g
	s := ls.get(h)
	var j *joinedHunt
	if s != nil && res.info != nil {
		j = s.find(res.info.id)
	}
	if res.err != nil {
		if res.held && j != nil {
			ls.removeMember(s, s.findName([]byte(res.info.name)))
		}
		ls.fail(l, h, ref, engineError(res.err))
		return
	}
	if s == nil || (res.held && j == nil) {
		// Closed (or left) while a blocking engine was answering.
		if !res.again {
			g.leaveEngine(res.info.name, player)
		}
		return
	}
	switch {
	case j == nil && res.again:
		ls.fail(l, h, ref, errNotJoined)
		return
	case j == nil:
		j = ls.addMember(s, res.info)
		j.epoch, j.last = res.st.Epoch, 0
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
// node watch.
func (g *Gateway) leaveEngine(hunt, player string) {
	if g.inline {
		g.leaveNow(hunt, player)
		return
	}
	g.offload(func() { g.leaveNow(hunt, player) })
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
	name := s.joined[i].name
	ls.removeMember(s, i)
	ls.g.leaveEngine(name, s.player)
	ls.buf = appendLeft(ls.buf[:0], r.ref, name)
	ls.reply(l, s.h)
}

func (ls *loopState) status(l *conn.Loop, s *session, r *request) {
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
	if g.inline {
		st, err := g.engine.Status(g.ctx, name)
		ls.finishStatus(l, s.h, r.ref, &st, err)
		return
	}
	h, ref, id := s.h, cloneBytes(r.ref), ls.id
	g.offload(func() {
		st, err := g.engine.Status(g.ctx, name)
		g.node.Post(id, func(l *conn.Loop) { g.loops[id].finishStatus(l, h, ref, &st, err) })
	})
}

func (ls *loopState) finishStatus(l *conn.Loop, h conn.Handle, ref []byte, st *state.Status, err error) {
	if err != nil {
		ls.fail(l, h, ref, engineError(err))
		return
	}
	ls.buf = appendStatusReply(ls.buf[:0], ref, st)
	ls.reply(l, h)
}
