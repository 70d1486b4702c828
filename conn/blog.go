package conn

import "unsafe"

// The broadcast log holds the loop's reliable shared frames (Send of a
// framing.Prepared, precompiled control frames) in the order the loop
// queued them, and both the pending chains of a pass and the outbound
// queues of connections waiting for their socket refer to consecutive
// entries as one run (the log's sequence number of its first frame and a
// count). A connection that falls behind a broadcast stream thus holds one
// run however many frames it is owed, instead of an item per frame: with an
// item per queued frame (32 bytes each, up to MaxQueueFrames per connection),
// an overloaded /fanout to 10,000 connections held 290 MB of queue items.
//
// Entries are numbered by a 32-bit sequence that wraps; blog[0] is logBase.
// Runs only point forward from logBase, so offsets from it never wrap. The
// log keeps what the oldest run still needs: compactLog drops the rest, and a
// connection whose run would pin more than logMax entries (a slow reader in a
// quiet hunt while other hunts keep broadcasting) has that run spilled into
// its own queue, an item per frame, within its own queue bounds.

// logFrame is an entry of the loop's broadcast log.
type logFrame struct {
	p *byte
	n uint32
}

func (e logFrame) is(b []byte) bool { return e.p == unsafe.SliceData(b) && int(e.n) == len(b) }

func (e logFrame) bytes() []byte { return unsafe.Slice(e.p, e.n) }

// logCompactMin is the log length below which it is never compacted (while
// runs refer to it; an unreferenced log is emptied after every flush).
const logCompactMin = 1024

// logMax bounds the entries the log keeps for queued runs: twice what one
// connection may have queued, plus a batch of broadcasts found at once.
func (l *Loop) logMax() int { return 2*l.cfg.MaxQueueFrames + 4096 }

// logEnd is the sequence number the next entry gets.
func (l *Loop) logEnd() uint32 { return l.logBase + uint32(len(l.blog)) }

// logRange returns the n entries from sequence number seq.
func (l *Loop) logRange(seq, n uint32) []logFrame {
	i := seq - l.logBase
	return l.blog[i : i+n]
}

// logAt returns the entry with sequence number seq.
func (l *Loop) logAt(seq uint32) logFrame { return l.blog[seq-l.logBase] }

// extendRun appends shared frame b to the run of n frames from seq if b can
// be its next frame: the log's next entry after the run is b (another
// connection of the same walk added it), or the run ends the log and b is
// appended to it. It reports whether it did.
func (l *Loop) extendRun(seq, n uint32, b []byte) bool {
	end := seq + n - l.logBase
	switch {
	case int(end) < len(l.blog):
		return l.blog[end].is(b)
	case int(end) == len(l.blog):
		l.blog = append(l.blog, logFrame{p: unsafe.SliceData(b), n: uint32(len(b))})
		return true
	}
	return false
}

// startRun returns the sequence number of a new run of shared frame b: the
// log's last entry if that is b, else a new entry.
func (l *Loop) startRun(b []byte) uint32 {
	if k := len(l.blog); k == 0 || !l.blog[k-1].is(b) {
		l.blog = append(l.blog, logFrame{p: unsafe.SliceData(b), n: uint32(len(b))})
	}
	return l.logEnd() - 1
}

// compactLog runs after every flush. A log no run refers to is emptied; one
// that has grown to twice what the last compaction kept (or past logMax)
// drops the entries before the oldest run, spilling the queued runs that
// would keep it over logMax.
func (l *Loop) compactLog() {
	if l.pendLive == 0 && l.logRuns == 0 {
		l.logBase = l.logEnd()
		clear(l.blog)
		l.blog = l.blog[:0]
		l.logKeep = 0
		if cap(l.blog) > 4*l.logMax() {
			l.blog = nil // a past burst: do not keep its array
		}
		return
	}
	n := len(l.blog)
	if n < logCompactMin || n < 2*l.logKeep && (n <= l.logMax() || n < l.logKeep+logCompactMin) {
		return
	}
	low, floor := l.oldestRun()
	if over := n - l.logMax(); over > 0 && int(low) < over {
		// Keep logMax entries at most: runs older than that, in
		// queues, become items of their own queues. Pending runs
		// (this pass's) stay where they are, bounding the cut.
		cut := min(uint32(over), floor)
		if low < cut {
			l.spillRuns(cut)
			low, _ = l.oldestRun()
		}
	}
	m := copy(l.blog, l.blog[low:])
	clear(l.blog[m:])
	l.blog = l.blog[:m]
	l.logBase += low
	l.logKeep = m
}

// oldestRun returns the offset from logBase of the oldest entry a run
// refers to (len(blog) if none), and that of the oldest entry a pending run
// refers to.
func (l *Loop) oldestRun() (low, floor uint32) {
	floor = uint32(len(l.blog))
	if l.pendLive > 0 {
		for i := range l.pend {
			if it := &l.pend[i]; it.f&pRun != 0 && it.key-l.logBase < floor {
				floor = it.key - l.logBase
			}
		}
	}
	low = floor
	if l.logRuns == 0 {
		return low, floor
	}
	for i := 1; i < l.queues.len(); i++ {
		q := l.queues.at(uint32(i))
		if q.runs == 0 {
			continue
		}
		// Runs in a queue are in log order: the first one is the oldest.
		for j := q.head; j < len(q.items); j++ {
			if it := &q.items[j]; it.run {
				low = min(low, it.key-l.logBase)
				break
			}
		}
	}
	return low, floor
}

// spillRuns turns every queued run that starts before offset cut into an
// item per frame in its queue.
func (l *Loop) spillRuns(cut uint32) {
	for i := 1; i < l.queues.len(); i++ {
		q := l.queues.at(uint32(i))
		if q.runs == 0 {
			continue
		}
		spill := false
		for j := q.head; j < len(q.items); j++ {
			if it := &q.items[j]; it.run {
				spill = it.key-l.logBase < cut
				break
			}
		}
		if !spill {
			continue
		}
		items := make([]qitem, 0, len(q.items)-q.head+q.frames())
		for _, it := range q.items[q.head:] {
			if !it.run || it.key-l.logBase >= cut {
				items = append(items, it)
				continue
			}
			for _, e := range l.logRange(it.key, it.n) {
				items = append(items, qitem{b: e.bytes()})
			}
			q.runs--
			l.logRuns--
		}
		clear(q.items)
		q.items = items
		q.head = 0
		l.spilled++
	}
}
