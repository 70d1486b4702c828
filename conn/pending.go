package conn

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// pitem is one frame, or a run of shared frames, produced for a connection
// that has no outbound queue. Items of one connection are linked in order
// through next (an index+1 into the loop's pending array; 0 ends the chain),
// so a broadcast to thousands of connections allocates nothing per
// connection. It is 24 bytes.
//
// A run (pRun) stands for consecutive entries of the loop's broadcast log
// (blog.go): key is the first entry's sequence number and n the number of
// frames. A connection
// that gets every broadcast of a pass (a loop that fell behind a broadcast
// stream finds many at once) holds one run however many there are, instead
// of an item per frame: with an item per frame, an overloaded /fanout to
// 10,000 connections held 140-150 MB of pending items (heap profile).
type pitem struct {
	p    *byte  // the frame's first byte; nil for a run, a dropped frame (hole) or a free item
	n    uint32 // frame length; for a run, its frame count
	key  uint32 // SendLatest key, 0 = reliable; for a run, its first log index
	next uint32
	f    uint8 // pLinked, pPass, pRun
}

const (
	pLinked uint8 = 1 << iota // part of a chain (a hole included)
	pPass                     // the frame lies in the pass buffer
	pRun                      // a run of broadcast log entries
)

// frameLen is the length of the first frame of item it.
func (l *Loop) frameLen(it *pitem) int {
	if it.f&pRun != 0 {
		return int(l.logAt(it.key).n)
	}
	return int(it.n)
}

func (it *pitem) bytes() []byte { return unsafe.Slice(it.p, it.n) }

// pendFramesMax bounds a connection's pending frames in one pass (the
// slot's counter is 16 bits): beyond it they are written at once, as for a
// full queue.
const pendFramesMax = 1<<16 - 1

// pushPending links it at the end of the slot's pending chain. A reliable
// shared frame goes through the broadcast log: it extends the run at the
// chain's end when it is that run's next log entry, so a connection that gets
// a pass's broadcasts in the order the loop made them holds a single item.
func (l *Loop) pushPending(s *slot, it qitem) {
	s.pn++
	s.pb += uint32(len(it.b))
	if it.key == 0 && !it.pass {
		l.pushShared(s, it.b)
		return
	}
	f := pLinked
	if it.pass {
		f |= pPass
	}
	l.link(s, pitem{p: unsafe.SliceData(it.b), n: uint32(len(it.b)), key: it.key, f: f})
}

// pushShared queues shared frame b for s through the broadcast log.
func (l *Loop) pushShared(s *slot, b []byte) {
	if s.ptail != 0 {
		if t := &l.pend[s.ptail-1]; t.f&pRun != 0 && l.extendRun(t.key, t.n, b) {
			t.n++
			return
		}
	}
	l.link(s, pitem{n: 1, key: l.startRun(b), f: pLinked | pRun})
}

// link appends a new item to s's chain.
func (l *Loop) link(s *slot, it pitem) {
	l.pend = append(l.pend, it)
	i := uint32(len(l.pend))
	if s.ptail != 0 {
		l.pend[s.ptail-1].next = i
	} else {
		s.phead = i
	}
	s.ptail = i
	l.pendLive++
}

// replacePending is replaceLatest for a pending chain: nothing in it has
// started going out, so the latest same-key frame is replaced in place when
// no reliable frame lies behind it, and dropped (left as a hole) otherwise.
func (l *Loop) replacePending(s *slot, b []byte, key uint32) bool {
	var m uint32
	behind := false
	for i := s.phead; i != 0; i = l.pend[i-1].next {
		it := &l.pend[i-1]
		if it.n == 0 {
			continue
		}
		if it.f&pRun != 0 {
			behind = behind || m != 0 // reliable frames
			continue
		}
		if it.key == key {
			m, behind = i, false
		} else if it.key == 0 && m != 0 {
			behind = true
		}
	}
	if m == 0 {
		return false
	}
	it := &l.pend[m-1]
	if !behind {
		s.pb += uint32(len(b)) - it.n
		it.p, it.n, it.f = unsafe.SliceData(b), uint32(len(b)), pLinked
		return true
	}
	s.pb -= it.n
	s.pn--
	l.pendLive--
	it.p, it.n, it.key, it.f = nil, 0, 0, pLinked
	return false
}

// dropPending forgets the slot's pending chain.
func (l *Loop) dropPending(s *slot) {
	for i := s.phead; i != 0; {
		it := &l.pend[i-1]
		if it.n > 0 {
			l.pendLive--
		}
		i = it.next
		*it = pitem{}
	}
	s.phead, s.ptail, s.pn, s.pb = 0, 0, 0, 0
}

// popPending drops the chain's first frame, unlinking its item once empty.
func (l *Loop) popPending(s *slot) {
	it := &l.pend[s.phead-1]
	switch {
	case it.f&pRun != 0:
		s.pn--
		s.pb -= l.logAt(it.key).n
		it.key++
		if it.n--; it.n > 0 {
			return
		}
		l.pendLive--
	case it.n > 0:
		s.pn--
		s.pb -= it.n
		l.pendLive--
	}
	s.phead = it.next
	*it = pitem{}
	if s.phead == 0 {
		s.ptail = 0
	}
}

