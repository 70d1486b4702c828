package conn

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gorilla/websocket"
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

// drainStream flushes h's queue into peer, as EPOLLOUT would, until it is
// empty and returns every byte the peer received.
func drainStream(t *testing.T, l *Loop, h Handle, peer int) []byte {
	t.Helper()
	var stream []byte
	for deadline := time.Now().Add(10 * time.Second); l.slots.at(h.Index()).outq != 0; {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		stream = drainPeer(peer, stream)
		l.flushConn(h.Index())
	}
	return drainPeer(peer, stream)
}

// drainTexts flushes h's queue into peer until it is empty and returns the
// text messages the peer received, in order.
func drainTexts(t *testing.T, l *Loop, h Handle, peer int) []string {
	t.Helper()
	var texts []string
	for _, f := range parseServerFrames(t, drainStream(t, l, h, peer)) {
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
	for _, it := range queuedItems(l, q) {
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
	for i := 1; i < l.queues.len(); i++ {
		q := l.queues.at(uint32(i))
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
	frames := parseServerFrames(t, drainStream(t, l, h, peer))
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
	addr := fakeServer(t, func(c net.Conn, key string) {
		resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
			"Sec-WebSocket-Accept: " + acceptKeyOf(key) + "\r\n\r\n"
		b := framing.AppendFrame([]byte(resp), framing.OpText, true, []byte("hello"))
		b = framing.AppendFrame(b, framing.OpText, true, []byte("world, cut"))
		c.Write(b[:len(b)-4])
		// Not synchronisation: a pause so that the frame's end arrives in
		// a later segment than the response and the first frame.
		time.Sleep(50 * time.Millisecond)
		c.Write(b[len(b)-4:])
	})
	cli, ch := clientNode(t, 1)
	if err := cli.Dial(DialOptions{Addr: addr, Loop: 0}); err != nil {
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

// fakeServer accepts one connection on a fresh listener, reads the client's
// handshake, calls respond with the connection and its Sec-WebSocket-Key,
// and holds the connection until the client goes. It returns the address.
func fakeServer(t *testing.T, respond func(c net.Conn, key string)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
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
		respond(c, key)
		c.Read(buf)
	}()
	return ln.Addr().String()
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
		if bytes.Equal(r.Path, []byte("/refuse")) {
			if err := l.Write(ha, framing.OpText, []byte("a refused session tried")); err != nil {
				t.Error(err)
			}
			return Accept{Status: 401}
		}
		if err := l.Write(ha, framing.OpText, []byte("a newer session opened")); err != nil {
			t.Error(err)
		}
		if err := l.Close(ha, 4001, "replaced"); err != nil {
			t.Error(err)
		}
		return Accept{}
	}
	th.mu.Unlock()
	refused := dialGorillaErr(n, "/refuse")
	if refused == nil {
		t.Fatal("refused upgrade succeeded")
	}
	if op, p := a.readFrame(t); op != framing.OpText || string(p) != "a refused session tried" {
		t.Fatalf("first conn got %v %q", op, p)
	}
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

// A handler that closes its connection from OnMessage gets no OnMessage for
// the frames that followed in the same read, and the close handshake still
// completes with exactly one OnClose.
func TestCloseFromOnMessageDropsLaterFramesOfTheRead(t *testing.T) {
	th := newTestHandler()
	th.msgs = make(chan string, 100)
	n := startNode(t, testConfig(), th)
	c := dialRaw(t, n)
	c.upgrade(t)
	h := th.waitOpen(t)
	var b []byte
	for _, m := range []string{"close:4000", "after 1", "after 2"} {
		b = framing.AppendMaskedFrame(b, framing.OpText, true, [4]byte{9, 8, 7, 6}, []byte(m))
	}
	b = framing.AppendMaskedFrame(b, framing.OpPing, true, [4]byte{9, 8, 7, 6}, []byte("p"))
	c.Write(b) // one segment: one read on the server
	op, p := c.readFrame(t)
	if op != framing.OpClose || closeCodeOf(p) != 4000 {
		t.Fatalf("got %v %q, want close 4000 only", op, p)
	}
	c.Write(framing.AppendCloseFrame(nil, framing.RoleClient, [4]byte{1, 1, 1, 1}, 4000, ""))
	ev := th.waitClose(t)
	if ev.h != h || ev.code != 4000 || ev.err != nil {
		t.Fatalf("OnClose %+v", ev)
	}
	if got := len(th.msgs); got != 1 {
		t.Fatalf("%d messages delivered, want only the first", got)
	}
	waitFor(t, "fd released", 5*time.Second, func() bool { return n.open.Load() == 0 })
}

// Loop.Close on a connection with a queued backlog: the backlog goes out
// first, the close frame after it, and the handshake completes cleanly once
// the peer has read it all.
func TestCloseBehindQueuedBacklog(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.MaxQueueBytes = 16 << 20
	cfg.CloseTimeout = 10 * time.Second
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	c.upgrade(t)
	h := th.waitOpen(t)
	const frames = 200
	onLoop(n, h.Loop(), func(l *Loop) {
		for i := 0; i < frames; i++ {
			p := bytes.Repeat([]byte{byte(i)}, 32<<10)
			if err := l.Write(h, framing.OpBinary, p); err != nil {
				t.Error(err)
			}
		}
		if err := l.Close(h, framing.StatusNormal, "done"); err != nil {
			t.Error(err)
		}
		if err := l.Write(h, framing.OpText, []byte("too late")); err != ErrClosed {
			t.Errorf("Write after Close: %v", err)
		}
	})
	for i := 0; i < frames; i++ {
		op, p := c.readFrame(t)
		if op != framing.OpBinary || len(p) != 32<<10 || p[0] != byte(i) || p[len(p)-1] != byte(i) {
			t.Fatalf("frame %d: %v %d bytes", i, op, len(p))
		}
	}
	op, p := c.readFrame(t)
	if op != framing.OpClose || closeCodeOf(p) != framing.StatusNormal {
		t.Fatalf("got %v %q after the backlog", op, p)
	}
	// Data sent after the close frame is ignored, then the answer ends it.
	var b []byte
	b = framing.AppendMaskedFrame(b, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte("ignored"))
	b = framing.AppendCloseFrame(b, framing.RoleClient, [4]byte{1, 1, 1, 1}, framing.StatusNormal, "")
	c.Write(b)
	ev := th.waitClose(t)
	if ev.h != h || ev.code != framing.StatusNormal || ev.err != nil {
		t.Fatalf("OnClose %+v", ev)
	}
}

// One connection flooding its loop does not starve another connection of
// the same loop: each pass reads at most one buffer per connection.
func TestFloodingConnDoesNotStarveOthers(t *testing.T) {
	th := newTestHandler()
	th.onMessage = func(l *Loop, h Handle, op framing.OpCode, p []byte) {
		if len(p) > 0 && p[0] == 'q' {
			l.Write(h, op, p)
		}
	}
	cfg := testConfig()
	cfg.Loops = 1
	n := startNode(t, cfg, th)
	flood := dialRaw(t, n)
	flood.upgrade(t)
	th.waitOpen(t)
	quiet := dialRaw(t, n)
	quiet.upgrade(t)
	th.waitOpen(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b []byte
		for len(b) < 256<<10 {
			b = framing.AppendMaskedFrame(b, framing.OpBinary, true, [4]byte{1, 2, 3, 4}, []byte("x"))
		}
		for {
			select {
			case <-stop:
				return
			default:
			}
			flood.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := flood.Write(b); err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					return
				}
			}
		}
	}()
	defer func() { close(stop); <-done }()
	for i := 0; i < 20; i++ {
		quiet.Write(framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{5, 6, 7, 8}, []byte(fmt.Sprint("q", i))))
		if op, p := quiet.readFrame(t); op != framing.OpText || string(p) != fmt.Sprint("q", i) {
			t.Fatalf("echo %d: %v %q", i, op, p)
		}
	}
}

// Dial binds the source address it is given, and a source address that
// cannot be bound ends in OnClose(1006) with the bind error, no fd left.
func TestDialSourceAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cli, ch := clientNode(t, 1)
	if err := cli.Dial(DialOptions{Addr: ln.Addr().String(), LocalAddr: "127.0.0.3", Loop: 0}); err != nil {
		t.Fatal(err)
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ip := c.RemoteAddr().(*net.TCPAddr).IP.String(); ip != "127.0.0.3" {
		t.Fatalf("connection from %s, want 127.0.0.3", ip)
	}
	// 192.0.2.1 (TEST-NET-1) is not an address of this host.
	if err := cli.Dial(DialOptions{Addr: ln.Addr().String(), LocalAddr: "192.0.2.1", Loop: 0}); err != nil {
		t.Fatal(err)
	}
	ev := ch.waitClose(t)
	if ev.code != framing.StatusAbnormal || !errors.Is(ev.err, unix.EADDRNOTAVAIL) {
		t.Fatalf("OnClose %+v, want 1006 with EADDRNOTAVAIL", ev)
	}
	c.Close()
	ev = ch.waitClose(t) // the first dial, its server gone mid-handshake
	if ev.code != framing.StatusAbnormal {
		t.Fatalf("OnClose %+v", ev)
	}
	waitFor(t, "fds released", 5*time.Second, func() bool { return cli.open.Load() == 0 })
	if err := cli.Dial(DialOptions{Addr: ln.Addr().String(), LocalAddr: "not an ip"}); err == nil {
		t.Fatal("bad source address accepted")
	}
}

// A Start that fails half-way leaves no epoll, eventfd or listener open
// once the node is closed.
func TestStartFailureReleasesFDs(t *testing.T) {
	n, err := NewNode(testConfig(), newTestHandler())
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, l := range n.loops {
		fds = append(fds, l.poll.epfd, l.poll.efd, l.lfd)
	}
	link := func(fd int) string {
		s, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		return s
	}
	was := make([]string, len(fds))
	for i, fd := range fds {
		if was[i] = link(fd); was[i] == "" {
			t.Skip("no /proc/self/fd")
		}
	}
	l := n.loops[1]
	unix.Close(l.lfd)
	was[5] = ""
	l.lfd = 1 << 20 // never open (over the fd limit): registering it fails
	if err := n.Start(); err == nil {
		t.Fatal("Start with a broken listener succeeded")
	}
	n.Close()
	for i, fd := range fds {
		if was[i] != "" && link(fd) == was[i] {
			t.Errorf("fd %d (%s) still open", fd, was[i])
		}
	}
}

// A randomised mix of well- and ill-behaved peers leaves nothing behind:
// every OnOpen gets exactly one OnClose, and every fd, slot, handshake
// buffer, tail and queue is released.
func TestChurnLeavesNothingBehind(t *testing.T) {
	th := newTestHandler()
	opened := map[Handle]int{}
	th.onUpgrade = func(l *Loop, h Handle, r *framing.Request) Accept { return Accept{MaxMessage: 1 << 20} }
	th.onMessage = func(l *Loop, h Handle, op framing.OpCode, p []byte) {
		switch {
		case bytes.HasPrefix(p, []byte("close")):
			l.Close(h, 4000, "asked")
		case bytes.HasPrefix(p, []byte("big")):
			for i := 0; i < 8; i++ {
				l.Write(h, framing.OpBinary, make([]byte, 64<<10))
			}
		default:
			l.Write(h, op, p)
		}
	}
	cfg := testConfig()
	cfg.CloseTimeout = 200 * time.Millisecond
	cfg.HandshakeTimeout = time.Second
	cfg.MaxQueueBytes = 128 << 10
	n := startNode(t, cfg, th)
	const peers = 120
	var wg sync.WaitGroup
	for i := 0; i < peers; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(10 * time.Second))
			req := "GET /x HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
			m := func(op framing.OpCode, fin bool, p string) []byte {
				return framing.AppendMaskedFrame(nil, op, fin, [4]byte{byte(i), 2, 3, 4}, []byte(p))
			}
			switch i % 10 {
			case 0: // gone during the handshake
				c.Write([]byte(req[:20]))
			case 1: // handshake plus pipelined frames, then RST mid-frame
				b := append([]byte(req), m(framing.OpText, true, "hi")...)
				b = append(b, m(framing.OpBinary, true, string(make([]byte, 3000)))[:100]...)
				c.Write(b)
				time.Sleep(20 * time.Millisecond)
				c.(*net.TCPConn).SetLinger(0)
			case 2: // asks the server to close, answers, waits for EOF
				c.Write(append([]byte(req), m(framing.OpText, true, "close")...))
				buf := make([]byte, 4096)
				c.Read(buf)
				c.Write(framing.AppendCloseFrame(nil, framing.RoleClient, [4]byte{1, 2, 3, 4}, 4000, ""))
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
			case 3: // asks for a lot and never reads: slow close
				b := []byte(req)
				for j := 0; j < 8; j++ {
					b = append(b, m(framing.OpText, true, "big")...)
				}
				c.Write(b)
				time.Sleep(300 * time.Millisecond)
			case 4: // protocol error (unmasked frame)
				c.Write(append([]byte(req), framing.AppendFrame(nil, framing.OpText, true, []byte("x"))...))
				time.Sleep(50 * time.Millisecond)
			case 5: // fragmented message with a ping inside, then a close
				b := append([]byte(req), m(framing.OpText, false, "frag")...)
				b = append(b, m(framing.OpPing, true, "p")...)
				b = append(b, m(framing.OpContinuation, true, "ment")...)
				b = append(b, framing.AppendCloseFrame(nil, framing.RoleClient, [4]byte{1, 2, 3, 4}, 1000, "")...)
				c.Write(b)
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
			case 6: // a large frame trickled in pieces, then EOF
				f := m(framing.OpBinary, true, string(make([]byte, 200<<10)))
				c.Write([]byte(req))
				for off := 0; off < len(f); off += 50 << 10 {
					c.Write(f[off:min(off+50<<10, len(f))])
				}
				time.Sleep(20 * time.Millisecond)
			default: // chatty, then gone without a close
				c.Write([]byte(req))
				for j := 0; j < 20; j++ {
					c.Write(m(framing.OpText, true, fmt.Sprint("msg ", j)))
				}
				time.Sleep(time.Duration(i%5) * 10 * time.Millisecond)
			}
		}(i)
	}
	wg.Wait()
	waitFor(t, "all connections gone", 15*time.Second, func() bool { return n.open.Load() == 0 })
	st := n.Stats()
	for i, c := range st.Conns {
		if c != 0 {
			t.Fatalf("loop %d still counts %d connections", i, c)
		}
	}
	closes := map[Handle]int{}
	for len(th.closes) > 0 {
		ev := <-th.closes
		closes[ev.h]++
	}
	for len(th.opens) > 0 {
		opened[<-th.opens]++
	}
	if len(opened) != peers-peers/10 {
		t.Fatalf("%d connections opened, want %d", len(opened), peers-peers/10)
	}
	for h, k := range opened {
		if k != 1 || closes[h] != 1 {
			t.Errorf("handle %x: %d OnOpen, %d OnClose", h, k, closes[h])
		}
	}
	for h := range closes {
		if opened[h] == 0 {
			t.Errorf("OnClose without OnOpen for %x", h)
		}
	}
	for id := range n.loops {
		onLoop(n, id, func(l *Loop) {
			if l.slots.used != 0 || l.hss.inUse() != 0 || l.bufs.inUse() != 0 || l.queues.inUse() != 0 {
				t.Errorf("loop %d: slots %d, hs %d, bufs %d, queues %d in use", id,
					l.slots.used, l.hss.inUse(), l.bufs.inUse(), l.queues.inUse())
			}
		})
	}
}

