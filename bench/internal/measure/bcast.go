package measure

import (
	"sort"
	"time"
)

// BcastRec is what the receivers of one broadcast message (a /fanout message
// or a published hunt event) saw: how many got it and when the last one did.
// Receivers in several processes each produce one; MergeBcast joins them.
type BcastRec struct {
	ID    uint32 `json:"id"`
	Step  int    `json:"s"`    // rate step the message belongs to
	Sent  int64  `json:"sent"` // intended send time, Unix ns
	Count int64  `json:"n"`    // receivers that got it
	Last  int64  `json:"last"` // latest receipt, Unix ns
}

// Deliver accounts one receipt of broadcast id (sent at sent, Unix ns) at
// recv, and records its one-way latency in op (if not nil).
func (s *Shard) Deliver(id uint32, step int, sent int64, recv time.Time, op *Op) {
	rn := recv.UnixNano()
	s.mu.Lock()
	if s.bcast == nil {
		s.bcast = map[uint32]*BcastRec{}
	}
	r, ok := s.bcast[id]
	if !ok {
		r = &BcastRec{ID: id, Step: step, Sent: sent}
		s.bcast[id] = r
	}
	r.Count++
	if rn > r.Last {
		r.Last = rn
	}
	if op != nil {
		op.recordLocked(time.Duration(rn - sent))
	}
	s.mu.Unlock()
}

// Bcast returns the merged broadcast records of all shards, by id.
func (r *Recorder) Bcast() []BcastRec {
	var all []BcastRec
	r.each(func(s *Shard) {
		for _, b := range s.bcast {
			all = append(all, *b)
		}
	})
	return MergeBcast(all)
}

// MergeBcast joins records of the same message from several shards or
// processes: counts add up, the latest receipt wins. The result is sorted
// by id.
func MergeBcast(recs ...[]BcastRec) []BcastRec {
	m := map[uint32]*BcastRec{}
	for _, rs := range recs {
		for _, r := range rs {
			x, ok := m[r.ID]
			if !ok {
				c := r
				m[r.ID] = &c
				continue
			}
			x.Count += r.Count
			if r.Last > x.Last {
				x.Last = r.Last
			}
		}
	}
	out := make([]BcastRec, 0, len(m))
	for _, r := range m {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// StepResult sums up one rate step of a broadcast run.
type StepResult struct {
	Step       int     `json:"step"`
	Rate       float64 `json:"rate"`        // messages per second offered
	Sent       int64   `json:"sent"`        // messages sent
	Expected   int64   `json:"expected"`    // sent x receivers
	Delivered  int64   `json:"delivered"`   // receipts
	Lost       int64   `json:"lost"`        // expected - delivered
	Complete   int64   `json:"complete"`    // messages every receiver got
	DeliveryPS float64 `json:"delivery_ps"` // receipts per second of the step
	TTE        *Hist   `json:"-"`           // time until every receiver had it
}

// Steps evaluates merged broadcast records: receivers is how many
// connections should get every message; sent and rates give per step the
// messages the sender sent and at what rate; dur is each step's length.
func Steps(recs []BcastRec, receivers int64, sent []int64, rates []float64, dur time.Duration) []StepResult {
	out := make([]StepResult, len(sent))
	for i := range out {
		out[i] = StepResult{Step: i, Rate: rates[i], Sent: sent[i], Expected: sent[i] * receivers, TTE: NewHist()}
	}
	for _, r := range recs {
		if r.Step < 0 || r.Step >= len(out) {
			continue
		}
		s := &out[r.Step]
		s.Delivered += r.Count
		if r.Count >= receivers {
			s.Complete++
			s.TTE.Record(time.Duration(r.Last - r.Sent))
		}
	}
	for i := range out {
		s := &out[i]
		s.Lost = s.Expected - s.Delivered
		if s.Lost < 0 {
			s.Lost = 0
		}
		if dur > 0 {
			s.DeliveryPS = float64(s.Delivered) / dur.Seconds()
		}
	}
	return out
}
