package conn

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// fillUntilBlocked sends large frames until output has to wait for EPOLLOUT.
func fillUntilBlocked(t *testing.T, l *Loop, h Handle) {
	t.Helper()
	fill := framing.Prepare(framing.OpBinary, bytes.Repeat([]byte{1}, 32<<10), false)
	for i := 0; l.slots.at(h.Index()).flags&fArmedOut == 0; i++ {
		if i > 1000 {
			t.Fatal("socket never filled")
		}
		if err := l.Send(h, fill); err != nil {
			t.Fatal(err)
		}
		l.flushDirty()
	}
}

// drainTexts flushes h's queue into peer until it is empty and returns the
// text messages the peer received, in order.
func drainTexts(t *testing.T, l *Loop, h Handle, peer int) []string {
	t.Helper()
	var stream []byte
	for deadline := time.Now().Add(5 * time.Second); l.slots.at(h.Index()).outq != 0; {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		stream = drainPeer(peer, stream)
		l.flushConn(h.Index())
	}
	stream = drainPeer(peer, stream)
	var texts []string
	for _, f := range parseServerFrames(t, stream) {
		if f.MsgOp == framing.OpText {
			texts = append(texts, string(f.Payload))
		}
	}
	return texts
}

// A latest-value frame carries the seq of the last reliable update it
// reflects, so it must never reach the peer before a reliable frame that was
// queued ahead of it: replacing in place would move it forward.
func TestSendLatestDoesNotOvertakeReliable(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 10000}, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	fillUntilBlocked(t, l, h)
	v := func(s string) *framing.Prepared { return framing.Prepare(framing.OpText, []byte(s), false) }
	for _, err := range []error{
		l.SendLatest(h, v("board seq 5"), 7),
		l.Send(h, v("claimed seq 6")),
		l.SendLatest(h, v("board seq 6"), 7),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	l.flushDirty()
	got := drainTexts(t, l, h, peer)
	want := []string{"claimed seq 6", "board seq 6"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received %q, want %q", got, want)
	}
}

// A queue whose only entries were dropped latest-value frames must not keep
// EPOLLOUT armed (a level-triggered busy loop).
func TestSendLatestDroppedEntriesDrain(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 8 << 20, MaxQueueFrames: 10000}, &nopHandler{})
	fd, peer := socketpair(t)
	h := l.adopt(t, fd, false)
	fillUntilBlocked(t, l, h)
	v := func(s string) *framing.Prepared { return framing.Prepare(framing.OpText, []byte(s), false) }
	for i := 0; i < 50; i++ {
		if err := l.SendLatest(h, v(fmt.Sprint("board ", i)), 7); err != nil {
			t.Fatal(err)
		}
		if err := l.Send(h, v(fmt.Sprint("reliable ", i))); err != nil {
			t.Fatal(err)
		}
	}
	l.flushDirty()
	q := l.queues.at(l.slots.at(h.Index()).outq)
	boards := 0
	for _, it := range q.items[q.head:] {
		if it.key == 7 {
			boards++
		}
	}
	if boards != 1 {
		t.Fatalf("%d latest-value frames queued for one key", boards)
	}
	got := drainTexts(t, l, h, peer)
	if len(got) != 51 || got[49] != "board 49" || got[50] != "reliable 49" {
		t.Fatalf("received %d texts, last %q", len(got), got[max(0, len(got)-2):])
	}
	if s := l.slots.at(h.Index()); s.flags&fArmedOut != 0 || s.outq != 0 {
		t.Fatal("queue or EPOLLOUT left behind")
	}
}

// A Dial racing Node.Close is either refused (an error) or ends in exactly
// one OnClose: a dial queued in the inbox when the loop stops must not
// vanish, since callers count on OnClose for every Dial.
func TestDialRacingNodeCloseGetsOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // the kernel completes connects into the backlog: no Accept needed
	for round := 0; round < 5; round++ {
		cli, ch := clientNode(t, 2)
		ch.msgs = nil
		var wg sync.WaitGroup
		var mu sync.Mutex
		accepted := 0
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 100; i++ {
					if cli.Dial(DialOptions{Addr: ln.Addr().String(), Loop: -1}) == nil {
						mu.Lock()
						accepted++
						mu.Unlock()
					}
				}
			}()
		}
		time.Sleep(time.Millisecond) // let some dials run, leave others queued
		cli.Close()
		wg.Wait()
		if err := cli.Dial(DialOptions{Addr: ln.Addr().String()}); !errors.Is(err, ErrNodeClosed) {
			t.Fatalf("Dial after Close: %v", err)
		}
		if got := len(ch.closes); got != accepted {
			t.Fatalf("round %d: %d dials accepted, %d OnClose", round, accepted, got)
		}
		for len(ch.closes) > 0 {
			ev := <-ch.closes
			if ev.code != framing.StatusAbnormal || ev.err == nil {
				t.Fatalf("dial closed by node Close: OnClose %+v, want 1006 with an error", ev)
			}
		}
	}
}

