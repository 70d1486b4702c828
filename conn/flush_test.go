package conn

import (
	"bytes"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// A reply (Write) goes out in the pass that produced it even while a
// broadcast to 5,000 connections is cut by the flush budget, and the bulk
// output left for later passes keeps every connection's frame order.
func TestReplyFlushedAheadOfBulk(t *testing.T) {
	const conns = 5000
	l := manualLoop(t, Config{FlushBudget: time.Nanosecond}, &nopHandler{})
	hs := make([]Handle, conns)
	peers := make([]int, conns)
	for i := range hs {
		fd, p := socketpair(t)
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	f1 := framing.Prepare(framing.OpText, []byte("one"), false)
	f2 := framing.Prepare(framing.OpText, []byte("two"), false)
	for _, h := range hs {
		if err := l.Send(h, f1); err != nil {
			t.Fatal(err)
		}
	}
	replyTo := hs[conns-1] // last in the walk: a plain flush would reach it last
	if err := l.Write(replyTo, framing.OpText, []byte("reply")); err != nil {
		t.Fatal(err)
	}
	l.endPass()
	if len(l.dirty) == 0 {
		t.Fatal("the bulk flush was not cut by a 1ns budget")
	}
	got := parseServerFrames(t, drainPeer(peers[conns-1], nil))
	if len(got) != 2 || string(got[0].Payload) != "one" || string(got[1].Payload) != "reply" {
		t.Fatalf("replied connection got %d frames in the first pass, want one, reply", len(got))
	}
	// Frames sent while earlier bulk output is still pending go after it.
	for _, h := range hs {
		if err := l.Send(h, f2); err != nil {
			t.Fatal(err)
		}
	}
	for pass := 0; len(l.dirty) > 0; pass++ {
		if pass > conns {
			t.Fatal("bulk output never finished")
		}
		l.endPass()
	}
	for i, p := range peers {
		fr := parseServerFrames(t, drainPeer(p, nil))
		want := []string{"one", "two"}
		if i == conns-1 {
			want = []string{"two"}
		}
		if len(fr) != len(want) {
			t.Fatalf("conn %d: %d frames, want %d", i, len(fr), len(want))
		}
		for k := range want {
			if string(fr[k].Payload) != want[k] {
				t.Fatalf("conn %d: frame %d is %q, want %q", i, k, fr[k].Payload, want[k])
			}
		}
	}
	if l.pendLive != 0 || len(l.pend) != 0 || l.queues.inUse() != 0 {
		t.Fatalf("after the flush: %d pending, %d in the array, %d queues", l.pendLive, len(l.pend), l.queues.inUse())
	}
}

// A broadcast over more connections than the loop keeps spare queues for
// allocates nothing pass after pass: frames wait in the pending array, not
// in per-connection queues.
func TestBroadcastPassesAllocateNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	l := manualLoop(t, Config{FlushBudget: -1}, &nopHandler{})
	hs := make([]Handle, 1024)
	peers := make([]int, len(hs))
	for i := range hs {
		fd, p := socketpair(t)
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	f := framing.Prepare(framing.OpText, bytes.Repeat([]byte("b"), 64), false)
	bcast := func(l *Loop) {
		for _, h := range hs {
			l.Send(h, f)
			l.SendLatest(h, f, 2)
		}
	}
	buf := make([]byte, 64<<10)
	pass := func() {
		l.n.PostAll(bcast)
		l.poll.drainWake()
		l.runInbox()
		l.endPass()
		drainAll(peers, buf)
	}
	for range 20 {
		pass()
	}
	if a := testing.AllocsPerRun(50, pass); a != 0 {
		t.Errorf("broadcast pass: %v allocs", a)
	}
	if l.queues.inUse() != 0 {
		t.Errorf("%d queues in use after drained passes", l.queues.inUse())
	}
}

// Pending output of a connection that closes mid-pass is dropped with it.
func TestPendingDroppedOnClose(t *testing.T) {
	l := manualLoop(t, Config{}, &nopHandler{})
	fd, _ := socketpair(t)
	h := l.adopt(t, fd, false)
	f := framing.Prepare(framing.OpText, []byte("x"), false)
	for range 3 {
		if err := l.Send(h, f); err != nil {
			t.Fatal(err)
		}
	}
	if s := l.slots.at(h.Index()); l.pendLive != 1 || s.pn != 3 || len(l.blog) != 3 {
		t.Fatalf("%d items pending (want 1 run), %d frames (want 3), %d log entries (want 3)", l.pendLive, s.pn, len(l.blog))
	}
	l.closeSlot(h.Index(), framing.StatusGoingAway, nil)
	if l.pendLive != 0 {
		t.Fatalf("%d pending after close", l.pendLive)
	}
	l.endPass()
	if len(l.pend) != 0 || len(l.dirty) != 0 || len(l.blog) != 0 {
		t.Fatalf("pending array %d, dirty %d, log %d after the pass", len(l.pend), len(l.dirty), len(l.blog))
	}
}

// Every loop pass is counted with its duration: a pass held by a posted
// function lasts at least as long as it was held. The longest pass is
// reported once and then starts over.
func TestLoopPassStats(t *testing.T) {
	const hold = 50 * time.Millisecond
	n := startNode(t, testConfig(), newTestHandler())
	done := make(chan struct{})
	n.Post(0, func(*Loop) { time.Sleep(hold); close(done) }) // the work being measured, not synchronisation
	<-done
	waitFor(t, "the held pass accounted", 5*time.Second, func() bool { return n.loops[0].stats.busy.Load() >= int64(hold) })
	st := n.Stats()
	if l := st.Loops[0]; l.MaxPass < hold || l.Busy < hold || l.Passes == 0 {
		t.Fatalf("loop 0 after a %v pass: %+v", hold, l)
	}
	if len(st.Loops) != len(n.loops) {
		t.Fatalf("%d loop stats for %d loops", len(st.Loops), len(n.loops))
	}
	// Reading the stats resets nothing: a second reader sees the same max.
	if again := n.Stats().Loops[0].MaxPass; again < hold {
		t.Fatalf("second read of MaxPass %v, want >= %v", again, hold)
	}
	var ls loopStats
	ls.passDone(5, 100)
	ls.passDone(3, 200)
	if m := ls.maxPass(300); m != 5 || ls.busy.Load() != 8 || ls.passes.Load() != 2 {
		t.Fatalf("max %d busy %d passes %d", m, ls.busy.Load(), ls.passes.Load())
	}
	// A new window keeps the previous window's max visible for one window,
	// then an idle loop reports 0.
	ls.passDone(1, 100+passWindow)
	if m := ls.maxPass(100 + passWindow); m != 5 {
		t.Fatalf("max after one window %d, want 5 (previous window)", m)
	}
	ls.passDone(2, 100+2*passWindow)
	if m := ls.maxPass(100 + 2*passWindow); m != 2 {
		t.Fatalf("max after two windows %d, want 2", m)
	}
	if m := ls.maxPass(100 + 4*passWindow); m != 0 {
		t.Fatalf("max of a loop idle for two windows %d, want 0", m)
	}
}

// handshakeSlot registers fd as a server connection collecting its request.
func (l *Loop) handshakeSlot(tb testing.TB, fd int) uint32 {
	tb.Helper()
	idx := l.slots.alloc()
	s := l.slots.at(idx)
	s.fd, s.state, s.stamp, s.lastRead = int32(fd), stHandshake, l.now, l.now
	if err := l.poll.add(fd, unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
		tb.Fatal(err)
	}
	l.n.open.Add(1)
	return idx
}

const testHead = "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

// A request head that arrives whole is parsed from the loop's read buffer:
// the connection never owns a handshake buffer. One that arrives in pieces
// is kept in a buffer sized to what arrived, not to MaxHandshake.
func TestHandshakeReadsIntoLoopBuffer(t *testing.T) {
	l := manualLoop(t, Config{}, &nopHandler{})
	fd, peer := socketpair(t)
	idx := l.handshakeSlot(t, fd)
	unix.Write(peer, []byte(testHead))
	l.readHandshake(idx)
	if s := l.slots.at(idx); s.state != stOpen || s.hs != 0 || l.hss.len() != 0 {
		t.Fatalf("state %d, hs %d, %d handshake buffers ever made", s.state, s.hs, l.hss.len())
	}

	fd2, peer2 := socketpair(t)
	idx2 := l.handshakeSlot(t, fd2)
	unix.Write(peer2, []byte(testHead[:40]))
	l.readHandshake(idx2)
	s := l.slots.at(idx2)
	if s.state != stHandshake || s.hs == 0 {
		t.Fatalf("partial head: state %d hs %d", s.state, s.hs)
	}
	if c := cap(l.hss.at(s.hs).buf); c < 40 || c >= l.cfg.MaxHandshake/4 {
		t.Fatalf("40 bytes kept in a buffer of %d", c)
	}
	unix.Write(peer2, []byte(testHead[40:]))
	l.readHandshake(idx2)
	if s := l.slots.at(idx2); s.state != stOpen || s.hs != 0 {
		t.Fatalf("completed head: state %d hs %d", s.state, s.hs)
	}
	l.endPass()
	for _, p := range []int{peer, peer2} {
		if b := drainPeer(p, nil); !bytes.HasPrefix(b, []byte("HTTP/1.1 101 ")) {
			t.Fatalf("response %q", b)
		}
	}
}

// PostAllFrom runs the function on the calling loop before returning and
// on every other loop through its inbox.
func TestPostAllFrom(t *testing.T) {
	cfg := testConfig()
	cfg.Loops = 3
	n := startNode(t, cfg, newTestHandler())
	ran := make(chan int, 8)
	inline := make(chan bool, 1)
	n.Post(1, func(l *Loop) {
		self := false
		n.PostAllFrom(l, func(x *Loop) {
			if x == l {
				self = true
			}
			ran <- x.ID()
		})
		inline <- self
	})
	if !<-inline {
		t.Fatal("the calling loop's part did not run before PostAllFrom returned")
	}
	seen := map[int]int{}
	for range 3 {
		seen[<-ran]++
	}
	if seen[0] != 1 || seen[1] != 1 || seen[2] != 1 {
		t.Fatalf("ran on loops %v", seen)
	}
}

// With BusyPoll a loop keeps polling after a pass that had work, then
// sleeps again; without it one post costs one pass. The windows below are
// the behaviour measured, not synchronisation.
func TestBusyPollSpinsThenSleeps(t *testing.T) {
	const spin = 100 * time.Millisecond
	passesAfterPost := func(cfg Config) (during, after int64) {
		n := startNode(t, cfg, newTestHandler())
		done := make(chan struct{})
		n.Post(0, func(*Loop) { close(done) })
		<-done
		start := n.loops[0].stats.passes.Load()
		time.Sleep(spin)
		mid := n.loops[0].stats.passes.Load()
		time.Sleep(spin)
		return mid - start, n.loops[0].stats.passes.Load() - mid
	}
	cfg := testConfig()
	cfg.BusyPoll = spin / 2
	during, after := passesAfterPost(cfg)
	if during < 20 {
		t.Errorf("BusyPoll %v: %d passes while spinning, want many", cfg.BusyPoll, during)
	}
	if after > during/4+25 {
		t.Errorf("BusyPoll %v: %d passes after the spin window (%d during): the loop did not go back to sleep", cfg.BusyPoll, after, during)
	}
	idleDuring, _ := passesAfterPost(testConfig())
	if idleDuring >= during {
		t.Errorf("without BusyPoll %d passes, with it %d: expected spinning to add passes", idleDuring, during)
	}
}
