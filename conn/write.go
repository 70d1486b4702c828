package conn

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// ErrClientFrame is Send or SendLatest on a client connection: prepared
// frames are unmasked server frames; clients use Write.
var ErrClientFrame = errors.New("conn: prepared server frame on a client connection")

// ErrClosedEarly is given to OnClose of a dial closed by Loop.Close before
// its handshake finished.
var ErrClosedEarly = errors.New("conn: closed before the handshake finished")

// qitem is one queued frame, or a run of reliable shared frames in the
// loop's broadcast log (see blog.go). b is never copied while it references
// an immutable frame (a Prepared's bytes or a precompiled control frame).
type qitem struct {
	b    []byte // wire bytes of the frame; nil for a run and for a hole
	key  uint32 // SendLatest key, 0 = reliable; for a run, its first log sequence number
	n    uint32 // for a run, its frame count
	pass bool   // b lies in the loop's pass buffer: copy it if the pass ends unsent
	own  bool   // b lies in the queue's own storage
	run  bool   // a run of broadcast log entries
}

// outQueue is a connection's outbound queue, taken from the loop's arena when
// the first frame is queued and given back when it drains.
type outQueue struct {
	items []qitem
	head  int    // first unsent item
	off   int    // bytes of items[head] already written
	bytes int    // unsent bytes
	n     int    // unsent frames (a run counts its frames)
	runs  int    // runs among items
	holes int    // dropped latest-value entries (empty b) still in items
	own   []byte // storage for frames copied out of the pass buffer
}

// Storage a released queue may keep for its next use.
const (
	keepQueueBytes = 32 << 10
	keepQueueItems = 512
)

func resetQueue(q *outQueue) {
	clear(q.items)
	q.items = q.items[:0]
	q.head, q.off, q.bytes, q.holes, q.n, q.runs = 0, 0, 0, 0, 0, 0
	// A free queue keeps only modest storage: after a burst of blocked
	// connections the loop must not hold burst-sized queues for good.
	if cap(q.own) > keepQueueBytes {
		q.own = nil
	} else {
		q.own = q.own[:0]
	}
	if cap(q.items) > keepQueueItems {
		q.items = nil
	}
}

func (q *outQueue) frames() int { return q.n }

// firstLen is the length of the first frame of queued item it.
func (l *Loop) firstLen(it *qitem) int {
	if it.run {
		return int(l.logAt(it.key).n)
	}
	return len(it.b)
}

// over reports whether the queue would break the bounds with add more bytes
// in one more frames. A lone frame is never over the byte bound: a message
// larger than MaxQueueBytes (a 16 MiB echo on a connection whose message
// limit allows it) goes out when nothing else is queued. Memory stays bound
// by the larger of MaxQueueBytes and the largest frame the Handler writes;
// anything queued behind such a frame is held to MaxQueueBytes, so a peer
// that stops reading is closed as slow on its next message.
func (q *outQueue) over(add, one int, c *Config) bool {
	n := q.frames() + one
	return n > c.MaxQueueFrames || q.bytes+add > c.MaxQueueBytes && n > 1
}

// Send queues a shared immutable server frame (reliable delivery: if the
// queue overflows the connection is closed with 1008 "slow" and
// ErrQueueFull is returned).
func (l *Loop) Send(h Handle, f *framing.Prepared) error { return l.sendPrepared(h, f, 0) }

// SendLatest queues a latest-value frame: a queued frame with the same key
// that has not started going out is replaced by f instead. f never goes out
// before a reliable frame queued ahead of it: if one lies behind the older
// frame, the older frame is dropped and f is queued at the end. key must not
// be 0.
func (l *Loop) SendLatest(h Handle, f *framing.Prepared, key uint32) error {
	return l.sendPrepared(h, f, key)
}

// sendPrepared is Send (key 0) and SendLatest.
func (l *Loop) sendPrepared(h Handle, f *framing.Prepared, key uint32) error {
	if l.pendLive >= pendLimit {
		l.flushNow()
	}
	s, err := l.sendable(h)
	if err != nil {
		return err
	}
	if s.flags&fClient != 0 {
		return ErrClientFrame
	}
	l.cnt.msgsOut++
	return l.enqueue(h.Index(), f.Bytes(s.flags&fDeflate != 0), key, false)
}

