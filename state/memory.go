package state

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// MemoryConfig configures a Memory engine.
type MemoryConfig struct {
	// HistoryMax is how many reliable updates each hunt keeps for resume;
	// 0 means DefaultHistoryMax (4,096).
	HistoryMax int
	// HistoryAge is how long each hunt keeps a reliable update for resume;
	// 0 means DefaultHistoryAge (2 minutes).
	HistoryAge time.Duration
	// Now is the clock that stamps updates and ages the history; nil means
	// time.Now. Tests inject a fake one.
	Now func() time.Time
	// Epoch is the epoch of every hunt of this engine; 0 means a random
	// non-zero value below 2^53, so that a restarted engine, which has lost its
	// history, never reuses the epoch of the one before.
	Epoch uint64
}

// Memory is the embedded Engine: all hunts in this process. Each hunt has
// its own mutex; a command runs the pure rules (Hunt.Apply), appends the
// reliable updates to the hunt's history and hands every update to the sink,
// all under that mutex, which is what keeps the sink's calls in seq order
// per hunt. Calls never block on anything but those short critical sections,
// so Inline is true.
//
// Lock order: Memory.mu (the hunt table) is never held while a hunt's mutex
// is taken; a hunt's mutex is held while the sink runs, so the sink must not
// call back into the engine.
type Memory struct {
	now    func() time.Time
	epoch  uint64
	hmax   int
	hage   time.Duration
	closed atomic.Bool
	sink   atomic.Pointer[func(Update)]

	mu    sync.RWMutex
	hunts map[string]*memHunt

	watchMu sync.Mutex
	watched map[string]int

	// Scheduled hunts (starts_at, ends_at): the ones with a transition to
	// come, and the goroutine that makes them (started at the first).
	schedMu   sync.Mutex
	sched     map[string]struct{}
	schedKick chan struct{}
	schedStop chan struct{}
	schedOnce sync.Once
}

type memHunt struct {
	mu   sync.Mutex
	h    *Hunt
	hist *History
	out  []Update // scratch for Apply; cap 3 is the most one command emits
	// claims is the hunt's claims record: every claim since creation,
	// never trimmed (bounded by the treasures), for Records.Claims.
	claims []Claim
}

var (
	_ Engine  = (*Memory)(nil)
	_ Records = (*Memory)(nil)
)

// NewMemory returns an empty memory engine.
func NewMemory(cfg MemoryConfig) *Memory {
	m := &Memory{
		now:     cfg.Now,
		epoch:   cfg.Epoch,
		hmax:    cfg.HistoryMax,
		hage:    cfg.HistoryAge,
		hunts:   make(map[string]*memHunt),
		watched: make(map[string]int),

		sched:     make(map[string]struct{}),
		schedKick: make(chan struct{}, 1),
		schedStop: make(chan struct{}),
	}
	if m.now == nil {
		m.now = time.Now
	}
	for m.epoch == 0 {
		// 53 bits: epochs travel as JSON numbers, and JavaScript clients
		// hold those exactly only up to 2^53.
		m.epoch = rand.Uint64() & (1<<53 - 1)
	}
	return m
}

// Epoch returns the epoch of this engine's hunts.
func (m *Memory) Epoch() uint64 { return m.epoch }

func (m *Memory) hunt(id string) (*memHunt, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	m.mu.RLock()
	mh := m.hunts[id]
	m.mu.RUnlock()
	if mh == nil {
		return nil, ErrUnknownHunt
	}
	return mh, nil
}

// apply runs one command on a hunt: rules, history, sink, in one critical
// section.
func (m *Memory) apply(id string, cmd Command) (Result, Status, error) {
	mh, err := m.hunt(id)
	if err != nil {
		return Result{}, Status{}, err
	}
	mh.mu.Lock()
	defer mh.mu.Unlock()
	out, res, err := mh.h.Apply(cmd, mh.out[:0])
	if err != nil {
		return res, Status{}, err
	}
	if len(out) > 0 {
		// Stamped here rather than through cmd.At, so that the commonest
		// command, a dig that misses, never reads the clock.
		now := m.now()
		for i := range out {
			out[i].At = now
			if out[i].Kind.Reliable() {
				mh.hist.Append(out[i])
			}
			if out[i].Kind == KindClaimed {
				u := &out[i]
				mh.claims = append(mh.claims, Claim{Seq: u.Seq, Treasure: u.Treasure, Player: u.Player, Points: u.Points, X: cmd.X, Y: cmd.Y, At: now})
			}
		}
		if sink := m.sink.Load(); sink != nil {
			for i := range out {
				(*sink)(out[i])
			}
		}
		clear(out) // the scratch must not keep Data and Top alive
	}
	return res, mh.h.Status(), nil
}

