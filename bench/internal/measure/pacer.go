package measure

import "time"

// Pacer schedules an open-loop stream: operation k is intended to start at
// start + k/rate, whatever happened to earlier operations. Latency measured
// from the intended time includes any delay the sender itself suffered, so a
// stalled server cannot hide its stall by slowing the load down (coordinated
// omission).
type Pacer struct {
	start time.Time
	ns    float64 // nanoseconds between operations
	next  int64   // first operation not yet handed out
	limit int64   // operations in total; -1 = unbounded
}

// NewPacer returns a pacer for rate operations per second starting at start,
// handing out at most limit operations (-1 for no limit). A rate <= 0 hands
// out nothing.
func NewPacer(start time.Time, rate float64, limit int64) *Pacer {
	p := &Pacer{start: start, limit: limit}
	if rate > 0 {
		p.ns = 1e9 / rate
	} else {
		p.limit = 0
	}
	return p
}

// Intended is the scheduled start of operation k.
func (p *Pacer) Intended(k int64) time.Time {
	return p.start.Add(time.Duration(float64(k) * p.ns))
}

// Due returns the operations [from, to) whose intended time is at or before
// now and that were not handed out yet.
func (p *Pacer) Due(now time.Time) (from, to int64) {
	from = p.next
	if p.limit == 0 || now.Before(p.start) {
		return from, from
	}
	to = int64(float64(now.Sub(p.start))/p.ns) + 1
	if p.limit >= 0 && to > p.limit {
		to = p.limit
	}
	if to < from {
		to = from
	}
	p.next = to
	return from, to
}

// NextAt is when the next operation is due; the zero time if none remains.
func (p *Pacer) NextAt() time.Time {
	if p.limit >= 0 && p.next >= p.limit {
		return time.Time{}
	}
	return p.Intended(p.next)
}

// minSleep keeps a fast pacer from spinning: operations due within it are
// handed out together, each still stamped with its own intended time.
const minSleep = 250 * time.Microsecond

// preciseBelow is the wait below which Drive sleeps in the kernel
// (preciseSleep) instead of on a runtime timer: when the process is
// otherwise idle, a runtime timer under a millisecond fires after about a
// millisecond (the netpoller waits in whole milliseconds), which would be
// the load generator's own latency in every open-loop operation.
const preciseBelow = 2 * time.Millisecond

// Drive hands due operations to batch until end, stop is closed or the pacer
// runs out. It runs on the caller's goroutine (which it blocks in the kernel
// for short waits).
func Drive(p *Pacer, end time.Time, stop <-chan struct{}, batch func(from, to int64)) {
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		now := time.Now()
		last := !now.Before(end)
		if last {
			// Hand out what was scheduled before the end, nothing after.
			now = end.Add(-time.Nanosecond)
		}
		if from, to := p.Due(now); to > from {
			batch(from, to)
		}
		if last {
			return
		}
		next := p.NextAt()
		if next.IsZero() {
			return
		}
		if !next.Before(end) {
			next = end
		}
		d := time.Until(next)
		if d < minSleep {
			d = minSleep
		}
		if d < preciseBelow {
			preciseSleep(d)
			select {
			case <-stop:
				return
			default:
			}
			continue
		}
		t.Reset(d)
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}