// CheckHeld applies the queue bounds to output a Handler holds back for h
// and has not given to Send or Write yet (frames and bytes in all): over
// either bound, h is closed as if its queue had overflowed (1008 "slow",
// counted in Stats.SlowCloses, OnClose with ErrSlow) and ErrQueueFull is
// returned.
func (l *Loop) CheckHeld(h Handle, frames, bytes int) error {
	if _, err := l.sendable(h); err != nil {
		return err
	}
	if frames > l.cfg.MaxQueueFrames || bytes > l.cfg.MaxQueueBytes {
		l.slow(h.Index())
		return ErrQueueFull
	}
	return nil
}

// ErrOpCode is Write with an opcode other than OpText or OpBinary: control
// frames belong to the loop (Close starts the close handshake; pings and
// pongs are sent and answered by the loop itself).
var ErrOpCode = errors.New("conn: Write takes OpText or OpBinary")

// Write frames payload as one message (masked on client connections) into
// the pass buffer; payload is copied and may be reused at once. op must be
// OpText or OpBinary, else ErrOpCode.
func (l *Loop) Write(h Handle, op framing.OpCode, payload []byte) error {
	if op != framing.OpText && op != framing.OpBinary {
		return ErrOpCode
	}
	s, err := l.sendable(h)
	if err != nil {
		return err
	}
	start := len(l.pbuf)
	if s.flags&fClient != 0 {
		l.pbuf = framing.AppendMaskedFrame(l.pbuf, op, true, l.mask(), payload)
	} else {
		l.pbuf = framing.AppendFrame(l.pbuf, op, true, payload)
	}
	l.cnt.msgsOut++
	return l.enqueue(h.Index(), l.pbuf[start:len(l.pbuf):len(l.pbuf)], 0, true)
}

// Close starts the close handshake: a close frame with code and reason goes
// out, and the socket is closed when the peer answers (or after
// CloseTimeout). OnClose follows with code.
func (l *Loop) Close(h Handle, code framing.StatusCode, reason string) error {
	s, err := l.find(h)
	if err != nil {
		return err
	}
	switch s.state {
	case stOpen:
		l.sendClose(h.Index(), code, reason)
		return nil
	case stHandshake, stDialing, stClientHS:
		l.kill(h.Index(), framing.StatusAbnormal, ErrClosedEarly)
		return nil
	}
	return ErrClosed
}

func (l *Loop) sendable(h Handle) (*slot, error) {
	s, err := l.find(h)
	if err != nil {
		return nil, err
	}
	if s.state != stOpen {
		return nil, ErrClosed
	}
	return s, nil
}

// mask returns a fresh client mask (xorshift: masks need to be unpredictable
// to the network path, not cryptographically strong, RFC 6455 section 10.3).
func (l *Loop) mask() [4]byte {
	x := l.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	l.rng = x
	return [4]byte{byte(x), byte(x >> 8), byte(x >> 16), byte(x >> 24)}
}

func (l *Loop) appendClose(dst []byte, client bool, code framing.StatusCode, reason string) []byte {
	if client {
		return framing.AppendCloseFrame(dst, framing.RoleClient, l.mask(), code, reason)
	}
	if reason == "" {
		return append(dst, framing.CloseFrame(code)...)
	}
	return framing.AppendCloseFrame(dst, framing.RoleServer, [4]byte{}, code, reason)
}

// sendClose queues a close frame and moves the slot to stClosing.
func (l *Loop) sendClose(idx uint32, code framing.StatusCode, reason string) {
	s := l.slots.at(idx)
	start := len(l.pbuf)
	l.pbuf = l.appendClose(l.pbuf, s.flags&fClient != 0, code, reason)
	l.push(idx, qitem{b: l.pbuf[start:len(l.pbuf):len(l.pbuf)], pass: true}, true)
	s.state = stClosing
	s.code = code
	s.stamp = l.now
	l.armTimer(idx, l.now+int64(l.cfg.CloseTimeout))
}

