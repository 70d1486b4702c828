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
// epoll_wait no longer than until the next non-empty bucket, then calls
// advance. No timer goroutines, no per-connection time.Timer.
type wheel struct {
	buckets [wheelBuckets][]timerEntry
	spare   []timerEntry
	cur     int64 // last processed tick
	count   int   // entries in all buckets
}

func (w *wheel) init(now int64) { w.cur = now / wheelTick }

func (w *wheel) add(e timerEntry) {
	// The bucket of the first tick boundary at or after when: by the time
	// the loop processes it, the entry is due.
	t := (e.when + wheelTick - 1) / wheelTick
	if t <= w.cur {
		t = w.cur + 1
	}
	b := &w.buckets[t&wheelMask]
	*b = append(*b, e)
	w.count++
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
			continue
		}
		// fire's own additions to this bucket (one revolution ahead) come
		// after the entries kept.
		w.buckets[i] = append(keep, w.buckets[i]...)
		if cap(batch) <= spareKeep || cap(batch) <= 4*len(w.buckets[i]) {
			w.spare = batch[:0]
		}
	}
}

// spareKeep is the capacity of a free bucket array that is kept whatever
// the use of the bucket it came from; smallBucket the capacity an emptied
// bucket keeps.
const (
	spareKeep   = 64
	smallBucket = 16
)

// timeout returns how long epoll_wait may sleep, in ms: until the start of
// the next non-empty bucket, or -1 with no entries.
func (w *wheel) timeout(now int64) int {
	if w.count == 0 {
		return -1
	}
	for k := int64(1); k <= wheelBuckets; k++ {
		if len(w.buckets[(w.cur+k)&wheelMask]) != 0 {
			d := (w.cur+k)*wheelTick - now
			if d <= 0 {
				return 0
			}
			return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
		}
	}
	return int(wheelBuckets * wheelTick / int64(time.Millisecond))
}