// Create implements Engine.
func (m *Memory) Create(_ context.Context, s Spec) (Status, error) {
	if m.closed.Load() {
		return Status{}, ErrClosed
	}
	m.mu.RLock()
	_, dup := m.hunts[s.ID]
	m.mu.RUnlock()
	if dup {
		return Status{}, ErrExists // before laying out a possibly large spec
	}
	h, err := NewHunt(s, m.epoch)
	if err != nil {
		return Status{}, err
	}
	mh := &memHunt{h: h, hist: NewHistory(m.hmax, m.hage), out: make([]Update, 0, 3)}
	m.mu.Lock()
	if _, dup := m.hunts[s.ID]; dup {
		m.mu.Unlock()
		return Status{}, ErrExists
	}
	m.hunts[s.ID] = mh
	m.mu.Unlock()
	if h.Scheduled() {
		m.schedMu.Lock()
		m.sched[s.ID] = struct{}{}
		m.schedMu.Unlock()
		m.schedOnce.Do(func() { go m.scheduler() })
		// A start already past happens now; the scheduler learns of the
		// rest.
		m.Tick()
		select {
		case m.schedKick <- struct{}{}:
		default:
		}
	}
	mh.mu.Lock()
	defer mh.mu.Unlock()
	return h.Status(), nil
}

// Join implements Engine.
func (m *Memory) Join(_ context.Context, hunt, player string) (Status, error) {
	_, st, err := m.apply(hunt, Command{Op: OpJoin, Player: player})
	return st, err
}

// Leave implements Engine.
func (m *Memory) Leave(_ context.Context, hunt, player string) error {
	_, _, err := m.apply(hunt, Command{Op: OpLeave, Player: player})
	return err
}

// Dig implements Engine. A miss allocates nothing.
func (m *Memory) Dig(_ context.Context, hunt, player string, x, y int) (DigResult, error) {
	res, _, err := m.apply(hunt, Command{Op: OpDig, Player: player, X: x, Y: y})
	return res.Dig, err
}

// Status implements Engine.
func (m *Memory) Status(_ context.Context, hunt string) (Status, error) {
	mh, err := m.hunt(hunt)
	if err != nil {
		return Status{}, err
	}
	mh.mu.Lock()
	defer mh.mu.Unlock()
	return mh.h.Status(), nil
}

// Publish implements Engine; the update carries a copy of data.
func (m *Memory) Publish(_ context.Context, hunt string, data []byte) (uint64, error) {
	res, _, err := m.apply(hunt, Command{Op: OpPublish, Data: slices.Clone(data)})
	if err != nil {
		return 0, err
	}
	return res.Seq, nil
}

// End implements Engine.
func (m *Memory) End(_ context.Context, hunt string) (Status, error) {
	_, st, err := m.apply(hunt, Command{Op: OpEnd})
	return st, err
}

// History implements Engine.
func (m *Memory) History(_ context.Context, hunt string, epoch, since uint64) ([]Update, bool, error) {
	mh, err := m.hunt(hunt)
	if err != nil {
		return nil, false, err
	}
	if epoch != m.epoch {
		return nil, false, nil
	}
	mh.mu.Lock()
	defer mh.mu.Unlock()
	ups, ok := mh.hist.Since(nil, since, mh.h.Seq(), m.now())
	if !ok {
		return nil, false, nil
	}
	return ups, true, nil
}

// Hunts implements Engine.
func (m *Memory) Hunts(_ context.Context) ([]string, error) {
	if m.closed.Load() {
		return nil, ErrClosed
	}
	m.mu.RLock()
	ids := make([]string, 0, len(m.hunts))
	for id := range m.hunts {
		ids = append(ids, id)
	}
	m.mu.RUnlock()
	slices.Sort(ids)
	return ids, nil
}

// Subscribe implements Engine. The memory engine hands the sink every
// hunt's updates, watched or not: they are all local.
func (m *Memory) Subscribe(sink func(Update)) {
	if sink == nil {
		m.sink.Store(nil)
		return
	}
	m.sink.Store(&sink)
}

// Watch implements Engine; for the memory engine it is bookkeeping only.
func (m *Memory) Watch(hunt string) {
	m.watchMu.Lock()
	m.watched[hunt]++
	m.watchMu.Unlock()
}

// Unwatch implements Engine; an Unwatch without a Watch is ignored.
func (m *Memory) Unwatch(hunt string) {
	m.watchMu.Lock()
	if n := m.watched[hunt]; n <= 1 {
		delete(m.watched, hunt)
	} else {
		m.watched[hunt] = n - 1
	}
	m.watchMu.Unlock()
}