// control queues a ping or pong. An empty server frame is the precompiled
// one; anything else goes through the pass buffer. It goes through the queue
// bounds like data: a peer that pings without reading would otherwise grow
// its queue by a pong per ping until WriteTimeout.
func (l *Loop) control(idx uint32, op framing.OpCode, payload []byte) {
	s := l.slots.at(idx)
	var b []byte
	pass := false
	if s.flags&fClient == 0 && len(payload) == 0 {
		b = framing.PongFrame
		if op == framing.OpPing {
			b = framing.PingFrame
		}
	} else {
		start := len(l.pbuf)
		if s.flags&fClient != 0 {
			l.pbuf = framing.AppendMaskedFrame(l.pbuf, op, true, l.mask(), payload)
		} else {
			l.pbuf = framing.AppendFrame(l.pbuf, op, true, payload)
		}
		b, pass = l.pbuf[start:len(l.pbuf):len(l.pbuf)], true
	}
	if l.enqueue(idx, b, 0, pass) == nil {
		l.slots.at(idx).flags |= fUrgent
	}
}

// enqueue queues a data frame, replacing a same-key frame that has not
// started, and applies the queue bounds to a connection that is already
// waiting for the socket. Frames of a pass are held in the loop's pending
// array; only a connection the socket did not drain has a queue.
func (l *Loop) enqueue(idx uint32, b []byte, key uint32, pass bool) error {
	s := l.slots.at(idx)
	if s.outq == 0 {
		if key != 0 && s.phead != 0 && l.replacePending(s, b, key) {
			return nil
		}
		if int(s.pb)+len(b) > l.cfg.MaxQueueBytes || int(s.pn) >= min(l.cfg.MaxQueueFrames, pendFramesMax) {
			// A burst within one pass: write now rather than hold
			// more than the bound until the end of the pass.
			l.flushConn(idx)
			s = l.slots.at(idx)
			if s.state != stOpen {
				return ErrClosed
			}
		}
	}
	if s.outq != 0 {
		q := l.queues.at(s.outq)
		// A replacement adds no frame but may add bytes (a larger value):
		// it is already in the queue and counted in q.bytes.
		add, one := len(b), 1
		placed := key != 0 && l.replaceLatest(q, b, key, pass)
		if placed {
			add, one = 0, 0
		}
		if q.over(add, one, l.cfg) {
			if s.flags&fArmedOut == 0 {
				l.flushConn(idx)
				s = l.slots.at(idx)
			}
			if s.state != stOpen {
				return ErrClosed
			}
			if s.outq != 0 {
				q = l.queues.at(s.outq)
				if q.over(add, one, l.cfg) {
					l.slow(idx)
					return ErrQueueFull
				}
			}
		}
		if placed {
			return nil
		}
	}
	l.push(idx, qitem{b: b, key: key, pass: pass}, pass)
	return nil
}

// replaceLatest applies SendLatest to a queue: the queued frame with key that
// has not started going out is replaced in place when no reliable frame
// (key 0) lies behind it. Otherwise it is dropped and the caller queues the
// new one at the end: a latest-value frame reflects the reliable frames
// sent before it, so it must never overtake them. It reports whether b was
// placed.
func (l *Loop) replaceLatest(q *outQueue, b []byte, key uint32, pass bool) bool {
	behind := false
	for i := len(q.items) - 1; i >= q.head; i-- {
		it := &q.items[i]
		if it.run {
			behind = true
			continue
		}
		if it.key != key {
			if it.key == 0 && len(it.b) > 0 {
				behind = true
			}
			continue
		}
		if i == q.head && q.off > 0 {
			return false // started: it stays whole, the new one queues behind
		}
		if !behind {
			q.bytes += len(b) - len(it.b)
			*it = qitem{b: b, key: key, pass: pass}
			return true
		}
		// Left as a hole (empty, skipped by the flush) rather than
		// removed: no shifting of the queue behind it.
		q.bytes -= len(it.b)
		*it = qitem{}
		q.holes++
		q.n--
		return false
	}
	return false
}

// push appends a frame to the slot's output: its queue if it has one (so
// that order holds), else its pending chain. urgent marks a reply or a
// control frame, flushed ahead of bulk (Send-only) output; a frame in the
// pass buffer is always urgent, since the pass buffer is reused next pass.
func (l *Loop) push(idx uint32, it qitem, urgent bool) {
	s := l.slots.at(idx)
	if s.outq != 0 {
		q := l.queues.at(s.outq)
		if it.key == 0 && !it.pass {
			l.queueShared(q, it.b)
		} else {
			q.items = append(q.items, it)
		}
		q.bytes += len(it.b)
		q.n++
	} else {
		l.pushPending(s, it)
	}
	if urgent {
		s.flags |= fUrgent
	}
	if s.flags&fDirty == 0 {
		s.flags |= fDirty
		l.dirty = append(l.dirty, idx)
	}
}

