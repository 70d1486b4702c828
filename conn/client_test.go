package conn

import (
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/framing"
)

// clientNode starts a client-only node whose handler records messages.
func clientNode(t testing.TB, loops int) (*Node, *testHandler) {
	t.Helper()
	ch := newTestHandler()
	ch.msgs = make(chan string, 20000)
	ch.onMessage = func(*Loop, Handle, framing.OpCode, []byte) {}
	return startNode(t, Config{Loops: loops, Logger: zerolog.Nop()}, ch), ch
}

func TestClientRoleDialOwnNode(t *testing.T) {
	sh := newTestHandler()
	srv := startNode(t, testConfig(), sh)
	cli, ch := clientNode(t, 2)
	if cli.Addr() != nil {
		t.Fatalf("client node has a listener: %v", cli.Addr())
	}
	const conns = 20
	for i := 0; i < conns; i++ {
		if err := cli.Dial(DialOptions{Addr: srv.Addr().String(), Path: "/echo?player=p", Loop: -1, Tag: uint32(i)}); err != nil {
			t.Fatal(err)
		}
	}
	handles := make([]Handle, 0, conns)
	for i := 0; i < conns; i++ {
		h := ch.waitOpen(t)
		handles = append(handles, h)
		cli.Post(h.Loop(), func(l *Loop) {
			tag, _ := l.Tag(h)
			if err := l.Write(h, framing.OpText, []byte(fmt.Sprintf("hello %d", tag))); err != nil {
				t.Error(err)
			}
			// A large masked message too (16-bit length, pass buffer copy).
			l.Write(h, framing.OpBinary, make([]byte, 3000))
		})
	}
	seen := map[string]bool{}
	for i := 0; i < 2*conns; i++ {
		select {
		case m := <-ch.msgs:
			seen[m] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("got %d echoes of %d", i, 2*conns)
		}
	}
	for i := 0; i < conns; i++ {
		if !seen[fmt.Sprintf("hello %d", i)] {
			t.Fatalf("no echo for conn %d", i)
		}
	}
	loopsUsed := map[int]bool{}
	for _, h := range handles {
		loopsUsed[h.Loop()] = true
	}
	if len(loopsUsed) != 2 {
		t.Fatalf("round robin used loops %v", loopsUsed)
	}
	// Client-initiated close handshake.
	h := handles[0]
	cli.Post(h.Loop(), func(l *Loop) { l.Close(h, framing.StatusNormal, "done") })
	ev := ch.waitClose(t)
	if ev.h != h || ev.code != framing.StatusNormal || ev.err != nil {
		t.Fatalf("client OnClose %+v", ev)
	}
	sev := sh.waitClose(t)
	if sev.code != framing.StatusNormal || sev.err != nil {
		t.Fatalf("server OnClose %+v", sev)
	}
	// Server-initiated close reaches the client.
	cli.Post(handles[1].Loop(), func(l *Loop) { l.Write(handles[1], framing.OpText, []byte("close:4002")) })
	ev = ch.waitClose(t)
	if ev.h != handles[1] || ev.code != 4002 {
		t.Fatalf("client OnClose %+v", ev)
	}
}

func TestClientDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	cli, ch := clientNode(t, 1)
	if err := cli.Dial(DialOptions{Addr: addr, Loop: 0}); err != nil {
		t.Fatal(err)
	}
	ev := ch.waitClose(t)
	if ev.code != framing.StatusAbnormal || ev.err == nil {
		t.Fatalf("OnClose %+v, want 1006 with an error", ev)
	}
	if err := cli.Dial(DialOptions{Addr: "not an address"}); err == nil {
		t.Fatal("bad address accepted")
	}
	// A server that is not WebSocket: the handshake fails.
	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		c, err := plain.Accept()
		if err != nil {
			return
		}
		buf := make([]byte, 4096)
		c.Read(buf)
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
		c.Read(buf) // hold the connection until the client goes
		c.Close()
	}()
	cli.Dial(DialOptions{Addr: plain.Addr().String(), Loop: 0})
	ev = ch.waitClose(t)
	if ev.code != framing.StatusAbnormal || !errors.Is(ev.err, errResponse) {
		t.Fatalf("OnClose %+v, want a bad response", ev)
	}
}

