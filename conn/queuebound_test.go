package conn

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// A peer that keeps sending pings but reads nothing gets a pong queued for
// each one. Those pongs are output like any other: the queue bounds hold for
// them, and the connection is closed 1008 "slow" rather than left to grow its
// queue until WriteTimeout.
func TestPongFloodBoundedByQueueLimits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		payload int // ping payload; 0 gives the precompiled pong
		cfg     Config
	}{
		{"bytes", 125, Config{MaxQueueBytes: 96 << 10, MaxQueueFrames: 1 << 20}},
		{"frames", 0, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 256}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := manualLoop(t, tc.cfg, &nopHandler{})
			fd, peer := socketpair(t)
			h := l.adopt(t, fd, false)
			fillUntilBlocked(t, l, h)
			idx := h.Index()
			var pings []byte
			for range 64 {
				pings = framing.AppendMaskedFrame(pings, framing.OpPing, true, [4]byte{9, 8, 7, 6}, bytes.Repeat([]byte{'p'}, tc.payload))
			}
			for round := 0; l.slots.at(idx).state == stOpen; round++ {
				if round > 100000 {
					t.Fatal("the pong backlog never closed the connection")
				}
				if _, err := unix.Write(peer, pings); err != nil {
					t.Fatal(err)
				}
				l.onReadable(idx)
				l.endPass()
				s := l.slots.at(idx)
				if s.outq == 0 {
					t.Fatal("queue drained while the peer reads nothing")
				}
				q := l.queues.at(s.outq)
				if s.state == stOpen && (q.bytes > tc.cfg.MaxQueueBytes || q.frames() > tc.cfg.MaxQueueFrames) {
					t.Fatalf("round %d: %d bytes, %d frames queued on an open connection; bounds %d, %d",
						round, q.bytes, q.frames(), tc.cfg.MaxQueueBytes, tc.cfg.MaxQueueFrames)
				}
			}
			s := l.slots.at(idx)
			if s.flags&fSlow == 0 || s.code != framing.StatusPolicyViolation || l.stats.slow.Load() != 1 {
				t.Fatalf("closed with flags %#x code %d, %d slow closes; want 1008 slow", s.flags, s.code, l.stats.slow.Load())
			}
			// The peer finally reads: whole frames, then the close 1008 "slow".
			frames := parseServerFrames(t, drainStream(t, l, h, peer))
			last := frames[len(frames)-1]
			if code, reason, _ := framing.ClosePayload(last.Payload); last.MsgOp != framing.OpClose || code != 1008 || string(reason) != "slow" {
				t.Fatalf("stream ends with op %d %q, want close 1008 slow", last.MsgOp, last.Payload)
			}
		})
	}
}

// WriteTimeout counts from the last progress, not from when the queue first
// backed up: a peer that reads slowly but steadily, with a backlog always
// waiting for it, stays open however long that lasts; once it stops reading
// it is closed 1008 "slow" after WriteTimeout, with nothing more queued. The
// loop clock is driven by hand, so no assertion depends on timing.
func TestWriteTimeoutSparesSteadyReader(t *testing.T) {
	const wt = time.Second
	cfg := Config{WriteTimeout: wt, IdleTimeout: time.Hour, MaxQueueBytes: 1 << 20, MaxQueueFrames: 1 << 16}
	l := manualLoop(t, cfg, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	idx := h.Index()
	frame := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{5}, 32<<10), false)
	topUp := func() {
		t.Helper()
		for {
			s := l.slots.at(idx)
			if s.outq != 0 && l.queues.at(s.outq).bytes >= 256<<10 {
				return
			}
			if err := l.Send(h, frame); err != nil {
				t.Fatal(err)
			}
			l.endPass()
		}
	}
	var stream []byte
	for step := 0; step < 12; step++ { // 9 WriteTimeouts in all
		topUp()
		l.now += int64(wt) * 3 / 4
		stream = drainPeer(peer, stream) // the peer reads what it got ...
		l.flushConn(idx)                 // ... and EPOLLOUT reports room
		if s := l.slots.at(idx); s.blocked != l.now {
			t.Fatalf("step %d: no progress recorded", step)
		}
		l.wheel.advance(l.now, l.fire)
		l.endPass()
		if s := l.slots.at(idx); s.state != stOpen {
			t.Fatalf("step %d: a steady reader was closed (flags %#x)", step, s.flags)
		}
	}
	topUp()
	// The peer stops reading; nothing more is queued.
	l.now += int64(wt) / 2
	l.wheel.advance(l.now, l.fire)
	l.endPass()
	if s := l.slots.at(idx); s.state != stOpen {
		t.Fatal("closed before WriteTimeout without progress")
	}
	l.now += int64(wt)/2 + wheelTick
	l.wheel.advance(l.now, l.fire)
	l.endPass()
	s := l.slots.at(idx)
	if s.state != stClosing || s.flags&fSlow == 0 || s.code != framing.StatusPolicyViolation {
		t.Fatalf("after WriteTimeout without progress: state %d flags %#x code %d, want closing 1008 slow", s.state, s.flags, s.code)
	}
	frames := parseServerFrames(t, append(stream, drainStream(t, l, h, peer)...))
	last := frames[len(frames)-1]
	if code, reason, _ := framing.ClosePayload(last.Payload); last.MsgOp != framing.OpClose || code != 1008 || string(reason) != "slow" {
		t.Fatalf("stream ends with op %d, want close 1008 slow", last.MsgOp)
	}
	for _, f := range frames[:len(frames)-1] {
		if len(f.Payload) != 32<<10 {
			t.Fatalf("a data frame of %d bytes", len(f.Payload))
		}
	}
}

