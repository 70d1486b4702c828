package redisengine

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/huntgate/huntgate/state"
)

// Tuning of the node's local copy of its hunts (see the package doc, "Join
// and leave storms").
const (
	// flushEvery is how often the player counts of this node are written
	// to Redis, per hunt, when they changed.
	flushEvery = 100 * time.Millisecond
	// refreshEvery is how often the cluster-wide player count of a watched
	// hunt is read again when this node's count did not change.
	refreshEvery = time.Second
	// readyWait bounds how long a Join waits for the node's copy of a hunt
	// it has just started watching before it asks Redis instead.
	readyWait = 2 * time.Second
)

// localHunt is what this node keeps of one hunt: how many players joined
// it through this node (written to Redis in batches by the flusher) and,
// while the hunt is watched and the copy is in step with the stream, its
// status and recent reliable updates, kept current by the reader.
type localHunt struct {
	// flushMu orders the writes of count to Redis (flusher, Status, Join),
	// so that sent is always the value Redis holds for this node.
	flushMu sync.Mutex

	mu    sync.Mutex
	count int64 // players joined through this node
	sent  int64 // count as Redis holds it for this node
	sum   int64 // cluster-wide players in Redis's reply to that write
	fresh time.Time

	dead    bool   // dropped from the map: counts go to a new record
	gen     uint64 // watch generation the copy belongs to; 0: not watched
	ready   bool   // st and hist follow the stream of generation gen
	stale   bool   // the copy fell out of step: the reader reads a new baseline
	gone    bool   // Redis no longer has the hunt: no copy until an update of it comes
	readyCh chan struct{}
	st      state.Status // Players unused
	hist    *state.History
	offset  time.Duration // Redis's clock minus this node's, at the baseline

	// seenEpoch and seenSeq are the highest seq this node has seen of the
	// hunt in the epoch it last saw: kept across copies, so that a Redis
	// that comes back with older data is caught (epoch.go).
	seenEpoch, seenSeq uint64

	// cells are the hunt's treasure cells as last read (digcells.go), kept
	// across copies: they carry their own epoch.
	cells        *digCells
	cellsLoading bool      // a read of the cells is under way
	cellsTried   time.Time // when the last read started
}

// players is the cluster-wide count as this node knows it: Redis's sum at
// the last write, with this node's own part brought up to now. mu held.
func (l *localHunt) players() int {
	return int(max(0, l.sum-l.sent+l.count))
}

// unready drops the copy; mu held.
func (l *localHunt) unready() {
	l.ready = false
	l.hist = nil
	if l.readyCh == nil {
		l.readyCh = make(chan struct{})
	}
}

// localOf returns hunt's record, nil if this node has none.
func (e *Engine) localOf(hunt string) *localHunt {
	if v, ok := e.locals.Load(hunt); ok {
		return v.(*localHunt)
	}
	return nil
}

// localFor returns hunt's record, adding it.
func (e *Engine) localFor(hunt string) *localHunt {
	if l := e.localOf(hunt); l != nil {
		return l
	}
	v, _ := e.locals.LoadOrStore(hunt, &localHunt{readyCh: make(chan struct{})})
	return v.(*localHunt)
}

// addCount adds d to this node's count of hunt (never below zero) and
// returns the record, locked.
func (e *Engine) addCount(hunt string, d int64) *localHunt {
	for {
		l := e.localFor(hunt)
		l.mu.Lock()
		if l.dead {
			l.mu.Unlock()
			continue
		}
		l.count = max(0, l.count+d)
		return l
	}
}

// watchedLocal records that hunt went watched (gen != 0) or unwatched
// (gen == 0): a new watch has no copy until the reader sets its baseline.
func (e *Engine) watchedLocal(hunt string, gen uint64) {
	var l *localHunt
	for {
		l = e.localFor(hunt)
		l.mu.Lock()
		if !l.dead {
			break
		}
		l.mu.Unlock()
	}
	l.gen = gen
	l.stale, l.gone = false, false
	l.unready()
	l.mu.Unlock()
}

