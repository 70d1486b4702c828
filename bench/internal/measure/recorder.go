package measure

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Recorder collects the measurements of one process. Each event loop records
// into its own Shard so loops never contend with each other; the progress
// reporter and the final export take the shard locks briefly.
type Recorder struct {
	mu     sync.Mutex // guards shards
	shards []*Shard
}

// Shard is one loop's part of a Recorder.
type Shard struct {
	mu       sync.Mutex // guards everything below
	ops      map[string]*Op
	counters map[string]*int64
	bcast    map[uint32]*BcastRec
	gaps     GapStats
}

// Gaps runs fn with the shard's gap statistics, under the shard lock.
func (s *Shard) Gaps(fn func(g *GapStats)) {
	s.mu.Lock()
	fn(&s.gaps)
	s.mu.Unlock()
}

// GapTotals returns the summed gap statistics of all shards.
func (r *Recorder) GapTotals() GapStats {
	var g GapStats
	r.each(func(s *Shard) { g.Add(s.gaps) })
	return g
}

// Op is one measured operation (handshake, rtt, dug, ...) in a Shard:
// its latency histogram, a second histogram of the current progress
// interval, and an error count.
type Op struct {
	mu       *sync.Mutex // the shard's lock
	total    *Hist
	interval *Hist
	errors   int64
}

// NewRecorder returns a Recorder with n shards.
func NewRecorder(n int) *Recorder {
	r := &Recorder{}
	for i := 0; i < n; i++ {
		r.shards = append(r.shards, &Shard{ops: map[string]*Op{}, counters: map[string]*int64{}})
	}
	return r
}

// Shard returns shard i (i modulo the shard count).
func (r *Recorder) Shard(i int) *Shard {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.shards[i%len(r.shards)]
}

// Op returns the named operation, creating it. Callers keep the pointer and
// call Record on the hot path.
func (s *Shard) Op(name string) *Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.ops[name]
	if !ok {
		o = &Op{mu: &s.mu, total: NewHist(), interval: NewHist()}
		s.ops[name] = o
	}
	return o
}

// Record adds one successful operation with latency d.
func (o *Op) Record(d time.Duration) {
	o.mu.Lock()
	o.recordLocked(d)
	o.mu.Unlock()
}

// recordLocked is Record for a caller that holds the shard lock.
func (o *Op) recordLocked(d time.Duration) {
	o.total.Record(d)
	o.interval.Record(d)
}

// Error counts one failed operation.
func (o *Op) Error() {
	o.mu.Lock()
	o.errors++
	o.mu.Unlock()
}

// Add adds n to the named counter (created at zero).
func (s *Shard) Add(name string, n int64) { atomic.AddInt64(s.Counter(name), n) }

// Counter returns a pointer to the named counter for hot paths; it must be
// updated with atomic operations (Totals and Counters read it atomically).
func (s *Shard) Counter(name string) *int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.counters[name]
	if !ok {
		c = new(int64)
		s.counters[name] = c
	}
	return c
}

// OpResult is an Op's exported state.
type OpResult struct {
	Count  int64    `json:"count"`
	Errors int64    `json:"errors"`
	Hist   Snapshot `json:"hist"`
}

// Interval returns, per operation, a snapshot of the values recorded since
// the previous call, and empties the interval histograms.
func (r *Recorder) Interval() map[string]Snapshot {
	merged := map[string]*Hist{}
	r.each(func(s *Shard) {
		for name, o := range s.ops {
			mergeNamed(merged, name, o.interval)
			o.interval.Reset()
		}
	})
	out := make(map[string]Snapshot, len(merged))
	for name, h := range merged {
		out[name] = h.Export()
	}
	return out
}

// Totals returns the merged operations and counters of all shards.
func (r *Recorder) Totals() (map[string]OpResult, map[string]int64) {
	hs := map[string]*Hist{}
	errs := map[string]int64{}
	counters := map[string]int64{}
	r.each(func(s *Shard) {
		for name, o := range s.ops {
			mergeNamed(hs, name, o.total)
			errs[name] += o.errors
		}
		s.addCounters(counters)
	})
	ops := make(map[string]OpResult, len(hs))
	for name, h := range hs {
		ops[name] = OpResult{Count: h.Count(), Errors: errs[name], Hist: h.Export()}
	}
	return ops, counters
}

// Counters returns the summed counters of all shards.
func (r *Recorder) Counters() map[string]int64 {
	out := map[string]int64{}
	r.each(func(s *Shard) { s.addCounters(out) })
	return out
}

// mergeNamed merges h into dst[name], creating it.
func mergeNamed(dst map[string]*Hist, name string, h *Hist) {
	m, ok := dst[name]
	if !ok {
		m = NewHist()
		dst[name] = m
	}
	m.Merge(h)
}

// addCounters adds s's counters to out; the caller holds s.mu.
func (s *Shard) addCounters(out map[string]int64) {
	for name, c := range s.counters {
		out[name] += atomic.LoadInt64(c)
	}
}

func (r *Recorder) each(fn func(s *Shard)) {
	r.mu.Lock()
	shards := append([]*Shard(nil), r.shards...)
	r.mu.Unlock()
	for _, s := range shards {
		s.mu.Lock()
		fn(s)
		s.mu.Unlock()
	}
}

// SortedKeys returns m's keys in order, for stable reports.
func SortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