// Posts racing with the loop going to sleep are never stranded: every post
// of many round trips from several goroutines runs promptly.
func TestPostNeverLosesWakeup(t *testing.T) {
	n := startNode(t, Config{Loops: 2, Logger: testConfig().Logger}, newTestHandler())
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			done := make(chan struct{}, 1)
			for i := 0; i < 2000; i++ {
				n.Post(g, func(*Loop) { done <- struct{}{} })
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Errorf("post %d of goroutine %d never ran", i, g)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// A Dial on a node closed without ever starting still ends in OnClose.
func TestDialOnNeverStartedNodeGetsOnClose(t *testing.T) {
	ch := newTestHandler()
	n, err := NewNode(Config{Loops: 2, Logger: testConfig().Logger}, ch)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := n.Dial(DialOptions{Addr: "127.0.0.1:1", Loop: -1}); err != nil {
			t.Fatal(err)
		}
	}
	n.Close()
	if len(ch.closes) != 3 {
		t.Fatalf("%d OnClose for 3 dials", len(ch.closes))
	}
	if ev := <-ch.closes; ev.code != framing.StatusAbnormal || !errors.Is(ev.err, ErrNodeClosed) {
		t.Fatalf("OnClose %+v", ev)
	}
}

// Model check of SendLatest against reliable frames through partial writes:
// every reliable frame arrives once, in order; a latest-value frame never
// arrives before a reliable frame sent ahead of it; per key, values only
// go forward and the last one always arrives.
func TestSendLatestModel(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 64 << 20, MaxQueueFrames: 1 << 20}, &nopHandler{})
	fd, peer := socketpair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
	h := l.adopt(t, fd, false)
	rng := uint64(12345)
	rnd := func(n int) int {
		rng ^= rng << 13
		rng ^= rng >> 7
		rng ^= rng << 17
		return int(rng % uint64(n))
	}
	var stream []byte
	partial := func() { // the peer reads a little
		buf := make([]byte, 1+rnd(3000))
		if k, err := unix.Read(peer, buf); err == nil && k > 0 {
			stream = append(stream, buf[:k]...)
		}
	}
	rel := 0
	lastVal := map[int]int{}
	for op := 0; op < 6000; op++ {
		if s := l.slots.at(h.Index()); s.outq != 0 {
			q := l.queues.at(s.outq)
			holes, bytes := 0, -q.off
			for _, it := range queuedItems(l, q) {
				if len(it.b) == 0 {
					holes++
				}
				bytes += len(it.b)
			}
			if holes != q.holes || bytes != q.bytes {
				t.Fatalf("op %d: %d holes, %d bytes queued; counted %d, %d", op, holes, bytes, q.holes, q.bytes)
			}
		}
		switch r := rnd(10); {
		case r < 4:
			rel++
			p := fmt.Sprintf("R%d:%s", rel, bytes.Repeat([]byte{'r'}, rnd(400)))
			if err := l.Send(h, framing.Prepare(framing.OpText, []byte(p), false)); err != nil {
				t.Fatal(err)
			}
		case r < 9:
			k := 1 + rnd(3)
			lastVal[k]++
			p := fmt.Sprintf("L%d:%d:%d:%s", k, lastVal[k], rel, bytes.Repeat([]byte{'l'}, rnd(400)))
			if err := l.SendLatest(h, framing.Prepare(framing.OpText, []byte(p), false), uint32(k)); err != nil {
				t.Fatal(err)
			}
		default:
			l.endPass()
			if rnd(2) == 0 {
				partial()
				if s := l.slots.at(h.Index()); s.flags&fArmedOut != 0 {
					l.flushConn(h.Index()) // as EPOLLOUT would
				}
			}
		}
	}
	l.endPass()
	for deadline := time.Now().Add(10 * time.Second); l.slots.at(h.Index()).outq != 0; {
		if time.Now().After(deadline) {
			t.Fatal("queue never drained")
		}
		stream = drainPeer(peer, stream)
		l.flushConn(h.Index())
	}
	stream = drainPeer(peer, stream)
	gotRel := 0
	seen := map[int]int{}
	for _, f := range parseServerFrames(t, stream) {
		var a, b, c int
		if f.Payload[0] == 'R' {
			fmt.Sscanf(string(f.Payload), "R%d:", &a)
			if a != gotRel+1 {
				t.Fatalf("reliable %d after %d", a, gotRel)
			}
			gotRel = a
			continue
		}
		fmt.Sscanf(string(f.Payload), "L%d:%d:%d:", &a, &b, &c)
		if c > gotRel {
			t.Fatalf("latest %d/%d reflecting reliable %d arrived after reliable %d only", a, b, c, gotRel)
		}
		if b <= seen[a] {
			t.Fatalf("key %d went from %d to %d", a, seen[a], b)
		}
		seen[a] = b
	}
	if gotRel != rel {
		t.Fatalf("%d reliable frames arrived of %d", gotRel, rel)
	}
	for k, v := range lastVal {
		if seen[k] != v {
			t.Fatalf("key %d: last value %d arrived as %d", k, v, seen[k])
		}
	}
	if s := l.slots.at(h.Index()); s.flags&fArmedOut != 0 {
		t.Fatal("EPOLLOUT armed on an empty queue")
	}
}