// appendIov appends a buffer to iov, extending the last entry when the
// buffer continues it in memory: the frames written to one connection in a
// row sit back to back in the pass buffer (8 pipelined replies become one
// segment, and then one send), so the kernel copies fewer, larger segments.
func appendIov(iov []unix.Iovec, p *byte, n uint64) []unix.Iovec {
	if k := len(iov); k > 0 && uintptr(unsafe.Pointer(iov[k-1].Base))+uintptr(iov[k-1].Len) == uintptr(unsafe.Pointer(p)) {
		iov[k-1].Len += n
		return iov
	}
	return append(iov, unix.Iovec{Base: p, Len: n})
}

// flushPending writes a slot's pending chain with one writev (more only for
// chains beyond IOV_MAX the socket takes whole). What the socket does not
// take moves into an outbound queue, the rare case.
func (l *Loop) flushPending(idx uint32) {
	s := l.slots.at(idx)
	off, wrote := 0, 0
	for {
		iov, want := l.iov[:0], 0
	chain:
		for i := s.phead; i != 0; i = l.pend[i-1].next {
			it := &l.pend[i-1]
			if it.f&pRun != 0 {
				for _, e := range l.logRange(it.key, it.n) {
					if len(iov) == maxIov {
						break chain
					}
					iov = appendIov(iov, e.p, uint64(e.n))
					want += int(e.n)
				}
				continue
			}
			if it.n == 0 {
				continue
			}
			if len(iov) == maxIov {
				break
			}
			iov = appendIov(iov, it.p, uint64(it.n))
			want += int(it.n)
		}
		n, err := writev(int(s.fd), iov)
		clear(iov)
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			l.writeFailed(idx)
			return
		}
		l.cnt.bytesOut += int64(n)
		wrote += n
		took := n
		for s.phead != 0 {
			rem := l.frameLen(&l.pend[s.phead-1])
			if n < rem {
				off = n
				break
			}
			n -= rem
			l.popPending(s)
		}
		// Only a full batch taken whole is worth another write: one cut
		// short, even at a frame boundary or by EAGAIN, waits for EPOLLOUT.
		if len(iov) < maxIov || took < want || s.phead == 0 {
			break
		}
	}
	if s.phead == 0 {
		l.drained(idx)
		return
	}
	// Left over: the chain becomes the connection's queue; runs stay
	// runs of the broadcast log.
	s.outq = l.queues.alloc()
	q := l.queues.at(s.outq)
	for i := s.phead; i != 0; i = l.pend[i-1].next {
		it := &l.pend[i-1]
		if it.f&pRun != 0 {
			q.items = append(q.items, qitem{key: it.key, n: it.n, run: true})
			for _, e := range l.logRange(it.key, it.n) {
				q.bytes += int(e.n)
			}
			q.n += int(it.n)
			q.runs++
			l.logRuns++
			continue
		}
		if it.n == 0 {
			continue
		}
		q.items = append(q.items, qitem{b: it.bytes(), key: it.key, pass: it.f&pPass != 0})
		q.bytes += int(it.n)
		q.n++
	}
	q.off = off
	q.bytes -= off
	l.dropPending(s)
	l.waitOut(idx, wrote > 0)
}

// compactPending keeps the pending array proportional to what is pending.
// With nothing pending it is simply emptied; chains left for the next pass
// (a bulk flush cut by its budget) are slid down in place once free items
// dominate, keeping their order, so the array never needs a second copy.
func (l *Loop) compactPending() {
	if l.pendLive == 0 {
		clear(l.pend)
		l.pend = l.pend[:0]
		return
	}
	if len(l.pend) < 2*l.pendLive+1024 {
		return
	}
	// Items only move down, so one pass in index order can both number
	// the linked items and move them; links point either way, so they are
	// rewritten in a second pass through the forwarding table.
	fwd := l.pfwd[:0]
	k := uint32(0)
	for i := range l.pend {
		if l.pend[i].f&pLinked == 0 {
			fwd = append(fwd, 0)
			continue
		}
		l.pend[k] = l.pend[i]
		k++
		fwd = append(fwd, k)
	}
	clear(l.pend[k:])
	l.pend = l.pend[:k]
	for i := range l.pend {
		if nx := l.pend[i].next; nx != 0 {
			l.pend[i].next = fwd[nx-1]
		}
	}
	for _, idx := range l.dirty {
		s := l.slots.at(idx)
		if s.phead != 0 && s.flags&fDeferred == 0 {
			s.flags |= fDeferred // each slot once, however often listed
			s.phead, s.ptail = fwd[s.phead-1], fwd[s.ptail-1]
		}
	}
	for _, idx := range l.dirty {
		l.slots.at(idx).flags &^= fDeferred
	}
	if cap(fwd) > 4*len(l.pend)+4096 {
		fwd = nil // a past burst: do not keep its table
	}
	l.pfwd = fwd[:0]
}
