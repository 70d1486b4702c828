package conn

import (
	"bytes"
	"encoding/binary"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// outputMemory is what the loop holds for output not written yet, apart from
// the frames themselves (shared, owned by whoever prepared them): the
// pending array, the broadcast log, the queue arena and every queue's items
// and own storage, by capacity.
func outputMemory(l *Loop) int {
	n := cap(l.pend)*int(unsafe.Sizeof(pitem{})) +
		cap(l.blog)*int(unsafe.Sizeof(logFrame{})) +
		len(l.queues.chunks)*arenaChunk*int(unsafe.Sizeof(outQueue{}))
	for i := 1; i < l.queues.len(); i++ {
		q := l.queues.at(uint32(i))
		n += cap(q.items)*int(unsafe.Sizeof(qitem{})) + cap(q.own)
	}
	return n
}

// TestBroadcastBacklogMemoryBounded: connections whose sockets are full fall
// behind a broadcast stream by thousands of frames. What the loop holds for
// them must not grow with the backlog: each holds a run of the broadcast
// log, not an item per frame (with an item per frame: 256 connections x 2,000
// frames x 32 bytes = 16 MB here, and 290 MB at 10,000 connections under
// huntload fanout). Every connection still gets every frame, in order.
func TestBroadcastBacklogMemoryBounded(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueFrames: 4096, MaxQueueBytes: 1 << 20}, &nopHandler{})
	const conns, bcasts = 256, 2000
	hs := make([]Handle, conns)
	peers := make([]int, conns)
	for i := range hs {
		fd, p := socketpair(t)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	maxMem, queued := 0, 0
	for i := range bcasts {
		f := framing.Prepare(framing.OpBinary, binary.BigEndian.AppendUint32(make([]byte, 0, 128), uint32(i))[:128], false)
		for _, h := range hs {
			if err := l.Send(h, f); err != nil {
				t.Fatalf("broadcast %d: %v", i, err)
			}
		}
		if i%16 == 15 {
			l.endPass()
			maxMem = max(maxMem, outputMemory(l))
		}
	}
	l.endPass()
	maxMem = max(maxMem, outputMemory(l))
	for _, h := range hs {
		if s := l.slots.at(h.Index()); s.outq != 0 {
			queued += l.queues.at(s.outq).frames()
		}
	}
	if queued < conns*bcasts/2 {
		t.Fatalf("only %d frames queued: the sockets took most, the backlog is not tested", queued)
	}
	// An O(1) share per connection (its queue and a few items) and the
	// log's entries: far below an item per queued frame.
	budget := conns*512 + 4*bcasts*int(unsafe.Sizeof(logFrame{})) + 64<<10
	t.Logf("held %d, budget %d, queued %d", maxMem, budget, queued)
	if maxMem > budget {
		t.Fatalf("the loop held %d bytes for a backlog of %d frames over %d connections, want at most %d",
			maxMem, queued, conns, budget)
	}
	got := make([][]byte, conns)
	for c, h := range hs {
		got[c] = drainStream(t, l, h, peers[c])
	}
	checkSequences(t, got, bcasts)
	l.endPass()
	if l.logRuns != 0 || len(l.blog) != 0 || l.queues.inUse() != 0 {
		t.Fatalf("drained: %d queued runs, %d log entries, %d queues", l.logRuns, len(l.blog), l.queues.inUse())
	}
}

// TestBroadcastLogBoundedBySlowReader: a connection that stopped reading
// holds a queued run at the start of the log while another connection gets
// a long stream of frames. The log keeps at most logMax entries (plus what
// accrues between compactions): the slow connection's run moves into its
// own queue, bounded by its queue limits, and it still gets its frames once
// it reads.
func TestBroadcastLogBoundedBySlowReader(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueFrames: 64}, &nopHandler{})
	fdA, peerA := socketpair(t)
	fdB, peerB := socketpair(t)
	a, b := l.adopt(t, fdA, false), l.adopt(t, fdB, false)
	fillUntilBlocked(t, l, a)
	last := framing.Prepare(framing.OpText, []byte("for A"), false)
	if err := l.Send(a, last); err != nil {
		t.Fatal(err)
	}
	l.endPass()
	if q := l.queues.at(l.slots.at(a.Index()).outq); q.runs == 0 {
		t.Fatal("A's output is not a queued run: the log is not pinned")
	}
	maxLog := 0
	for i := range 20000 {
		f := framing.Prepare(framing.OpBinary, binary.BigEndian.AppendUint32(nil, uint32(i)), false)
		if err := l.Send(b, f); err != nil {
			t.Fatal(err)
		}
		if i%8 == 7 {
			l.endPass()
			drainPeer(peerB, nil)
			maxLog = max(maxLog, len(l.blog))
		}
	}
	if bound := l.logMax() + logCompactMin + 8; maxLog > bound || l.spilled == 0 {
		t.Fatalf("log reached %d entries (bound %d), %d queues spilled", maxLog, bound, l.spilled)
	}
	frames := parseServerFrames(t, drainStream(t, l, a, peerA))
	if n := len(frames); n == 0 || !bytes.Equal(frames[n-1].Payload, []byte("for A")) {
		t.Fatalf("A got %d frames, the last not its own", n)
	}
}
