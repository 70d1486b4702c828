package conn

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// TestInboxBacklogBoundsPending: a loop that finds many broadcasts that do
// not form runs (latest-value frames here) in its inbox runs them over
// several passes, each flushed before the next, so the pending array stays
// near pendLimit instead of holding every queued broadcast once per
// connection; every connection still gets every frame, in order.
func TestInboxBacklogBoundsPending(t *testing.T) {
	l := manualLoop(t, Config{FlushBudget: -1}, &nopHandler{})
	const conns, bcasts = 512, 300 // 153,600 deliveries: more than two passes' worth
	hs := make([]Handle, conns)
	peers := make([]int, conns)
	for i := range hs {
		fd, p := socketpair(t)
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	for i := range bcasts {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		f := framing.Prepare(framing.OpBinary, b[:], false)
		l.n.Post(0, func(l *Loop) {
			for _, h := range hs {
				if err := l.SendLatest(h, f, uint32(i+1)); err != nil {
					t.Errorf("send: %v", err)
				}
			}
		})
	}
	got := make([][]byte, conns)
	passes := 0
	l.poll.drainWake()
	for first := true; first || l.inqAt < len(l.inq); first = false {
		passes++
		l.runInbox()
		if l.pendLive > pendLimit+conns {
			t.Fatalf("pass %d: %d frames pending, want at most %d", passes, l.pendLive, pendLimit+conns)
		}
		l.endPass()
		for i, p := range peers {
			got[i] = drainPeer(p, got[i])
		}
	}
	if passes < 3 {
		t.Fatalf("%d passes, want the backlog spread over at least 3", passes)
	}
	checkSequences(t, got, bcasts)
}

// checkSequences checks that every stream holds n frames whose payloads
// are the big-endian numbers 0 to n-1 in order.
func checkSequences(t *testing.T, streams [][]byte, n int) {
	t.Helper()
	for i, st := range streams {
		frames := parseServerFrames(t, st)
		if len(frames) != n {
			t.Fatalf("conn %d got %d frames, want %d", i, len(frames), n)
		}
		for k, f := range frames {
			if binary.BigEndian.Uint32(f.Payload) != uint32(k) {
				t.Fatalf("conn %d frame %d is broadcast %d", i, k, binary.BigEndian.Uint32(f.Payload))
			}
		}
	}
}

// walkHandler sends every message it gets to every connection in to, as a
// broadcast endpoint does, and records the most frames ever pending.
type walkHandler struct {
	nopHandler
	to      []Handle
	maxPend int
	key     uint32
}

func (w *walkHandler) OnMessage(l *Loop, _ Handle, _ framing.OpCode, p []byte) {
	f := framing.Prepare(framing.OpBinary, p, false)
	w.key++
	for _, h := range w.to {
		if err := l.SendLatest(h, f, w.key); err != nil {
			panic(err)
		}
		w.maxPend = max(w.maxPend, l.pendLive)
	}
}

// TestPipelinedBroadcastsBoundPending: latest-value broadcasts that arrive
// in one read (a sender pipelining them to a loop that fell behind) flush the
// pending array whenever it reaches pendLimit instead of growing it by an
// item per connection per broadcast; every connection gets every frame, in
// order.
func TestPipelinedBroadcastsBoundPending(t *testing.T) {
	w := &walkHandler{}
	l := manualLoop(t, Config{ReadBuffer: 1 << 20, FlushBudget: -1}, w)
	const conns, bcasts = 512, 300
	peers := make([]int, conns)
	for i := range peers {
		fd, p := socketpair(t)
		w.to, peers[i] = append(w.to, l.adopt(t, fd, false)), p
	}
	fd, sender := socketpair(t)
	src := l.adopt(t, fd, false)
	var in []byte
	for i := range bcasts {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		in = framing.AppendMaskedFrame(in, framing.OpBinary, true, [4]byte{9, 8, 7, 6}, b[:])
	}
	if n, err := unix.Write(sender, in); n != len(in) || err != nil {
		t.Fatalf("write %d of %d: %v", n, len(in), err)
	}
	got := make([][]byte, conns)
	l.onReadable(src.Index())
	for i, p := range peers {
		got[i] = drainPeer(p, got[i]) // what the flushes inside the read wrote
	}
	l.endPass()
	if w.maxPend > pendLimit+1 {
		t.Fatalf("%d frames pending at most, want at most %d", w.maxPend, pendLimit+1)
	}
	for i, p := range peers {
		got[i] = drainPeer(p, got[i])
	}
	checkSequences(t, got, bcasts)
}

// TestBroadcastRunsOneItemPerConn: a pass that runs many broadcasts holds one
// pending item per connection (a run of the loop's broadcast log), not one
// per frame; a reply written in the middle, a latest-value frame and a
// socket that takes only part of the output (the rest moves to a queue) keep
// every connection's order.
func TestBroadcastRunsOneItemPerConn(t *testing.T) {
	l := manualLoop(t, Config{FlushBudget: -1, MaxQueueFrames: 1 << 12, MaxQueueBytes: 1 << 20}, &nopHandler{})
	const conns, bcasts = 64, 400
	hs := make([]Handle, conns)
	peers := make([]int, conns)
	for i := range hs {
		fd, p := socketpair(t)
		hs[i], peers[i] = l.adopt(t, fd, false), p
	}
	// Connection 0 takes little: most of its output has to wait in a queue.
	if err := unix.SetsockoptInt(int(l.slots.at(hs[0].Index()).fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	frame := func(i int) *framing.Prepared { // 256 bytes: 100 KiB for each connection
		return framing.Prepare(framing.OpBinary, binary.BigEndian.AppendUint32(make([]byte, 0, 256), uint32(i))[:256], false)
	}
	want := make([][]uint32, conns)
	for i := range bcasts {
		f := frame(i)
		for c, h := range hs {
			if err := l.Send(h, f); err != nil {
				t.Fatal(err)
			}
			want[c] = append(want[c], uint32(i))
		}
		if i == bcasts/2 {
			// A reply to one connection and a latest-value frame to
			// another interrupt their runs.
			if err := l.Write(hs[1], framing.OpBinary, binary.BigEndian.AppendUint32(nil, 1<<30)); err != nil {
				t.Fatal(err)
			}
			want[1] = append(want[1], 1<<30)
			if err := l.SendLatest(hs[2], frame(1<<29), 7); err != nil {
				t.Fatal(err)
			}
			want[2] = append(want[2], 1<<29)
		}
	}
	if l.pendLive > conns+4 {
		t.Fatalf("%d items pending for %d connections", l.pendLive, conns)
	}
	if len(l.blog) != bcasts {
		t.Fatalf("broadcast log holds %d entries, want %d", len(l.blog), bcasts)
	}
	l.endPass()
	if l.slots.at(hs[0].Index()).outq == 0 {
		t.Fatal("connection 0 took everything: the queue path is not tested")
	}
	// The queue holds connection 0's rest as a run of the log.
	q := l.queues.at(l.slots.at(hs[0].Index()).outq)
	if len(l.pend) != 0 || q.runs != 1 || len(q.items)-q.head != 1 || q.frames() < bcasts/2 {
		t.Fatalf("after the pass: %d pending, %d queue items (%d runs) for %d frames",
			len(l.pend), len(q.items)-q.head, q.runs, q.frames())
	}
	for c, p := range peers {
		var stream []byte
		if c == 0 {
			stream = drainStream(t, l, hs[c], p)
		} else {
			stream = drainPeer(p, nil)
		}
		frames := parseServerFrames(t, stream)
		if len(frames) != len(want[c]) {
			t.Fatalf("conn %d got %d frames, want %d", c, len(frames), len(want[c]))
		}
		for k, f := range frames {
			if got := binary.BigEndian.Uint32(f.Payload[:4]); got != want[c][k] {
				t.Fatalf("conn %d frame %d is %d, want %d", c, k, got, want[c][k])
			}
		}
	}
	l.endPass()
	if l.logRuns != 0 || len(l.blog) != 0 {
		t.Fatalf("drained: %d queued runs, %d log entries", l.logRuns, len(l.blog))
	}
}