// queueShared queues shared frame b through the broadcast log: it extends
// the run that ends the queue if b can follow it there, else starts a run.
func (l *Loop) queueShared(q *outQueue, b []byte) {
	if k := len(q.items); k > q.head {
		if t := &q.items[k-1]; t.run && l.extendRun(t.key, t.n, b) {
			t.n++
			return
		}
	}
	q.items = append(q.items, qitem{key: l.startRun(b), n: 1, run: true})
	q.runs++
	l.logRuns++
}

// flushDirty writes the output of this pass: one writev per connection.
// Connections with a reply or control frame go first; connections that got
// only Send/SendLatest frames (a broadcast) follow within the loop's bulk
// budget, and the rest stay dirty for the next pass, which then polls
// without sleeping. Connections waiting for EPOLLOUT only get their
// pass-buffer frames copied.
func (l *Loop) flushDirty() {
	for i := 0; i < len(l.dirty); i++ {
		idx := l.dirty[i]
		s := l.slots.at(idx)
		if s.flags&fDirty == 0 || (s.flags&fUrgent == 0 && s.flags&fArmedOut == 0) {
			continue
		}
		l.flushOne(idx)
	}
	bulk := 0
	// A loop that falls behind a stream of frames that do not form runs
	// would turn its backlog into pending items (24 bytes per connection
	// per message) instead of writes: past bulkBacklog it flushes
	// everything, as throughput then matters more than the latency of
	// replies.
	unbounded := l.unbounded || l.pendLive > bulkBacklog
	for i := 0; i < len(l.dirty); i++ {
		idx := l.dirty[i]
		s := l.slots.at(idx)
		if s.flags&fDirty == 0 {
			continue
		}
		if s.flags&(fUrgent|fArmedOut) == 0 && !unbounded {
			if l.overBudget {
				if s.flags&fDeferred == 0 {
					s.flags |= fDeferred
					l.later = append(l.later, idx)
				}
				continue
			}
			if bulk++; bulk&31 == 0 && l.clock() > l.bulkUntil {
				l.overBudget = true
			}
		}
		l.flushOne(idx)
	}
	for _, idx := range l.later {
		l.slots.at(idx).flags &^= fDeferred
	}
	clear(l.dirty)
	l.dirty, l.later = l.later, l.dirty[:0]
	l.compactPending()
	l.compactLog()
	if cap(l.pbuf) > passBufLimit {
		l.pbuf = nil
	} else {
		l.pbuf = l.pbuf[:0]
	}
}

// flushNow writes the pass's output so far, whatever the bulk budget: the
// pending array reached pendLimit in the middle of a pass (broadcasts found
// in one read). Only Send and SendLatest call it, so no frame being built in
// the pass buffer is in flight: everything the pass buffer holds is written
// or copied into a queue by the flush.
func (l *Loop) flushNow() {
	u := l.unbounded
	l.unbounded = true
	l.forced++
	l.flushDirty()
	l.unbounded = u
}

// bulkBacklog is the pending item count above which the bulk flush budget
// is ignored.
const bulkBacklog = 1 << 17

// flushOne flushes one dirty slot.
func (l *Loop) flushOne(idx uint32) {
	s := l.slots.at(idx)
	s.flags &^= fDirty | fUrgent
	if s.state == stFree || s.state == stDead {
		return
	}
	if s.flags&fArmedOut != 0 {
		l.settle(idx)
		return
	}
	l.flushConn(idx)
}

