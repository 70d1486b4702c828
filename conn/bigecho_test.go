package conn

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// bigHandler is the echo test handler with a 16 MiB message limit, as
// gateway's /echo; the queue keeps its default 256 KiB bound.
func bigHandler() *testHandler {
	th := newTestHandler()
	th.onUpgrade = func(*Loop, Handle, *framing.Request) Accept { return Accept{MaxMessage: 16 << 20} }
	th.onMessage = func(l *Loop, h Handle, op framing.OpCode, p []byte) {
		_ = l.Write(h, op, p) // ErrQueueFull: closed as slow, which the tests check
	}
	return th
}

// TestEcho16MiBGorilla is Autobahn's 9.* cases against a real client: a
// message as large as the connection's limit (16 MiB, 64 times the queue
// bound) is echoed whole, as one frame or assembled from many, instead of
// being closed with 1008 "slow" because its echo does not fit the queue.
func TestEcho16MiBGorilla(t *testing.T) {
	th := bigHandler()
	n := startNode(t, testConfig(), th)
	other := 16 << 20 // the race detector makes a client's masking of 16 MiB take seconds: one 16 MiB case there
	if raceEnabled {
		other = 2 << 20
	}
	for _, tc := range []struct {
		name  string
		typ   int
		size  int
		wbuf  int // gorilla's write buffer: a message larger than it goes out in frames of this size
		chunk string
	}{
		{"text 16 MiB one frame", websocket.TextMessage, 16 << 20, 32 << 20, "the treasure lies under the old oak, près du chêne "},
		{"binary one frame", websocket.BinaryMessage, other, 32 << 20, "\x00\xff\x10"},
		{"text in 64 KiB frames", websocket.TextMessage, other / 4, 64 << 10, "κόσμε"},
	} {
		msg := []byte(strings.Repeat(tc.chunk, tc.size/len(tc.chunk)+1))
		for len(msg) > tc.size || (tc.typ == websocket.TextMessage && !framing.ValidUTF8(msg)) {
			msg = msg[:len(msg)-1]
		}
		c := dialGorilla(t, n, "/big", &websocket.Dialer{HandshakeTimeout: 5 * time.Second, WriteBufferSize: tc.wbuf})
		c.SetReadLimit(32 << 20)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if err := c.WriteMessage(tc.typ, msg); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		typ, p, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: echo: %v", tc.name, err)
		}
		if typ != tc.typ || !bytes.Equal(p, msg) {
			t.Fatalf("%s: echo differs: type %d, %d bytes of %d", tc.name, typ, len(p), len(msg))
		}
		c.Close()
		if ev := th.waitClose(t); errors.Is(ev.err, ErrSlow) {
			t.Fatalf("%s: closed as slow", tc.name)
		}
	}
	if st := n.Stats(); st.SlowCloses != 0 {
		t.Fatalf("%d slow closes", st.SlowCloses)
	}
}

// TestBigEchoSlowReader: the lone frame may exceed the byte bound, nothing
// behind it may. A client with a small receive buffer sends a 4 MiB message
// and reads nothing until the echo waits in the server's queue: it then gets
// the whole echo. A client that sends a second one without reading is closed
// with 1008 "slow" instead of having 8 MiB queued for it.
func TestBigEchoSlowReader(t *testing.T) {
	th := bigHandler()
	n := startNode(t, testConfig(), th)
	small := &websocket.Dialer{HandshakeTimeout: 5 * time.Second, WriteBufferSize: 8 << 20, NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10)
			})
			return errors.Join(err, serr)
		}}
		return d.Dial(network, addr)
	}}
	msg := bytes.Repeat([]byte{0xab}, 4<<20)
	// sendQueued dials, sends msg and waits until its echo waits in the
	// server's queue for the socket.
	sendQueued := func() (*websocket.Conn, Handle) {
		c := dialGorilla(t, n, "/big", small)
		c.SetReadLimit(32 << 20)
		h := th.waitOpen(t)
		// A small server send buffer too: kernels tuned for many sockets
		// (tcp_wmem up to 16 MiB) would otherwise take the whole echo.
		onLoop(n, h.Loop(), func(l *Loop) {
			if err := unix.SetsockoptInt(int(l.live(h).fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 64<<10); err != nil {
				t.Error(err)
			}
		})
		if err := c.WriteMessage(websocket.BinaryMessage, msg); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the echo to wait in the queue", 30*time.Second, func() bool {
			var q bool
			onLoop(n, h.Loop(), func(l *Loop) {
				s := l.live(h)
				q = s != nil && s.outq != 0 && s.flags&fArmedOut != 0
			})
			return q
		})
		return c, h
	}

	c, _ := sendQueued()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, p, err := c.ReadMessage(); err != nil || !bytes.Equal(p, msg) {
		t.Fatalf("echo: %d bytes, %v", len(p), err)
	}

	c2, h2 := sendQueued()
	if err := c2.WriteMessage(websocket.BinaryMessage, msg); err != nil {
		t.Fatal(err)
	}
	ev := th.waitClose(t)
	if ev.h != h2 || !errors.Is(ev.err, ErrSlow) || ev.code != framing.StatusPolicyViolation {
		t.Fatalf("close %+v, want the second client closed as slow", ev)
	}
	// The first client is still served.
	if err := c.WriteMessage(websocket.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.ReadMessage(); err != nil || string(p) != "still here" {
		t.Fatalf("first client after the slow close: %q %v", p, err)
	}
}
