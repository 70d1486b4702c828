package conn

import "time"

// Wheel geometry: 5 ms ticks, 1024 buckets (a 5.12 s revolution). Entries
// further out than one revolution stay in their bucket and are looked at once
// per revolution until due, so any delay fits.
const (
	wheelTick    = int64(5 * time.Millisecond)
	wheelBuckets = 1024
	wheelMask    = wheelBuckets - 1
)

// timerEntry is a wheel entry, 16 bytes with no pointers: a connection
// entry names its slot (idx, gen); an After entry has idx timerAfter and
// names a function in the loop's callback table by gen. The wheel holds
// one entry per connection, so its size is part of every idle
// connection's memory.
type timerEntry struct {
	when int64 // loop clock, ns
	idx  uint32
	gen  uint32
}

// timerAfter is the idx of an After entry; no slot has it (it is also the
// eventfd's reserved epoll index).
const timerAfter = ^uint32(0)

// wheel is a hashed timer wheel driven by the loop: the loop sleeps in
// epoll_wait until the first tick at which an entry is due, then calls
// advance. No timer goroutines, no per-connection time.Timer.
//
// Sleeping until the next due entry rather than the next non-empty bucket
// matters for idle connections: each has an entry minutes ahead, so with a
// few thousand of them every bucket holds one and a loop woke every 5 ms
// (200 times a second) to find nothing due. With the 170 processes that a
// million connections take on one machine (20,000 files per process) those
// wake-ups were most of an idle machine's CPU: 48,000 context switches a
// second with 300,000 idle players in 58 processes.
type wheel struct {
	buckets [wheelBuckets][]timerEntry
	// first is, per bucket, the earliest tick at which one of its entries
	// is due (0: empty); due caches their minimum (0: to be recomputed).
	first [wheelBuckets]int64
	due   int64
	spare []timerEntry
	cur   int64 // last processed tick
	count int   // entries in all buckets
}

func (w *wheel) init(now int64) { w.cur = now / wheelTick }

func (w *wheel) add(e timerEntry) {
	// The bucket of the first tick boundary at or after when: by the time
	// the loop processes it, the entry is due.
	t := (e.when + wheelTick - 1) / wheelTick
	if t <= w.cur {
		t = w.cur + 1
	}
	i := t & wheelMask
	b := &w.buckets[i]
	*b = append(*b, e)
	w.count++
	if f := w.first[i]; f == 0 || t < f {
		w.first[i] = t
	}
	if w.due != 0 && t < w.due {
		w.due = t
	}
}

// refirst recomputes bucket i's earliest due tick after a visit. Every entry
// left in it is due after the current tick, at the tick its deadline
// rounds up to (entries placed on a later tick because they were added
// already due are fired on that visit, never kept).
func (w *wheel) refirst(i int64) {
	f := int64(0)
	for _, e := range w.buckets[i] {
		if t := (e.when + wheelTick - 1) / wheelTick; f == 0 || t < f {
			f = t
		}
	}
	w.first[i] = f
}

// advance fires every entry due at now, in bucket order. fire may add entries.
func (w *wheel) advance(now int64, fire func(timerEntry)) {
	target := now / wheelTick
	steps := target - w.cur
	if steps > wheelBuckets {
		// Asleep for more than a revolution: visiting each bucket once
		// still finds every due entry.
		steps = wheelBuckets
		w.cur = target - wheelBuckets
	}
	for ; steps > 0; steps-- {
		w.cur++
		i := w.cur & wheelMask
		batch := w.buckets[i]
		if len(batch) == 0 {
			continue
		}
		if w.first[i] > w.cur {
			// Nothing in this bucket is due before a later revolution.
			continue
		}
		// An emptied bucket keeps no array: after a connection storm the
		// storm's deadlines fill a few hundred buckets, and arrays left in
		// them would hold burst-sized capacity for good (measured: 2.7
		// entries of capacity per connection where one is in use).
		w.buckets[i] = nil
		w.count -= len(batch)
		keep := w.spare[:0]
		w.spare = nil
		for _, e := range batch {
			if e.when <= now {
				fire(e)
			} else {
				keep = append(keep, e)
				w.count++
			}
		}
		clear(batch)
		if len(keep) == 0 {
			w.spare = keep
			if w.buckets[i] == nil && cap(batch) <= smallBucket {
				// Small enough to keep for steady re-arming, which then
				// allocates nothing; a larger one goes to the collector.
				w.buckets[i] = batch[:0]
			}
			w.refirst(i)
			continue
		}
		// fire's own additions to this bucket (one revolution ahead) come
		// after the entries kept.
		w.buckets[i] = append(keep, w.buckets[i]...)
		if cap(batch) <= spareKeep || cap(batch) <= 4*len(w.buckets[i]) {
			w.spare = batch[:0]
		}
		w.refirst(i)
	}
	if w.due != 0 && w.due <= w.cur {
		// What was the earliest has been processed.
		w.due = 0
	}
}

// spareKeep is the capacity of a free bucket array that is kept whatever
// the use of the bucket it came from; smallBucket the capacity an emptied
// bucket keeps.
const (
	spareKeep   = 64
	smallBucket = 16
)

// timeout returns how long epoll_wait may sleep, in ms: until the tick at
// which the earliest entry is due, or -1 with no entries. The minimum over
// the buckets is recomputed (1,024 reads) only after the earliest entry was
// processed; adding keeps it current.
func (w *wheel) timeout(now int64) int {
	if w.count == 0 {
		return -1
	}
	if w.due == 0 {
		for _, f := range w.first {
			if f != 0 && (w.due == 0 || f < w.due) {
				w.due = f
			}
		}
	}
	d := w.due*wheelTick - now
	if d <= 0 {
		return 0
	}
	return int(min((d+int64(time.Millisecond)-1)/int64(time.Millisecond), maxSleepMs))
}

// maxSleepMs bounds one epoll_wait; the loop then finds nothing due and
// sleeps again.
const maxSleepMs = 1 << 30
