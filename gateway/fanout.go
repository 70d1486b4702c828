package gateway

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
	"github.com/huntgate/huntgate/state"
)

// push is one encoded update on its way to the loops: encoded once, shared by
// every recipient on every loop, immutable after creation.
type push struct {
	g        *Gateway
	p        *framing.Prepared
	hunt     uint32
	epoch    uint64
	seq      uint64
	reliable bool
	arrived  time.Time    // at the sink
	loopsOut atomic.Int32 // loops that have not flushed it yet
}

// run is posted once per loop (PostAll) and walks that loop's members of the hunt.
func (m *push) run(l *conn.Loop) {
	m.g.loops[l.ID()].deliver(l, m)
	l.AfterFlush(m)
}

// Flushed is told by each loop when its frames of m have gone out; the
// last loop observes the fan-out time.
func (m *push) Flushed(*conn.Loop) {
	if m.loopsOut.Add(-1) == 0 {
		observeSince(m.g.m.fanout, m.arrived)
	}
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// sink receives every update of the hunts this node watches (Engine.Subscribe).
// It may run on any goroutine, possibly with engine locks held: it only
// encodes and posts.
func (g *Gateway) sink(u state.Update) {
	arrived := time.Now()
	g.feed.notify(&u)
	info := g.hunts.getString(u.Hunt)
	if info == nil {
		if g.wh != nil {
			g.wh.enqueue(&u, nil)
		}
		return
	}
	g.m.updates.Add(1)
	bp := encodeBufs.Get().(*[]byte)
	*bp = appendUpdate((*bp)[:0], &u)
	if g.wh != nil {
		// The webhook body is the push's bytes: encoded once (the sink
		// runs in an event loop for the memory engine's digs).
		g.wh.enqueue(&u, *bp)
	}
	m := &push{
		g:        g,
		p:        framing.Prepare(framing.OpText, *bp, g.cfg.Deflate),
		hunt:     info.id,
		epoch:    u.Epoch,
		seq:      u.Seq,
		reliable: u.Kind.Reliable(),
		arrived:  arrived,
	}
	m.loopsOut.Store(int32(len(g.loops)))
	encodeBufs.Put(bp)
	g.node.PostAll(m.run)
}

// deliver sends one update to every session of this loop joined to its hunt.
// Reliable updates are queued in order (an overflowing connection is closed
// by conn with 1008 "slow"); a leaderboard replaces an older one still
// queued. A copy at or below what a session already got (because it resumed
// from history) is skipped.
func (ls *loopState) deliver(l *conn.Loop, m *push) {
	if int(m.hunt) >= len(ls.members) {
		return
	}
	ls.beginWalk()
	list := ls.members[m.hunt]
	var sent int64
	for _, h := range list {
		s := ls.sessions.at(h.Index())
		j := s.find(m.hunt)
		if j == nil {
			continue
		}
		if j.holds > 0 {
			ls.hold(l, h, j, m)
			continue
		}
		if ls.send(l, h, j, m) {
			sent++
		}
	}
	ls.endWalk()
	ls.g.m.deliveries.Add(sent)
}

// hold keeps m for a session whose pushes wait for an engine call. Held
// pushes are output waiting for the connection, so they have its queue
// bounds: a client keeping digs in flight back to back would otherwise have
// every push of the hunt held for as long as it likes. Past the bounds the
// connection is closed 1008 "slow" (it resumes with since). As in the queue,
// a leaderboard replaces the one held before it; the older one is dropped
// rather than replaced in place, since reliable updates held after it must
// not fall behind the newer one.
func (ls *loopState) hold(l *conn.Loop, h conn.Handle, j *joinedHunt, m *push) {
	if j.heldN < 0 {
		return
	}
	if !m.reliable && j.board > 0 {
		old := j.held[j.board-1]
		j.held[j.board-1] = nil
		j.heldN--
		j.heldB -= len(old.p.Bytes(false))
	}
	j.held = append(j.held, m)
	j.heldN++
	j.heldB += len(m.p.Bytes(false))
	if !m.reliable {
		j.board = int32(len(j.held))
	}
	if l.CheckHeld(h, int(j.heldN), j.heldB) != nil {
		clear(j.held)
		j.held, j.heldN, j.heldB, j.board = nil, -1, 0, 0
	}
}

// send queues m for one session unless it already has it.
func (ls *loopState) send(l *conn.Loop, h conn.Handle, j *joinedHunt, m *push) bool {
	if m.reliable {
		if j.epoch == m.epoch && m.seq <= j.last {
			return false
		}
		j.epoch, j.last = m.epoch, m.seq
		return l.Send(h, m.p) == nil
	}
	if j.epoch == m.epoch && m.seq < j.last {
		return false
	}
	return l.SendLatest(h, m.p, m.hunt+1) == nil
}

// broadcastFanout sends p to every /fanout connection on every loop,
// starting with the sender's loop in the current pass. /fanout messages of
// different senders have no order between them, which this relies on.
func (g *Gateway) broadcastFanout(from *conn.Loop, p *framing.Prepared) {
	g.node.PostAllFrom(from, func(l *conn.Loop) {
		ls := g.loops[l.ID()]
		ls.beginWalk()
		var sent int64
		for _, h := range ls.fanout {
			if l.Send(h, p) == nil {
				sent++
			}
		}
		ls.endWalk()
		g.m.deliveries.Add(sent)
	})
}