// setBaseline makes h (the hunt as of h.seq, with the reliable updates of
// h.ups ending at h.seq) the copy of watch generation gen.
func (e *Engine) setBaseline(hunt string, gen uint64, h *histReply) {
	l := e.localOf(hunt)
	if l == nil {
		return
	}
	hist := state.NewHistory(e.hmaxN, e.hage)
	for _, u := range h.ups {
		if u.Kind.Reliable() {
			hist.Append(u)
		}
	}
	l.mu.Lock()
	if l.gen != gen || gen == 0 {
		l.mu.Unlock()
		return
	}
	if seen := l.seenSeq; l.see(h.epoch, h.seq) {
		l.stale = true // until Redis tells whether it lost writes
		l.mu.Unlock()
		if e.regressed(hunt, h.epoch, h.seq, seen) {
			return // not a baseline: the copy waits for the new epoch's
		}
		// Redis holds what was seen: this read only raced with a newer
		// status read (the flusher's). The updates after it are still to
		// come through the reader, so it stands as the baseline; left
		// stale, a quiet hunt's copy would wait for an update to rebase.
		l.mu.Lock()
		if l.gen != gen || l.ready {
			l.mu.Unlock()
			return
		}
	}
	defer l.mu.Unlock()
	l.st = state.Status{Hunt: hunt, Epoch: h.epoch, Seq: h.seq, State: h.state, TreasuresLeft: h.left, Top: h.board.Top, StartsAt: h.startsAt, EndsAt: h.endsAt}
	l.hist = hist
	l.offset = time.Until(h.now) // ~ Redis's clock minus ours, within a round trip
	l.stale, l.gone = false, false
	l.ready = true
	// nil when the copy was ready already (a second baseline of the same
	// generation): nobody waits then, and closing nil would panic the reader.
	if l.readyCh != nil {
		close(l.readyCh)
		l.readyCh = nil
	}
}

// apply brings the copy of u.Hunt up to u (reader only) and reports whether
// the copy fell out of step and needs a new baseline.
func (e *Engine) apply(u *state.Update) bool {
	l := e.localOf(u.Hunt)
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready {
		return l.stale && l.gen != 0
	}
	st := &l.st
	switch {
	case u.Epoch != st.Epoch:
		l.stale = true
	case u.Kind.Reliable() && u.Seq <= st.Seq:
		return false // covered by the baseline
	case u.Kind.Reliable() && u.Seq != st.Seq+1:
		l.stale = true
	case u.Kind.Reliable():
		st.Seq = u.Seq
		l.see(u.Epoch, u.Seq)
		l.hist.Append(*u)
		switch u.Kind {
		case state.KindClaimed:
			st.TreasuresLeft = max(0, st.TreasuresLeft-1)
		case state.KindStarted:
			st.State = state.StateOpen
		case state.KindEnded:
			st.State, st.Top = state.StateEnded, u.Top
		}
		return false
	case u.Seq == st.Seq:
		st.Top = u.Top
		return false
	case u.Seq < st.Seq:
		return false
	default:
		l.stale = true // a leaderboard past a reliable update not seen
	}
	l.unready()
	return true
}

// rebase reads a new baseline of hunt for the reader; on an error the copy
// stays unready and the next update of the hunt tries again.
func (e *Engine) rebase(hunt string) {
	l := e.localOf(hunt)
	if l == nil {
		return
	}
	l.mu.Lock()
	gen := l.gen
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
	h, err := e.history(ctx, hunt, 1<<53, 0) // since beyond any seq: the baseline, no entries
	cancel()
	if err != nil {
		return
	}
	e.setBaseline(hunt, gen, h)
}