// After a burst in which many connections queued output, the loop gives the
// queue memory back instead of keeping every burst-sized queue.
func TestQueueArenaGivesMemoryBack(t *testing.T) {
	l := manualLoop(t, Config{}, &nopHandler{})
	const burst = 1100
	idx := make([]uint32, burst)
	for i := range idx {
		idx[i] = l.queues.alloc()
		q := l.queues.at(idx[i])
		q.own = make([]byte, 0, 64<<10)
		q.items = make([]qitem, 0, 1000)
	}
	for _, i := range idx {
		l.queues.release(i)
	}
	retained := 0
	for i := range l.queues.items {
		q := &l.queues.items[i]
		retained += cap(q.own) + cap(q.items)*int(unsafe.Sizeof(qitem{}))
	}
	if retained > 32<<20 {
		t.Fatalf("%d MiB of queue storage retained after the burst", retained>>20)
	}
}

// writev is capped at IOV_MAX buffers and must resume at the right frame
// and offset after partial writes: thousands of frames of odd sizes through
// a small socket buffer arrive whole and in order.
func TestWritevPartialAndIovMax(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 64 << 20, MaxQueueFrames: 1 << 20}, &nopHandler{})
	fd, peer := socketpair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	h := l.adopt(t, fd, false)
	const count = 5000
	for i := 0; i < count; i++ {
		p := make([]byte, 4+i%300)
		binary.BigEndian.PutUint32(p, uint32(i))
		var err error
		switch i % 3 {
		case 0:
			err = l.Send(h, framing.Prepare(framing.OpBinary, p, false))
		case 1:
			err = l.Write(h, framing.OpBinary, p)
		default:
			err = l.SendLatest(h, framing.Prepare(framing.OpBinary, p, false), uint32(i))
		}
		if err != nil {
			t.Fatal(err)
		}
		if i%700 == 0 {
			l.flushDirty()
		}
	}
	l.flushDirty()
	var stream []byte
	for deadline := time.Now().Add(10 * time.Second); l.slots.at(h.Index()).outq != 0; {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		stream = drainPeer(peer, stream)
		l.flushConn(h.Index())
	}
	stream = drainPeer(peer, stream)
	frames := parseServerFrames(t, stream)
	if len(frames) != count {
		t.Fatalf("%d frames, want %d", len(frames), count)
	}
	for i, f := range frames {
		if len(f.Payload) != 4+i%300 || binary.BigEndian.Uint32(f.Payload) != uint32(i) {
			t.Fatalf("frame %d: %d bytes, seq %d", i, len(f.Payload), binary.BigEndian.Uint32(f.Payload))
		}
	}
}

// The client role delivers frames that the server sent in the same segment
// as its 101 response.
func TestClientFramesPipelinedWithResponse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		n, _ := c.Read(buf)
		key := ""
		for _, line := range bytes.Split(buf[:n], []byte("\r\n")) {
			if k, ok := bytes.CutPrefix(line, []byte("Sec-WebSocket-Key: ")); ok {
				key = string(k)
			}
		}
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKeyOf(key) + "\r\n\r\n"
		b := framing.AppendFrame([]byte(resp), framing.OpText, true, []byte("hello"))
		b = framing.AppendFrame(b, framing.OpText, true, []byte("world, cut"))
		c.Write(b[:len(b)-4])
		time.Sleep(50 * time.Millisecond)
		c.Write(b[len(b)-4:])
		c.Read(buf) // hold the connection until the client goes
	}()
	cli, ch := clientNode(t, 1)
	if err := cli.Dial(DialOptions{Addr: ln.Addr().String(), Loop: 0}); err != nil {
		t.Fatal(err)
	}
	ch.waitOpen(t)
	for _, want := range []string{"hello", "world, cut"} {
		select {
		case m := <-ch.msgs:
			if m != want {
				t.Fatalf("got %q, want %q", m, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q", want)
		}
	}
}

func acceptKeyOf(key string) string {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// OnUpgrade may write to other connections (e.g. close an older session of
// the same player): the upgrade response must not overwrite those frames in
// the pass buffer.
func TestWriteFromOnUpgradeToAnotherConn(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.Loops = 1
	n := startNode(t, cfg, th)
	a := dialRaw(t, n)
	a.upgrade(t)
	ha := th.waitOpen(t)
	th.mu.Lock()
	th.onUpgrade = func(l *Loop, h Handle, r *framing.Request) Accept {
		if err := l.Write(ha, framing.OpText, []byte("a newer session opened")); err != nil {
			t.Error(err)
		}
		if err := l.Close(ha, 4001, "replaced"); err != nil {
			t.Error(err)
		}
		return Accept{}
	}
	th.mu.Unlock()
	b := dialRaw(t, n)
	b.upgrade(t)
	th.waitOpen(t)
	if op, p := a.readFrame(t); op != framing.OpText || string(p) != "a newer session opened" {
		t.Fatalf("first conn got %v %q", op, p)
	}
	if op, p := a.readFrame(t); op != framing.OpClose || closeCodeOf(p) != 4001 || string(p[2:]) != "replaced" {
		t.Fatalf("first conn got %v %q", op, p)
	}
}
