package conn

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// drainPeer reads everything the peer end has.
func drainPeer(fd int, into []byte) []byte {
	var buf [64 << 10]byte
	for {
		n, err := unix.Read(fd, buf[:])
		if n <= 0 || err != nil {
			return into
		}
		into = append(into, buf[:n]...)
	}
}

// parseServerFrames splits a stream of unmasked frames; it fails on a cut.
func parseServerFrames(t *testing.T, b []byte) []framing.Frame {
	t.Helper()
	out, rest := parseServerFramesCut(t, b)
	if len(rest) > 0 {
		t.Fatalf("stream ends inside a frame (%d bytes left)", len(rest))
	}
	return out
}

// parseServerFramesCut splits a stream of unmasked frames and returns the
// bytes of a frame cut at the end.
func parseServerFramesCut(t *testing.T, b []byte) ([]framing.Frame, []byte) {
	t.Helper()
	d := framing.NewDecoder(framing.DecoderConfig{Role: framing.RoleClient, MaxMessage: 1 << 30})
	var out []framing.Frame
	for len(b) > 0 {
		n, f, err := d.Next(b)
		if err != nil {
			t.Fatalf("bad stream: %v", err)
		}
		if n == 0 {
			return out, b
		}
		out = append(out, f)
		b = b[n:]
	}
	return out, nil
}

func TestSendLatestReplacesQueuedFrame(t *testing.T) {
	cfg := Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 10000}
	l := manualLoop(t, cfg, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	fillUntilBlocked(t, l, h)
	v := func(s string) *framing.Prepared { return framing.Prepare(framing.OpText, []byte(s), false) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.SendLatest(h, v("board v1"), 5))
	must(l.SendLatest(h, v("other v1"), 6))
	must(l.SendLatest(h, v("board v2"), 5))
	must(l.Send(h, v("reliable")))
	must(l.SendLatest(h, v("board v3"), 5))
	must(l.Write(h, framing.OpText, []byte("written")))
	l.flushDirty()
	q := l.queues.at(l.slots.at(h.Index()).outq)
	var got []string
	for _, it := range queuedItems(l, q) {
		if len(it.b) > 0 && len(it.b) < 100 { // holes (dropped entries) are empty
			got = append(got, string(it.b[2:]))
		}
	}
	// board v2 was replaced in place (nothing reliable behind it); board v3
	// came after a reliable frame, so v2 was dropped and v3 queued last.
	want := []string{"other v1", "reliable", "board v3", "written"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("queued %q, want %q", got, want)
	}
	// Drain, as EPOLLOUT would, and check the stream is whole and in order.
	texts := drainTexts(t, l, h, peer)
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Fatalf("received %q, want %q", texts, want)
	}
	if l.slots.at(h.Index()).flags&fArmedOut != 0 {
		t.Fatal("EPOLLOUT still armed on an empty queue")
	}
}

func TestSendLatestDoesNotReplaceStartedFrame(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 8 << 20}, &nopHandler{})
	fd, _ := socketpair(t)
	h := l.adopt(t, fd, false)
	big := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{2}, 4<<20), false)
	if err := l.SendLatest(h, big, 9); err != nil {
		t.Fatal(err)
	}
	l.flushDirty() // a partial write: the frame has started
	s := l.slots.at(h.Index())
	if s.outq == 0 {
		t.Fatal("socket took 4 MiB at once")
	}
	if err := l.SendLatest(h, framing.Prepare(framing.OpBinary, []byte("newer"), false), 9); err != nil {
		t.Fatal(err)
	}
	qq := l.queues.at(s.outq)
	if qq.frames() != 2 || qq.off == 0 {
		t.Fatalf("frames %d off %d: a started frame must stay and the new one queue behind it", qq.frames(), qq.off)
	}
}

