package state

import "time"

// Defaults of a History's bounds.
const (
	DefaultHistoryMax = 4096
	DefaultHistoryAge = 2 * time.Minute
)

// History holds the last reliable updates of one hunt for resume, bounded
// both by count and by age: a ring buffer that grows up to max entries and
// then overwrites the oldest. Appending never allocates once it is full.
// Seqs are contiguous: every reliable update of the hunt is appended.
//
// A History is not safe for concurrent use; a hunt's lock guards it.
type History struct {
	buf  []Update // ring; len(buf) grows to max
	head int      // index of the oldest held update
	n    int      // updates held
	max  int
	age  time.Duration
	last uint64 // seq of the last update appended
}

// NewHistory returns an empty history keeping at most max updates (0 means
// DefaultHistoryMax) no older than age (0 means DefaultHistoryAge).
func NewHistory(max int, age time.Duration) *History {
	if max <= 0 {
		max = DefaultHistoryMax
	}
	if age <= 0 {
		age = DefaultHistoryAge
	}
	return &History{max: max, age: age}
}

// Len returns the number of updates held.
func (h *History) Len() int { return h.n }

// Append adds u (a reliable update whose Seq follows the last one) and drops
// what is over the count or older than the age at u.At.
func (h *History) Append(u Update) {
	h.Expire(u.At)
	if h.n == len(h.buf) && len(h.buf) < h.max {
		h.grow()
	}
	if h.n == h.max {
		h.buf[h.head] = Update{}
		h.head = (h.head + 1) % len(h.buf)
		h.n--
	}
	h.buf[(h.head+h.n)%len(h.buf)] = u
	h.n++
	h.last = u.Seq
}

// grow doubles the ring (up to max), unrolling it so head is 0; a hunt with
// little traffic never pays for max entries.
func (h *History) grow() {
	c := 2 * len(h.buf)
	if c < 16 {
		c = 16
	}
	if c > h.max {
		c = h.max
	}
	nb := make([]Update, c)
	for i := 0; i < h.n; i++ {
		nb[i] = h.buf[(h.head+i)%len(h.buf)]
	}
	h.buf, h.head = nb, 0
}

// Expire drops the updates older than the age at now.
func (h *History) Expire(now time.Time) {
	cut := now.Add(-h.age)
	for h.n > 0 && h.buf[h.head].At.Before(cut) {
		h.buf[h.head] = Update{} // let go of Data and Top
		h.head = (h.head + 1) % len(h.buf)
		h.n--
	}
}

// Since appends to dst the updates with seq > since, given that seq is the
// hunt's current seq, and reports whether that is all of them: false when
// since is ahead of seq or some of (since, seq] are no longer held.
func (h *History) Since(dst []Update, since, seq uint64, now time.Time) ([]Update, bool) {
	h.Expire(now)
	if since > seq {
		return dst, false
	}
	if since == seq {
		return dst, true
	}
	if h.n == 0 || h.last != seq {
		return dst, false
	}
	first := h.buf[h.head].Seq
	if since+1 < first {
		return dst, false
	}
	for i := int(since + 1 - first); i < h.n; i++ {
		dst = append(dst, h.buf[(h.head+i)%len(h.buf)])
	}
	return dst, true
}