// flushConn writes as much of the slot's output as the socket takes.
func (l *Loop) flushConn(idx uint32) {
	s := l.slots.at(idx)
	if s.outq == 0 {
		if s.phead == 0 {
			l.drained(idx)
			return
		}
		l.flushPending(idx)
		return
	}
	q := l.queues.at(s.outq)
	wrote := 0
	for {
		iov, want := l.iov[:0], 0
	items:
		for i := q.head; i < len(q.items) && len(iov) < maxIov; i++ {
			it := &q.items[i]
			if it.run {
				for k, e := range l.logRange(it.key, it.n) {
					if len(iov) == maxIov {
						break items
					}
					b := e.bytes()
					if i == q.head && k == 0 {
						b = b[q.off:]
					}
					iov = append(iov, unix.Iovec{Base: unsafe.SliceData(b), Len: uint64(len(b))})
					want += len(b)
				}
				continue
			}
			b := it.b
			if i == q.head {
				b = b[q.off:]
			}
			if len(b) == 0 {
				continue
			}
			iov = append(iov, unix.Iovec{Base: unsafe.SliceData(b), Len: uint64(len(b))})
			want += len(b)
		}
		n, err := writev(int(s.fd), iov)
		clear(iov) // drop references to frames for the garbage collector
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			l.writeFailed(idx)
			return
		}
		if n > 0 || len(iov) == 0 {
			l.cnt.bytesOut += int64(n)
			l.advance(q, n) // also steps over holes when nothing else was left
			wrote += n
		}
		// A full IOV_MAX batch that the socket took whole: the socket may
		// take more, so keep writing rather than wait for EPOLLOUT.
		if len(iov) < maxIov || n < want || q.head == len(q.items) {
			break
		}
	}
	if q.head == len(q.items) {
		l.drained(idx)
		return
	}
	l.waitOut(idx, wrote > 0)
}

// writeFailed ends a connection whose socket refused a write: its output is
// dropped, and a connection already closing ends with the code of its close
// handshake, any other abnormally.
func (l *Loop) writeFailed(idx uint32) {
	l.dropQueue(idx)
	s := l.slots.at(idx)
	if s.state == stClosing {
		l.kill(idx, s.code, nil)
	} else {
		l.kill(idx, framing.StatusAbnormal, ErrAbnormal)
	}
}

// waitOut handles output left over: references to immutable frames are
// kept, only what lies in the pass buffer is copied, and the connection
// waits for EPOLLOUT under WriteTimeout.
func (l *Loop) waitOut(idx uint32, wrote bool) {
	s := l.slots.at(idx)
	q := l.queues.at(s.outq)
	if s.state == stOpen && q.over(0, 0, l.cfg) {
		l.slow(idx)
		s = l.slots.at(idx)
	}
	l.settle(idx)
	if s.flags&fArmedOut == 0 {
		if err := l.poll.mod(int(s.fd), unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLOUT, idx, s.gen); err != nil {
			l.kill(idx, framing.StatusAbnormal, err)
			return
		}
		s.flags |= fArmedOut
	}
	if wrote || s.blocked == 0 {
		s.blocked = l.now
		if s.state == stOpen {
			l.armTimer(idx, l.now+int64(l.cfg.WriteTimeout))
		}
	}
}

// advance drops n written bytes from the front of the queue.
func (l *Loop) advance(q *outQueue, n int) {
	q.bytes -= n
	for n > 0 && q.head < len(q.items) {
		it := &q.items[q.head]
		rem := l.firstLen(it) - q.off
		if n < rem {
			q.off += n
			return
		}
		n -= rem
		q.off = 0
		l.popQueued(q)
	}
	for q.head < len(q.items) && !q.items[q.head].run && len(q.items[q.head].b) == 0 {
		q.holes--
		q.items[q.head] = qitem{}
		q.head++
	}
	if q.head > 64 && q.head*2 > len(q.items) {
		m := copy(q.items, q.items[q.head:])
		clear(q.items[m:])
		q.items = q.items[:m]
		q.head = 0
	}
}

// popQueued drops the first frame of the queue (or the hole at its head).
func (l *Loop) popQueued(q *outQueue) {
	it := &q.items[q.head]
	switch {
	case it.run:
		q.n--
		it.key++
		if it.n--; it.n > 0 {
			return
		}
		q.runs--
		l.logRuns--
	case len(it.b) == 0:
		q.holes--
	default:
		q.n--
	}
	*it = qitem{}
	q.head++
}

// releaseQueue gives the slot's queue back to the arena.
func (l *Loop) releaseQueue(s *slot) {
	l.logRuns -= l.queues.at(s.outq).runs
	l.queues.release(s.outq)
	s.outq = 0
}