// Replacing a queued latest-value frame with a larger one adds bytes like
// queuing does: past MaxQueueBytes the connection is closed 1008 "slow", not
// left over its bound until it next becomes writable.
func TestSendLatestReplacementRespectsByteBound(t *testing.T) {
	const bound = 96 << 10
	l := manualLoop(t, Config{MaxQueueBytes: bound, MaxQueueFrames: 1 << 16}, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	fillUntilBlocked(t, l, h)
	idx := h.Index()
	q := l.queues.at(l.slots.at(idx).outq)
	if err := l.SendLatest(h, framing.Prepare(framing.OpText, []byte("small"), false), 3); err != nil {
		t.Fatal(err)
	}
	big := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{'b'}, bound-q.bytes+100), false)
	err := l.SendLatest(h, big, 3)
	s := l.slots.at(idx)
	if s.state == stOpen {
		t.Fatalf("SendLatest = %v, queue %d bytes over a bound of %d, connection open", err, l.queues.at(s.outq).bytes, bound)
	}
	if !errors.Is(err, ErrQueueFull) || s.flags&fSlow == 0 || s.code != framing.StatusPolicyViolation {
		t.Fatalf("SendLatest = %v, flags %#x code %d; want ErrQueueFull and 1008 slow", err, s.flags, s.code)
	}
	l.endPass()
	frames := parseServerFrames(t, drainStream(t, l, h, peer))
	for _, f := range frames[:len(frames)-1] {
		if f.MsgOp != framing.OpBinary || len(f.Payload) != 32<<10 {
			t.Fatalf("frame op %d len %d, want only the fill before the close", f.MsgOp, len(f.Payload))
		}
	}
	if last := frames[len(frames)-1]; last.MsgOp != framing.OpClose || closeCodeOf(last.Payload) != 1008 {
		t.Fatalf("stream ends with op %d", last.MsgOp)
	}
}