// Watched reports whether hunt is watched (more Watch than Unwatch calls).
func (m *Memory) Watched(hunt string) bool {
	m.watchMu.Lock()
	defer m.watchMu.Unlock()
	return m.watched[hunt] > 0
}

// Inline implements Engine: memory calls are short and never block.
func (m *Memory) Inline() bool { return true }

// Close implements Engine. It drops the sink; hunts stay in memory until the
// engine is garbage.
func (m *Memory) Close() error {
	if !m.closed.Swap(true) {
		close(m.schedStop)
	}
	m.sink.Store(nil)
	return nil
}

// Board implements Records.
func (m *Memory) Board(_ context.Context, hunt string, offset, limit int) (BoardPage, error) {
	mh, err := m.hunt(hunt)
	if err != nil {
		return BoardPage{}, err
	}
	offset, limit = max(offset, 0), min(max(limit, 0), MaxPageLimit)
	es := make([]Entry, 0, limit)
	mh.mu.Lock()
	lb := mh.h.Leaderboard()
	es = lb.Page(es, offset, limit)
	p := BoardPage{Hunt: hunt, Seq: mh.h.Seq(), Total: lb.Len()}
	mh.mu.Unlock()
	p.Entries = rankedFrom(make([]Ranked, 0, len(es)), es, offset+1)
	return p, nil
}

// PlayerRank implements Records.
func (m *Memory) PlayerRank(_ context.Context, hunt, player string, around int) (PlayerRank, error) {
	mh, err := m.hunt(hunt)
	if err != nil {
		return PlayerRank{}, err
	}
	around = min(max(around, 0), MaxAround)
	mh.mu.Lock()
	lb := mh.h.Leaderboard()
	rank, score, ok := lb.Rank(player)
	if !ok {
		mh.mu.Unlock()
		return PlayerRank{}, ErrNotRanked
	}
	first := max(rank-around, 1)
	es := lb.Page(make([]Entry, 0, rank-first+1+around), first-1, rank-first+1+around)
	seq := mh.h.Seq()
	mh.mu.Unlock()
	return PlayerRank{Hunt: hunt, Player: player, Score: score, Rank: rank, Seq: seq,
		Around: rankedFrom(make([]Ranked, 0, len(es)), es, first)}, nil
}

// Claims implements Records. The record is copied under the hunt's lock, so
// the caller may hold it while claims go on.
func (m *Memory) Claims(_ context.Context, hunt string) (uint64, []Claim, error) {
	mh, err := m.hunt(hunt)
	if err != nil {
		return 0, nil, err
	}
	mh.mu.Lock()
	cs := slices.Clone(mh.claims)
	mh.mu.Unlock()
	if cs == nil {
		cs = []Claim{}
	}
	return m.epoch, cs, nil
}

// Tick makes the transitions of the scheduled hunts that are due by the
// engine's clock (a started update at starts_at, an ended one at ends_at)
// and returns the next time one is due (zero when none is ahead). The
// engine's own goroutine calls it at those times; tests with an injected
// clock call it after moving the clock.
func (m *Memory) Tick() time.Time {
	m.schedMu.Lock()
	ids := make([]string, 0, len(m.sched))
	for id := range m.sched {
		ids = append(ids, id)
	}
	m.schedMu.Unlock()
	var next time.Time
	for _, id := range ids {
		mh, err := m.hunt(id)
		if err != nil {
			return time.Time{}
		}
		for {
			mh.mu.Lock()
			op, at := mh.h.Due(m.now())
			mh.mu.Unlock()
			if op == 0 {
				if at.IsZero() {
					m.schedMu.Lock()
					delete(m.sched, id)
					m.schedMu.Unlock()
				} else if next.IsZero() || at.Before(next) {
					next = at
				}
				break
			}
			// Applied under the hunt's lock like any command; a hunt ended
			// meanwhile makes OpEnd ErrEnded, which is the same outcome.
			_, _, _ = m.apply(id, Command{Op: op})
		}
	}
	return next
}

// scheduler runs Tick at the next due time, at least once a second (so an
// injected clock that jumps is followed), until Close.
func (m *Memory) scheduler() {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	for {
		next := m.Tick()
		d := time.Second
		if !next.IsZero() {
			d = min(max(next.Sub(m.now()), time.Millisecond), time.Second)
		}
		t.Reset(d)
		select {
		case <-m.schedStop:
			return
		case <-m.schedKick:
		case <-t.C:
		}
	}
}