func TestManyConnectionsAcrossLoops(t *testing.T) {
	const conns = 2400
	sh := newTestHandler()
	cfg := testConfig()
	cfg.Loops = 4
	srv := startNode(t, cfg, sh)
	cli, ch := clientNode(t, 2)
	var echoes atomic.Int64
	ch.msgs = nil
	ch.onMessage = func(l *Loop, h Handle, op framing.OpCode, p []byte) { echoes.Add(1) }
	for i := 0; i < conns; i++ {
		// Several source addresses, as the load generator uses.
		la := fmt.Sprintf("127.0.0.%d", 1+i%4)
		if err := cli.Dial(DialOptions{Addr: srv.Addr().String(), LocalAddr: la, Path: "/echo", Loop: -1}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < conns; i++ {
		h := ch.waitOpen(t)
		cli.Post(h.Loop(), func(l *Loop) { l.Write(h, framing.OpText, []byte("x")) })
	}
	waitFor(t, "all echoes", 20*time.Second, func() bool { return echoes.Load() == conns })
	st := srv.Stats()
	var sum int64
	for i, c := range st.Conns {
		if c == 0 {
			t.Fatalf("loop %d got no connections: %v", i, st.Conns)
		}
		sum += c
	}
	if sum != conns || st.Accepted != conns {
		t.Fatalf("server conns %v (sum %d), accepted %d", st.Conns, sum, st.Accepted)
	}
	t.Logf("connections per loop: %v", st.Conns)
	cli.Close()
	waitFor(t, "server conns closed", 20*time.Second, func() bool {
		var s int64
		for _, c := range srv.Stats().Conns {
			s += c
		}
		return s == 0
	})
	if got := len(ch.closes); got != conns {
		t.Fatalf("client OnClose %d of %d", got, conns)
	}
}

func TestFDBudgetPausesAndResumesAccept(t *testing.T) {
	sh := newTestHandler()
	cfg := testConfig()
	cfg.MaxConns = 4 // resume below 90 %: 3
	srv := startNode(t, cfg, sh)
	var raws []*rawConn
	for i := 0; i < 4; i++ {
		c := dialRaw(t, srv)
		c.upgrade(t)
		sh.waitOpen(t)
		raws = append(raws, c)
	}
	// The fifth is not served: the listeners close when an accept finds
	// the budget used up, so it is refused or reset.
	waitFor(t, "listeners paused", 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second)
		if err != nil {
			return true
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		_, err = c.Read(b[:])
		var ne net.Error
		return err != nil && !(errors.As(err, &ne) && ne.Timeout())
	})
	if got := srv.Stats().Accepted; got > 5 {
		t.Fatalf("accepted %d over a budget of 4", got)
	}
	raws[0].Close()
	raws[1].Close()
	sh.waitClose(t)
	sh.waitClose(t)
	waitFor(t, "accepting again", 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", srv.Addr().String(), time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	c := dialRaw(t, srv)
	c.upgrade(t)
	sh.waitOpen(t)
}

func TestNodeCloseClosesConnections(t *testing.T) {
	sh := newTestHandler()
	srv, err := NewNode(testConfig(), sh)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, srv)
	c.upgrade(t)
	h := sh.waitOpen(t)
	srv.Close()
	ev := sh.waitClose(t)
	if ev.h != h || ev.code != framing.StatusGoingAway || !errors.Is(ev.err, ErrNodeClosed) {
		t.Fatalf("OnClose %+v", ev)
	}
	op, p := c.readFrame(t)
	if op != framing.OpClose || closeCodeOf(p) != framing.StatusGoingAway {
		t.Fatalf("got %v %v", op, p)
	}
	if err := srv.Start(); err != ErrNodeClosed {
		t.Fatalf("Start after Close: %v", err)
	}
	srv.Post(0, func(*Loop) { t.Error("posted after close ran") })
}

func TestPostCoalescesOnRunningLoop(t *testing.T) {
	srv := startNode(t, Config{Loops: 1, Logger: zerolog.Nop()}, newTestHandler())
	l := srv.Loops()[0]
	block := make(chan struct{})
	started := make(chan struct{})
	srv.Post(0, func(*Loop) { close(started); <-block })
	<-started
	before := l.inbox.wakes.Load()
	var ran atomic.Int64
	done := make(chan struct{})
	const posts = 1000
	for i := 0; i < posts; i++ {
		srv.Post(0, func(*Loop) {
			if ran.Add(1) == posts {
				close(done)
			}
		})
	}
	close(block)
	<-done
	if w := l.inbox.wakes.Load() - before; w != 1 {
		t.Fatalf("%d posts to a busy loop caused %d eventfd writes, want 1", posts, w)
	}
}

func TestClientDeflateWithPreparedCompressed(t *testing.T) {
	sh := newTestHandler()
	msg := []byte(fmt.Sprintf("%0500d", 7)) // compresses well
	f := framing.Prepare(framing.OpText, msg, true)
	sh.onMessage = func(l *Loop, h Handle, op framing.OpCode, p []byte) {
		if err := l.Send(h, f); err != nil {
			t.Error(err)
		}
	}
	cfg := testConfig()
	cfg.Deflate = true
	srv := startNode(t, cfg, sh)
	cli, ch := clientNode(t, 1)
	cli.Dial(DialOptions{Addr: srv.Addr().String(), Deflate: true, Loop: 0})
	h := ch.waitOpen(t)
	hs := sh.waitOpen(t)
	onLoop(srv, hs.Loop(), func(l *Loop) {
		if l.live(hs).flags&fDeflate == 0 {
			t.Error("deflate not negotiated")
		}
	})
	cli.Post(0, func(l *Loop) { l.Write(h, framing.OpText, []byte("go")) })
	select {
	case m := <-ch.msgs:
		if m != string(msg) {
			t.Fatalf("inflated %q", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	if out := srv.Stats().BytesOut; out >= int64(len(msg)) {
		t.Fatalf("server wrote %d bytes for a %d-byte message: not compressed", out, len(msg))
	}
}

// Dial refuses request parts that would inject headers into the request
// head.
func TestDialRejectsBrokenRequestParts(t *testing.T) {
	cli, _ := clientNode(t, 1)
	bad := []DialOptions{
		{Path: "/x\r\nX-Injected: 1"},
		{Path: "/a b"},
		{Host: "h\r\nX-Injected: 1"},
		{Header: [][2]string{{"X-Ok", "v\r\nX-Injected: 1"}}},
		{Header: [][2]string{{"Bad Name", "v"}}},
		{Header: [][2]string{{"", "v"}}},
	}
	for _, o := range bad {
		o.Addr = "127.0.0.1:1"
		if err := cli.Dial(o); err == nil {
			t.Errorf("Dial(%+v) accepted", o)
		}
	}
	if err := checkRequest("127.0.0.1:1", "/p?q=1", [][2]string{{"Authorization", "Bearer a b"}}); err != nil {
		t.Fatalf("valid request parts refused: %v", err)
	}
}
