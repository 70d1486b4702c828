package conn

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/framing"
)

func dialGorilla(t *testing.T, n *Node, path string, d *websocket.Dialer) *websocket.Conn {
	t.Helper()
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	}
	c, resp, err := d.Dial(wsURL(n, path), nil)
	if err != nil {
		t.Fatalf("dial: %v (resp %v)", err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEchoGorilla(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialGorilla(t, n, "/echo", nil)
	h := th.waitOpen(t)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, m := range []struct {
		typ int
		p   []byte
	}{
		{websocket.TextMessage, []byte("hello")},
		{websocket.BinaryMessage, []byte{0, 1, 2, 0xff}},
		{websocket.TextMessage, []byte(strings.Repeat("é", 1000))}, // 2000 bytes, 16-bit length
		{websocket.TextMessage, nil},
	} {
		if err := c.WriteMessage(m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		typ, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || !bytes.Equal(p, m.p) {
			t.Fatalf("echo mismatch: type %d len %d", typ, len(p))
		}
	}
	st := n.Stats()
	if st.MsgsIn != 4 || st.Accepted != 1 {
		t.Fatalf("stats: %+v", st)
	}
	// Between messages the connection owns no buffer of any kind.
	onLoop(n, h.Loop(), func(l *Loop) {
		s := l.live(h)
		if s == nil || s.hs != 0 || s.tail != 0 || s.frag != 0 || s.outq != 0 {
			t.Errorf("idle connection holds buffers: %+v", s)
		}
	})
}

func TestFragmentedMessage(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	// A small write buffer makes gorilla send the message as many frames.
	c := dialGorilla(t, n, "/echo", &websocket.Dialer{WriteBufferSize: 64, HandshakeTimeout: 5 * time.Second})
	msg := []byte(strings.Repeat("fragments-", 300))
	w, err := c.NextWriter(websocket.TextMessage)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msg); i += 100 {
		w.Write(msg[i:min(i+100, len(msg))])
	}
	w.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(p, msg) {
		t.Fatalf("reassembled %d bytes, want %d", len(p), len(msg))
	}
}

func TestFragmentedWithInterleavedPingRaw(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialRaw(t, n)
	c.upgrade(t)
	m := [4]byte{1, 2, 3, 4}
	var b []byte
	b = framing.AppendMaskedFrame(b, framing.OpText, false, m, []byte("hel"))
	b = framing.AppendMaskedFrame(b, framing.OpPing, true, m, []byte("p!"))
	b = framing.AppendMaskedFrame(b, framing.OpContinuation, false, m, []byte("lo "))
	b = framing.AppendMaskedFrame(b, framing.OpContinuation, true, m, []byte("world"))
	// Byte by byte: every frame arrives split, exercising the tail buffer.
	for i := range b {
		if _, err := c.Write(b[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	op, p := c.readFrame(t)
	if op != framing.OpPong || string(p) != "p!" {
		t.Fatalf("got %v %q, want pong p!", op, p)
	}
	op, p = c.readFrame(t)
	if op != framing.OpText || string(p) != "hello world" {
		t.Fatalf("got %v %q", op, p)
	}
}

func TestPingPongGorilla(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialGorilla(t, n, "/echo", nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("after"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "after" {
		t.Fatalf("read: %q %v", p, err)
	}
	select {
	case s := <-pong:
		if s != "are you there" {
			t.Fatalf("pong payload %q", s)
		}
	default:
		t.Fatal("no pong before the echo")
	}
}

func TestServerPingsIdlePeerAndClosesSilentOne(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.IdleTimeout = 300 * time.Millisecond
	n := startNode(t, cfg, th)
	// A gorilla client answers pings from its read loop: it stays.
	g := dialGorilla(t, n, "/echo", nil)
	pinged := make(chan struct{}, 8)
	g.SetPingHandler(func(s string) error {
		select {
		case pinged <- struct{}{}:
		default:
		}
		return g.WriteControl(websocket.PongMessage, []byte(s), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := g.ReadMessage(); err != nil {
				return
			}
		}
	}()
	hg := th.waitOpen(t)
	// A raw client that never answers is closed with 1001.
	c := dialRaw(t, n)
	c.upgrade(t)
	hr := th.waitOpen(t)
	op, _ := c.readFrame(t)
	if op != framing.OpPing {
		t.Fatalf("first frame to a silent peer: %v, want ping", op)
	}
	op, p := c.readFrame(t)
	if op != framing.OpClose || closeCodeOf(p) != framing.StatusGoingAway {
		t.Fatalf("got %v code %d, want close 1001", op, closeCodeOf(p))
	}
	ev := th.waitClose(t)
	if ev.h != hr || !errors.Is(ev.err, ErrIdle) {
		t.Fatalf("close event %+v, want idle close of the raw client", ev)
	}
	select {
	case <-pinged:
	case <-time.After(5 * time.Second):
		t.Fatal("the gorilla client was never pinged")
	}
	// Pings answered: a ping comes after IdleTimeout/2 of silence, so three
	// more span over one idle timeout, and the gorilla client is alive.
	for i := 0; i < 3; i++ {
		select {
		case <-pinged:
		case <-time.After(5 * time.Second):
			t.Fatalf("ping %d of the answering client never came", i+2)
		}
	}
	onLoop(n, hg.Loop(), func(l *Loop) {
		if _, ok := l.Tag(hg); !ok {
			t.Error("pong-answering client was closed")
		}
	})
}

func TestCloseClientInitiated(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialGorilla(t, n, "/echo", nil)
	h := th.waitOpen(t)
	c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseNormalClosure {
		t.Fatalf("client read: %v, want the echoed close 1000", err)
	}
	ev := th.waitClose(t)
	if ev.h != h || ev.code != framing.StatusNormal || ev.err != nil {
		t.Fatalf("OnClose %+v", ev)
	}
	// After OnClose the handle is stale.
	onLoop(n, h.Loop(), func(l *Loop) {
		if err := l.Write(h, framing.OpText, []byte("x")); err != ErrStale {
			t.Errorf("Write on a closed handle: %v, want ErrStale", err)
		}
	})
}

func TestCloseServerInitiated(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialGorilla(t, n, "/echo", nil)
	h := th.waitOpen(t)
	c.WriteMessage(websocket.TextMessage, []byte("close:4001"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := c.ReadMessage() // gorilla answers the close frame itself
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Text != "bye" {
		t.Fatalf("client read: %v, want close 4001 bye", err)
	}
	ev := th.waitClose(t)
	if ev.h != h || ev.code != 4001 || ev.err != nil {
		t.Fatalf("OnClose %+v, want 4001 clean", ev)
	}
}

func TestCloseServerInitiatedPeerNeverAnswers(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.CloseTimeout = 200 * time.Millisecond
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	c.upgrade(t)
	h := th.waitOpen(t)
	onLoop(n, h.Loop(), func(l *Loop) { l.Close(h, framing.StatusNormal, "") })
	op, p := c.readFrame(t)
	if op != framing.OpClose || closeCodeOf(p) != framing.StatusNormal {
		t.Fatalf("got %v %v", op, p)
	}
	ev := th.waitClose(t)
	if ev.code != framing.StatusNormal || !errors.Is(ev.err, ErrCloseTimeout) {
		t.Fatalf("OnClose %+v, want close timeout", ev)
	}
}

func TestCoderWebsocket(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, wsURL(n, "/echo"), &cws.DialOptions{CompressionMode: cws.CompressionDisabled})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	for _, typ := range []cws.MessageType{cws.MessageText, cws.MessageBinary} {
		if err := c.Write(ctx, typ, []byte("coder")); err != nil {
			t.Fatal(err)
		}
		gt, p, err := c.Read(ctx)
		if err != nil || gt != typ || string(p) != "coder" {
			t.Fatalf("read %v %q %v", gt, p, err)
		}
	}
	go c.Read(ctx) // Ping and Close need a reader
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := c.Close(cws.StatusGoingAway, "done"); err != nil {
		t.Fatalf("close handshake: %v", err)
	}
	ev := th.waitClose(t)
	if ev.code != framing.StatusGoingAway || ev.err != nil {
		t.Fatalf("OnClose %+v", ev)
	}
}

func TestCoderWebsocketDeflate(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.Deflate = true
	n := startNode(t, cfg, th)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := cws.Dial(ctx, wsURL(n, "/echo"), &cws.DialOptions{CompressionMode: cws.CompressionNoContextTakeover, CompressionThreshold: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	msg := strings.Repeat("compress me please ", 100)
	if err := c.Write(ctx, cws.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	_, p, err := c.Read(ctx)
	if err != nil || string(p) != msg {
		t.Fatalf("deflate echo: %v len %d", err, len(p))
	}
	if got := n.Stats().BytesIn; got != int64(len(msg)) {
		t.Fatalf("BytesIn %d, want the inflated length %d", got, len(msg))
	}
}

func TestProtocolErrors(t *testing.T) {
	cases := []struct {
		name string
		send func(c *rawConn) []byte
		code framing.StatusCode
	}{
		{"unmasked", func(*rawConn) []byte { return framing.AppendFrame(nil, framing.OpText, true, []byte("hi")) }, framing.StatusProtocolError},
		{"reserved opcode", func(*rawConn) []byte {
			b := framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{9, 9, 9, 9}, []byte("x"))
			b[0] = b[0]&0xf0 | 0x3
			return b
		}, framing.StatusProtocolError},
		{"oversize", func(*rawConn) []byte {
			return framing.AppendMaskedFrame(nil, framing.OpBinary, true, [4]byte{1, 2, 3, 4}, make([]byte, framing.DefaultMaxMessage+1))
		}, framing.StatusMessageTooBig},
		{"invalid utf8", func(*rawConn) []byte {
			return framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte{'a', 0xff, 0xfe})
		}, framing.StatusInvalidPayload},
		{"continuation without start", func(*rawConn) []byte {
			return framing.AppendMaskedFrame(nil, framing.OpContinuation, true, [4]byte{1, 2, 3, 4}, []byte("x"))
		}, framing.StatusProtocolError},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHandler()
			n := startNode(t, testConfig(), th)
			c := dialRaw(t, n)
			c.upgrade(t)
			h := th.waitOpen(t)
			c.Write(tc.send(c))
			op, p := c.readFrame(t)
			if op != framing.OpClose || closeCodeOf(p) != tc.code {
				t.Fatalf("got %v code %d, want close %d", op, closeCodeOf(p), tc.code)
			}
			c.Close() // the peer hangs up after the close frame
			ev := th.waitClose(t)
			if ev.h != h || ev.code != tc.code || !errors.Is(ev.err, ErrProtocol) {
				t.Fatalf("OnClose %+v", ev)
			}
		})
	}
}

// A peer that answers our close frame after a protocol error waits for the
// server to close the TCP connection (RFC 6455 section 7.1.1; Autobahn's
// fuzzing client reports "FAILED BY CLIENT" otherwise). CloseTimeout is long,
// so only the server ending its side can make the read below see EOF.
func TestFailedConnectionServerClosesFirst(t *testing.T) {
	m := [4]byte{5, 6, 7, 8}
	for _, tc := range []struct {
		name   string
		closed bool // the server started a close handshake before the error
	}{
		{"error in open connection", false},
		{"error after our close", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			th := newTestHandler()
			cfg := testConfig()
			cfg.CloseTimeout = time.Minute
			n := startNode(t, cfg, th)
			c := dialRaw(t, n)
			c.upgrade(t)
			h := th.waitOpen(t)
			want := framing.StatusProtocolError
			if tc.closed {
				want = framing.StatusNormal
				onLoop(n, h.Loop(), func(l *Loop) { l.Close(h, want, "") })
				if op, p := c.readFrame(t); op != framing.OpClose || closeCodeOf(p) != want {
					t.Fatalf("got %v %v, want close %d", op, p, want)
				}
			}
			bad := framing.AppendMaskedFrame(nil, framing.OpText, true, m, []byte("x"))
			bad[0] |= 0x40 // RSV2, which no extension defines
			c.Write(bad)
			if !tc.closed {
				if op, p := c.readFrame(t); op != framing.OpClose || closeCodeOf(p) != want {
					t.Fatalf("got %v %v, want close %d", op, p, want)
				}
			}
			// The close reply a client sends before waiting for the server.
			c.Write(framing.AppendCloseFrame(nil, framing.RoleClient, m, framing.StatusProtocolError, ""))
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.r.ReadByte(); err != io.EOF {
				t.Fatalf("read after the close handshake: %v, want EOF from the server", err)
			}
			c.Close()
			ev := th.waitClose(t)
			if ev.h != h || ev.code != want || !errors.Is(ev.err, ErrProtocol) {
				t.Fatalf("OnClose %+v, want %d with ErrProtocol", ev, want)
			}
		})
	}
}

// Close codes 1012-1014 are registered with IANA (RFC 6455 section 11.7) and
// sent by real peers: they are echoed like any valid code, not failed.
func TestRegisteredCloseCodesEchoed(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	for _, code := range []framing.StatusCode{1012, 1013, 1014} {
		c := dialRaw(t, n)
		c.upgrade(t)
		h := th.waitOpen(t)
		c.Write(framing.AppendCloseFrame(nil, framing.RoleClient, [4]byte{1, 2, 3, 4}, code, "later"))
		if op, p := c.readFrame(t); op != framing.OpClose || closeCodeOf(p) != code {
			t.Fatalf("close %d answered with %v code %d", code, op, closeCodeOf(p))
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.r.ReadByte(); err != io.EOF {
			t.Fatalf("close %d: read after the echo: %v, want EOF", code, err)
		}
		if ev := th.waitClose(t); ev.h != h || ev.code != code || ev.err != nil {
			t.Fatalf("close %d: OnClose %+v", code, ev)
		}
	}
}

func TestGorillaOversizeAndUTF8(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	for _, tc := range []struct {
		typ  int
		p    []byte
		code int
	}{
		{websocket.BinaryMessage, make([]byte, 5000), websocket.CloseMessageTooBig},
		{websocket.TextMessage, []byte{0xc3, 0x28}, websocket.CloseInvalidFramePayloadData},
	} {
		c := dialGorilla(t, n, "/echo", nil)
		c.WriteMessage(tc.typ, tc.p)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := c.ReadMessage()
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != tc.code {
			t.Fatalf("read: %v, want close %d", err, tc.code)
		}
	}
}

func TestPerConnMaxMessage(t *testing.T) {
	th := newTestHandler()
	th.onUpgrade = func(l *Loop, h Handle, r *framing.Request) Accept { return Accept{MaxMessage: 100 << 10, Tag: 7} }
	n := startNode(t, testConfig(), th)
	c := dialGorilla(t, n, "/big", &websocket.Dialer{WriteBufferSize: 1024, HandshakeTimeout: 5 * time.Second})
	h := th.waitOpen(t)
	onLoop(n, h.Loop(), func(l *Loop) {
		if tag, ok := l.Tag(h); !ok || tag != 7 {
			t.Errorf("tag %d %v", tag, ok)
		}
	})
	big := bytes.Repeat([]byte{7}, 90<<10)
	c.WriteMessage(websocket.BinaryMessage, big) // fragmented by the small buffer
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err := c.ReadMessage()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("read %d bytes: %v", len(p), err)
	}
	// One unfragmented frame larger than half the read buffer goes through
	// the tail buffer.
	c2 := dialGorilla(t, n, "/big", &websocket.Dialer{WriteBufferSize: 128 << 10, HandshakeTimeout: 5 * time.Second})
	c2.WriteMessage(websocket.BinaryMessage, big)
	c2.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, p, err = c2.ReadMessage()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("single frame: read %d bytes: %v", len(p), err)
	}
}

func TestHandshakeRefused(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	_, resp, err := websocket.DefaultDialer.Dial(wsURL(n, "/refuse"), nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("dial: %v, resp %v", err, resp)
	}
	// A plain HTTP request is answered 400.
	r, err := http.Get("http://" + n.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode/100 != 4 {
		t.Fatalf("plain GET: %d", r.StatusCode)
	}
	select {
	case h := <-th.opens:
		t.Fatalf("refused connection opened: %v", h)
	default:
	}
}

func TestHandshakeSlowloris(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.HandshakeTimeout = 300 * time.Millisecond
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	// One byte at a time, never finishing the head: cut at the deadline.
	closed := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := c.Read(b[:])
		closed <- err
	}()
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	req := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 1000)
	giveUp := time.After(10 * time.Second) // once: the trickle must not extend it
	for i := 0; ; i++ {
		select {
		case err := <-closed:
			if err == nil {
				t.Fatal("server sent data to a slowloris")
			}
			waitFor(t, "slot freed", 5*time.Second, func() bool { got := n.Stats().Conns; return got[0]+got[1] == 0 })
			return
		case <-ticker.C:
			c.Write([]byte{req[i%len(req)]})
		case <-giveUp:
			t.Fatal("slowloris never cut")
		}
	}
}

func TestHandshakeTooLarge(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.MaxHandshake = 512
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1000) + "\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

func TestAbruptDisconnects(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	// Upgraded, then gone without a close frame.
	c := dialRaw(t, n)
	c.upgrade(t)
	h := th.waitOpen(t)
	c.Close()
	ev := th.waitClose(t)
	if ev.h != h || ev.code != framing.StatusAbnormal || !errors.Is(ev.err, ErrAbnormal) {
		t.Fatalf("OnClose %+v", ev)
	}
	// Gone in the middle of a frame (a tail is held).
	c = dialRaw(t, n)
	c.upgrade(t)
	h = th.waitOpen(t)
	f := framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte("half a frame"))
	c.Write(f[:7])
	c.Close()
	ev = th.waitClose(t)
	if ev.h != h || ev.code != framing.StatusAbnormal {
		t.Fatalf("OnClose %+v", ev)
	}
	// Gone during the handshake: no OnOpen, no OnClose, slot freed.
	c = dialRaw(t, n)
	c.Write([]byte("GET / HTTP/1.1\r\n"))
	c.Close()
	waitFor(t, "handshake conn freed", 5*time.Second, func() bool { s := n.Stats(); return s.Closed == 3 })
	select {
	case ev := <-th.closes:
		t.Fatalf("OnClose for a connection never opened: %+v", ev)
	default:
	}
	// The node still serves.
	g := dialGorilla(t, n, "/echo", nil)
	g.WriteMessage(websocket.TextMessage, []byte("still here"))
	g.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := g.ReadMessage(); err != nil || string(p) != "still here" {
		t.Fatalf("%q %v", p, err)
	}
}

func TestStaleHandleAfterReuse(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.Loops = 1
	n := startNode(t, cfg, th)
	c := dialRaw(t, n)
	c.upgrade(t)
	old := th.waitOpen(t)
	c.Close()
	th.waitClose(t)
	c2 := dialRaw(t, n)
	c2.upgrade(t)
	cur := th.waitOpen(t)
	if cur.Index() != old.Index() || cur == old {
		t.Fatalf("slot not reused: old %x new %x", old, cur)
	}
	onLoop(n, 0, func(l *Loop) {
		for name, err := range map[string]error{
			"Write":      l.Write(old, framing.OpText, []byte("x")),
			"Send":       l.Send(old, framing.Prepare(framing.OpText, []byte("x"), false)),
			"SendLatest": l.SendLatest(old, framing.Prepare(framing.OpText, []byte("x"), false), 1),
			"Close":      l.Close(old, 1000, ""),
			"SetTag":     l.SetTag(old, 1),
		} {
			if err != ErrStale {
				t.Errorf("%s with a stale handle: %v", name, err)
			}
		}
		if _, ok := l.Tag(old); ok {
			t.Error("Tag with a stale handle succeeded")
		}
		if err := l.Write(cur, framing.OpText, []byte("to the new one")); err != nil {
			t.Errorf("Write to the new handle: %v", err)
		}
	})
	op, p := c2.readFrame(t)
	if op != framing.OpText || string(p) != "to the new one" {
		t.Fatalf("%v %q", op, p)
	}
}

// TestDeflatedInvalidUTF8Closes1007: a compressed text message is checked
// for UTF-8 after inflating, so invalid text cannot hide in a deflate stream.
func TestDeflatedInvalidUTF8Closes1007(t *testing.T) {
	th := newTestHandler()
	cfg := testConfig()
	cfg.Deflate = true
	n := startNode(t, cfg, th)
	d := &websocket.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(wsURL(n, "/echo"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("extensions %q: deflate not negotiated", ext)
	}
	c.EnableWriteCompression(true)
	// A valid compressed message first, echoed: the stream itself is fine.
	if err := c.WriteMessage(websocket.TextMessage, []byte("héllo")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "héllo" {
		t.Fatalf("echo %q %v", p, err)
	}
	if err := c.WriteMessage(websocket.TextMessage, []byte{'a', 0xc3, 0x28}); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseInvalidFramePayloadData {
		t.Fatalf("read: %v, want close 1007", err)
	}
}