// The queue bounds hold for frames built in the pass buffer (Write, copied
// into the queue when the pass ends) as for shared prepared frames (Send,
// referenced), for bytes and for frames, whether the output is still
// pending in its pass or already waits for EPOLLOUT: the connection is never
// open with more than the bounds queued, overflow closes it 1008 "slow", and
// another connection of the loop gets all of its output meanwhile.
func TestQueueBoundsPassAndPrepared(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write bool
		size  int
		cfg   Config
	}{
		{"write-bytes", true, 3000, Config{MaxQueueBytes: 128 << 10, MaxQueueFrames: 1 << 16}},
		{"write-frames", true, 10, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 300}},
		{"send-bytes", false, 3000, Config{MaxQueueBytes: 128 << 10, MaxQueueFrames: 1 << 16}},
		{"send-frames", false, 10, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 300}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := manualLoop(t, tc.cfg, &nopHandler{})
			fd, peer := socketpair(t)
			h := l.adopt(t, fd, false)
			ofd, opeer := socketpair(t)
			other := l.adopt(t, ofd, false)
			idx := h.Index()
			payload := bytes.Repeat([]byte{'w'}, tc.size)
			prep := framing.Prepare(framing.OpBinary, payload, false)
			var otherGot []byte
			sent := 0
			for i := 0; ; i++ {
				if i > 1<<20 {
					t.Fatal("never overflowed")
				}
				var err error
				if tc.write {
					err = l.Write(h, framing.OpBinary, payload)
				} else {
					err = l.Send(h, prep)
				}
				if l.Write(other, framing.OpText, []byte("o")) == nil {
					sent++
				}
				s := l.slots.at(idx)
				if err != nil {
					if !errors.Is(err, ErrQueueFull) || s.flags&fSlow == 0 {
						t.Fatalf("frame %d: %v, flags %#x; want ErrQueueFull and a slow close", i, err, s.flags)
					}
					break
				}
				if int(s.pb) > tc.cfg.MaxQueueBytes || int(s.pn) > tc.cfg.MaxQueueFrames {
					t.Fatalf("frame %d: %d bytes, %d frames pending", i, s.pb, s.pn)
				}
				if s.outq != 0 {
					q := l.queues.at(s.outq)
					if q.bytes > tc.cfg.MaxQueueBytes || q.frames() > tc.cfg.MaxQueueFrames {
						t.Fatalf("frame %d: %d bytes, %d frames queued", i, q.bytes, q.frames())
					}
				}
				if i%7 == 0 {
					l.endPass()
					otherGot = drainPeer(opeer, otherGot)
				}
			}
			l.endPass()
			otherGot = drainPeer(opeer, otherGot)
			if fr := parseServerFrames(t, otherGot); len(fr) != sent {
				t.Fatalf("the other connection got %d of %d frames", len(fr), sent)
			}
			frames := parseServerFrames(t, drainStream(t, l, h, peer))
			for _, f := range frames[:len(frames)-1] {
				if f.MsgOp != framing.OpBinary || !bytes.Equal(f.Payload, payload) {
					t.Fatalf("a data frame of %d bytes differs", len(f.Payload))
				}
			}
			if last := frames[len(frames)-1]; last.MsgOp != framing.OpClose || closeCodeOf(last.Payload) != 1008 {
				t.Fatalf("stream ends with op %d", last.MsgOp)
			}
		})
	}
}

// A full IOV_MAX batch of pending frames meeting a socket that takes none of
// it (or stops exactly at a frame boundary) moves to the queue and waits for
// EPOLLOUT: the flush does not retry the write while the socket refuses it,
// which would hold the loop, and every other connection on it, until the
// peer reads.
func TestFullIovBatchOnFullSocketWaits(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 1 << 16}, &nopHandler{})
	fd, peer := socketpair(t)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	// Fill the socket with whole frames before the loop owns it: the
	// connection has no queue, yet its socket takes nothing more.
	empty := framing.Prepare(framing.OpBinary, nil, false).Bytes(false)
	pre := 0
	for {
		if _, err := unix.Write(fd, empty); err != nil {
			if err != unix.EAGAIN {
				t.Fatal(err)
			}
			break
		}
		pre++
	}
	h := l.adopt(t, fd, false)
	const frames = 3 * maxIov
	f := framing.Prepare(framing.OpText, []byte("x"), false)
	for i := 0; i < frames; i++ {
		if err := l.Send(h, f); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		l.endPass()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the flush never returned on a full socket")
	}
	s := l.slots.at(h.Index())
	if s.outq == 0 || s.flags&fArmedOut == 0 || s.phead != 0 {
		t.Fatalf("outq %d flags %#x phead %d: want the frames queued and EPOLLOUT armed", s.outq, s.flags, s.phead)
	}
	got := parseServerFrames(t, drainStream(t, l, h, peer))
	if len(got) != pre+frames {
		t.Fatalf("peer got %d frames, want %d", len(got), pre+frames)
	}
	for i, fr := range got[pre:] {
		if string(fr.Payload) != "x" {
			t.Fatalf("frame %d: %q", i, fr.Payload)
		}
	}
}