// dialGorillaErr tries an upgrade and returns its error.
func dialGorillaErr(n *Node, path string) error {
	c, _, err := websocket.DefaultDialer.Dial(wsURL(n, path), nil)
	if err == nil {
		c.Close()
	}
	return err
}

// More than IOV_MAX frames that the socket can take at once all go out in
// the same flush, without waiting for EPOLLOUT.
func TestFlushBeyondIovMaxInOnePass(t *testing.T) {
	l := manualLoop(t, Config{MaxQueueBytes: 64 << 20, MaxQueueFrames: 1 << 20}, &nopHandler{})
	fd, peer := socketpair(t)
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
	unix.SetsockoptInt(peer, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	h := l.adopt(t, fd, false)
	f := framing.Prepare(framing.OpBinary, []byte("0123456789"), false)
	for i := 0; i < 3*maxIov; i++ {
		if err := l.Send(h, f); err != nil {
			t.Fatal(err)
		}
	}
	l.endPass()
	if s := l.slots.at(h.Index()); s.outq != 0 || s.flags&fArmedOut != 0 {
		t.Fatalf("%d frames still queued after one flush", l.queues.at(s.outq).frames())
	}
	if got := len(parseServerFrames(t, drainPeer(peer, nil))); got != 3*maxIov {
		t.Fatalf("%d frames received", got)
	}
}

// Output a posted function queued just before Node.Close still goes out,
// followed by the 1001 close frame.
func TestNodeCloseFlushesLastPosts(t *testing.T) {
	th := newTestHandler()
	srv, err := NewNode(testConfig(), th)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := dialRaw(t, srv)
	c.upgrade(t)
	h := th.waitOpen(t)
	block, started := make(chan struct{}), make(chan struct{})
	srv.Post(h.Loop(), func(*Loop) { close(started); <-block }) // hold the loop so the next post stays queued
	<-started
	srv.Post(h.Loop(), func(l *Loop) { l.Write(h, framing.OpText, []byte("last words")) })
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	waitFor(t, "loop told to stop", 5*time.Second, func() bool { return srv.loops[h.Loop()].stop.Load() })
	close(block)
	<-closed
	if op, p := c.readFrame(t); op != framing.OpText || string(p) != "last words" {
		t.Fatalf("got %v %q", op, p)
	}
	if op, p := c.readFrame(t); op != framing.OpClose || closeCodeOf(p) != framing.StatusGoingAway {
		t.Fatalf("got %v %q", op, p)
	}
}

// A server that answers with permessage-deflate the client did not offer
// fails the connection (RFC 6455 4.1); the same answer to a client that
// offered it opens the connection.
func TestClientRefusesUnofferedDeflate(t *testing.T) {
	for _, offer := range []bool{false, true} {
		addr := fakeServer(t, func(c net.Conn, key string) {
			c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
				"Sec-WebSocket-Accept: " + acceptKeyOf(key) + "\r\n" +
				"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"))
		})
		cli, ch := clientNode(t, 1)
		if err := cli.Dial(DialOptions{Addr: addr, Loop: 0, Deflate: offer}); err != nil {
			t.Fatal(err)
		}
		if offer {
			ch.waitOpen(t)
			continue
		}
		ev := ch.waitClose(t)
		if !errors.Is(ev.err, errUnofferedDeflate) || ev.code != framing.StatusAbnormal {
			t.Fatalf("unoffered deflate: close %d %v, want 1006 %v", ev.code, ev.err, errUnofferedDeflate)
		}
		select {
		case h := <-ch.opens:
			t.Fatalf("connection %v opened despite an unoffered extension", h)
		default:
		}
	}
}