// JoinLocal implements state.LocalJoiner: the join answered from this
// node's copy of a watched hunt, without a Redis round trip.
func (e *Engine) JoinLocal(hunt, player string, resume bool, epoch, since uint64) (st state.Status, ups []state.Update, replay, ok bool) {
	if e.closed.Load() || e.Ready() != nil {
		return st, nil, false, false
	}
	l := e.localOf(hunt)
	if l == nil {
		return st, nil, false, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.ready {
		return st, nil, false, false
	}
	st = l.st
	if resume && epoch == st.Epoch {
		if since > st.Seq {
			return state.Status{}, nil, false, false // maybe newer than the copy: Redis decides
		}
		var held bool
		ups, held = l.hist.Since(nil, since, st.Seq, time.Now().Add(l.offset))
		if !held {
			return state.Status{}, nil, false, false // Redis may hold more
		}
		replay = true
	}
	l.count++
	st.Players = l.players()
	return st, ups, replay, true
}

// AwaitLocal implements state.LocalJoiner: it waits until this node's copy
// of hunt (watched) is in step, ctx ends or readyWait passes, and reports
// whether it is in step. The first joins of a hunt on a node wait here
// together for the one baseline read instead of each asking Redis.
func (e *Engine) AwaitLocal(ctx context.Context, hunt string) bool {
	return e.awaitReady(ctx, hunt)
}

// awaitReady is AwaitLocal.
func (e *Engine) awaitReady(ctx context.Context, hunt string) bool {
	l := e.localOf(hunt)
	if l == nil {
		return false
	}
	l.mu.Lock()
	ready, gen, ch, gone := l.ready, l.gen, l.readyCh, l.gone
	l.mu.Unlock()
	if ready {
		return true
	}
	if gen == 0 || ch == nil || gone || e.Ready() != nil {
		return false
	}
	t := time.NewTimer(readyWait)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
	case <-t.C:
	}
	return false
}

// writeCount writes this node's count of hunt to Redis and returns the
// hunt's status, with Players brought up to this node's count now.
func (e *Engine) writeCount(ctx context.Context, hunt string, l *localHunt) (state.Status, error) {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	c := l.count
	l.mu.Unlock()
	v, err := countLua.Run(ctx, e.rdb, e.keysOf(hunt).status, e.node, strconv.FormatInt(c, 10), e.hbTTLArg).Result()
	if err != nil {
		return state.Status{}, wrap(err)
	}
	st, err := parseStatus(hunt, v)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		if errors.Is(err, state.ErrUnknownHunt) {
			l.sent = c // nothing to write for a hunt that is gone
			l.fresh = time.Now()
			if l.gen != 0 && !l.gone {
				// Redis lost it (its data, or the hunt's keys): joins
				// must not be answered from the copy of a hunt that no
				// longer exists, nor wait for one. An update of a hunt
				// created again under the id brings a baseline (stale).
				l.unready()
				l.stale, l.gone = true, true
			}
		}
		return st, err
	}
	l.sent, l.sum, l.fresh = c, int64(st.Players), time.Now()
	st.Players = l.players()
	if l.gen != 0 {
		if seen := l.seenSeq; l.see(st.Epoch, st.Seq) {
			l.mu.Unlock()
			e.regressed(hunt, st.Epoch, st.Seq, seen)
			l.mu.Lock()
		}
	}
	return st, nil
}

// flusher writes the changed player counts of this node every flushEvery,
// one script call per hunt, and refreshes the cluster-wide count of the
// watched hunts every refreshEvery.
func (e *Engine) flusher() {
	defer e.wg.Done()
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		e.flush()
	}
}

// flush makes one round of the flusher.
func (e *Engine) flush() {
	now := time.Now()
	e.locals.Range(func(k, v any) bool {
		hunt, l := k.(string), v.(*localHunt)
		l.mu.Lock()
		// A count in Redis lives HeartbeatTTL after its write: written
		// again each third of it, so that only a crash lets it expire.
		due := l.count != l.sent || (l.gen != 0 && now.Sub(l.fresh) >= refreshEvery) ||
			(l.sent > 0 && now.Sub(l.fresh) >= e.hbTTL/3)
		idle := l.count == 0 && l.sent == 0 && l.gen == 0
		l.mu.Unlock()
		if idle {
			e.dropIdle(hunt, l)
			return true
		}
		if !due || e.frozen.Load() {
			return true
		}
		ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
		_, err := e.writeCount(ctx, hunt, l)
		cancel()
		if err != nil && !errors.Is(err, state.ErrUnknownHunt) && e.ctx.Err() == nil {
			e.log.Debug().Err(err).Str("hunt", hunt).Msg("redisengine: player count not written")
		}
		return e.ctx.Err() == nil
	})
}

// dropIdle forgets l if it is still idle, so that the records follow the
// hunts in use.
func (e *Engine) dropIdle(hunt string, l *localHunt) {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.count == 0 && l.sent == 0 && l.gen == 0 {
		l.dead = true
		e.locals.CompareAndDelete(hunt, l)
	}
}

var _ state.LocalJoiner = (*Engine)(nil)
var _ state.Readier = (*Engine)(nil)