// drained runs when the queue is empty: the queue goes back to the arena and
// EPOLLOUT is disarmed.
func (l *Loop) drained(idx uint32) {
	s := l.slots.at(idx)
	if s.outq != 0 {
		l.releaseQueue(s)
	}
	s.blocked = 0
	if s.flags&fArmedOut != 0 {
		s.flags &^= fArmedOut
		if err := l.poll.mod(int(s.fd), unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
			l.kill(idx, framing.StatusAbnormal, err)
			return
		}
	}
	if s.flags&fCloseAfter != 0 {
		// We answered the peer's close: RFC 6455 section 7.1.1 has the
		// server close the TCP connection first.
		l.kill(idx, s.code, nil)
		return
	}
	if s.flags&fDrain != 0 {
		l.shutWrite(idx)
	}
}

// shutWrite ends the server's side of a failed connection once its close
// frame is written. Section 7.1.1 has the server close the TCP connection
// first, and a peer that answered our close frame waits for that; only the
// write side is shut, so the input still drains until the peer's EOF, since
// closing the socket with unread input would reset the connection and could
// destroy the close frame before the peer reads it.
func (l *Loop) shutWrite(idx uint32) {
	s := l.slots.at(idx)
	if s.flags&fClient != 0 {
		// Section 7.1.1: a client waits for the server to close first.
		return
	}
	_ = unix.Shutdown(int(s.fd), unix.SHUT_WR)
}

// settle copies queued frames that still lie in the pass buffer into the
// queue's own storage, since the pass buffer is reused by the next pass.
func (l *Loop) settle(idx uint32) {
	s := l.slots.at(idx)
	if s.outq == 0 {
		return
	}
	q := l.queues.at(s.outq)
	for i := q.head; i < len(q.items); i++ {
		it := &q.items[i]
		if !it.pass {
			continue
		}
		start := len(q.own)
		q.own = append(q.own, it.b...)
		it.b = q.own[start:len(q.own):len(q.own)]
		it.pass, it.own = false, true
	}
	if len(q.own) > 2*l.cfg.MaxQueueBytes+64<<10 {
		q.compact()
	}
}

// compact rewrites the queue's own storage with only the frames still
// queued, so that a connection that never fully drains does not grow it.
// Storage that is still mostly live is left alone: a lone frame larger
// than the bound (see over) would otherwise be copied on every settle.
func (q *outQueue) compact() {
	live := 0
	for i := q.head; i < len(q.items); i++ {
		if q.items[i].own {
			live += len(q.items[i].b)
		}
	}
	if 2*live > len(q.own) {
		return
	}
	nb := make([]byte, 0, live)
	for i := q.head; i < len(q.items); i++ {
		it := &q.items[i]
		if it.own {
			start := len(nb)
			nb = append(nb, it.b...)
			it.b = nb[start:len(nb):len(nb)]
		}
	}
	q.own = nb
}

// dropQueue discards the whole queue.
func (l *Loop) dropQueue(idx uint32) {
	s := l.slots.at(idx)
	l.dropPending(s)
	if s.outq != 0 {
		l.releaseQueue(s)
	}
}

// slow closes a connection that does not keep up: frames not yet started
// are dropped, a close frame 1008 "slow" is queued after the frame in
// flight, and the socket is cut after CloseTimeout if even that cannot go.
func (l *Loop) slow(idx uint32) {
	s := l.slots.at(idx)
	if s.state != stOpen {
		return
	}
	l.stats.slow.Add(1)
	l.dropPending(s)
	if s.outq != 0 {
		q := l.queues.at(s.outq)
		keep := q.head
		if q.off > 0 {
			keep++
		}
		for _, it := range q.items[keep:] {
			if it.run {
				q.runs--
				l.logRuns--
			}
		}
		clear(q.items[keep:])
		q.items = q.items[:keep]
		q.bytes, q.holes, q.n = 0, 0, 0
		if keep > q.head {
			// Only the frame in flight stays, of a run too.
			it := &q.items[q.head]
			if it.run {
				it.n = 1
			}
			q.bytes = l.firstLen(it) - q.off
			q.n = 1
		}
	}
	s.flags |= fSlow
	l.sendClose(idx, framing.StatusPolicyViolation, "slow")
	l.log.Debug().Int("loop", l.id).Uint32("slot", idx).Msg("conn: slow consumer closed")
}