func TestSlowConsumerClosed(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.MaxQueueBytes = 64 << 10
	cfg.CloseTimeout = 300 * time.Millisecond
	n := startNode(t, cfg, th)
	slowC := dialRaw(t, n)
	slowC.upgrade(t)
	hs := th.waitOpen(t)
	fast := dialGorilla(t, n, "/echo", nil)
	hf := th.waitOpen(t)
	_ = hf
	frame := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{3}, 16<<10), false)
	maxQueued := 0
	var sendErr error
	deadline := time.Now().Add(20 * time.Second)
	for n.Stats().SlowCloses == 0 {
		if time.Now().After(deadline) {
			t.Fatal("slow consumer never closed")
		}
		onLoop(n, hs.Loop(), func(l *Loop) {
			for i := 0; i < 16; i++ {
				if err := l.Send(hs, frame); err != nil {
					sendErr = err
					return
				}
				if s := l.live(hs); s != nil && s.outq != 0 {
					maxQueued = max(maxQueued, l.queues.at(s.outq).bytes)
				}
			}
		})
		// The fast client is served meanwhile.
		fast.WriteMessage(websocket.TextMessage, []byte("ping-through"))
		fast.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, p, err := fast.ReadMessage(); err != nil || string(p) != "ping-through" {
			t.Fatalf("fast client: %q %v", p, err)
		}
	}
	if !errors.Is(sendErr, ErrQueueFull) {
		t.Fatalf("Send on overflow: %v, want ErrQueueFull", sendErr)
	}
	if maxQueued > cfg.MaxQueueBytes {
		t.Fatalf("queue reached %d bytes, bound %d", maxQueued, cfg.MaxQueueBytes)
	}
	ev := th.waitClose(t)
	if ev.h != hs || ev.code != framing.StatusPolicyViolation || !errors.Is(ev.err, ErrSlow) {
		t.Fatalf("OnClose %+v", ev)
	}
	// The slow client's stream holds only whole frames, then (if it got
	// that far) a close 1008 "slow", then EOF.
	slowC.SetReadDeadline(time.Now().Add(10 * time.Second))
	var all bytes.Buffer
	if _, err := all.ReadFrom(slowC.r); err != nil {
		t.Fatalf("reading the slow client's stream: %v", err)
	}
	// The socket may be cut inside a frame once CloseTimeout passes, but
	// never anywhere before a close frame.
	frames, cut := parseServerFramesCut(t, all.Bytes())
	if last := frames[len(frames)-1]; last.MsgOp == framing.OpClose {
		if len(cut) > 0 {
			t.Fatal("bytes after the close frame")
		}
		if code, reason, _ := framing.ClosePayload(last.Payload); code != 1008 || string(reason) != "slow" {
			t.Fatalf("close %d %q", code, reason)
		}
		t.Logf("slow client got %d frames and close 1008 slow", len(frames))
	} else {
		t.Logf("slow client got %d frames and %d bytes of a cut frame, then EOF (close frame still queued at the cut)", len(frames), len(cut))
	}
	fast.WriteMessage(websocket.TextMessage, []byte("after"))
	fast.SetReadDeadline(time.Now().Add(5 * time.Second)) // the last one may have passed while the slow stream was read
	if _, p, err := fast.ReadMessage(); err != nil || string(p) != "after" {
		t.Fatalf("fast client after: %q %v", p, err)
	}
}

func TestWriteTimeoutClosesStuckConsumer(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.WriteTimeout = 300 * time.Millisecond
	cfg.CloseTimeout = 200 * time.Millisecond
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	c.upgrade(t)
	h := th.waitOpen(t)
	frame := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{4}, 32<<10), false)
	// Fill until blocked, staying under the queue bound.
	waitFor(t, "connection blocked", 10*time.Second, func() bool {
		blocked := false
		onLoop(n, h.Loop(), func(l *Loop) {
			if s := l.live(h); s != nil && s.flags&fArmedOut != 0 {
				blocked = true
				return
			}
			l.Send(h, frame)
		})
		return blocked
	})
	ev := th.waitClose(t)
	if ev.h != h || ev.code != framing.StatusPolicyViolation || !errors.Is(ev.err, ErrSlow) {
		t.Fatalf("OnClose %+v", ev)
	}
	if n.Stats().SlowCloses != 1 {
		t.Fatalf("SlowCloses %d", n.Stats().SlowCloses)
	}
}

// Write carries data messages only: a control opcode would bypass the close
// handshake or the 125-byte control limit, so it is refused and nothing is
// queued.
func TestWriteRejectsControlOpcodes(t *testing.T) {
	l := manualLoop(t, Config{}, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	for _, op := range []framing.OpCode{framing.OpClose, framing.OpPing, framing.OpPong, framing.OpContinuation} {
		if err := l.Write(h, op, []byte("x")); !errors.Is(err, ErrOpCode) {
			t.Fatalf("Write(op %d) = %v, want ErrOpCode", op, err)
		}
	}
	if err := l.Write(h, framing.OpText, []byte("ok")); err != nil {
		t.Fatal(err)
	}
	l.flushDirty()
	frames := parseServerFrames(t, drainPeer(peer, nil))
	if len(frames) != 1 || frames[0].MsgOp != framing.OpText || string(frames[0].Payload) != "ok" {
		t.Fatalf("peer got %+v, want the one text frame", frames)
	}
	if s := l.slots.at(h.Index()); s.state != stOpen {
		t.Fatalf("slot state %d after refused writes, want open", s.state)
	}
}
