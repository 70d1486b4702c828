package conn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/framing"
)

// closeEvent records one OnClose.
type closeEvent struct {
	h    Handle
	code framing.StatusCode
	err  error
}

// testHandler echoes every message. A text message "close:<code>" makes the
// server start a close handshake with that code instead.
type testHandler struct {
	opens  chan Handle
	closes chan closeEvent
	msgs   chan string // copies of messages, if non-nil

	mu        sync.Mutex
	onUpgrade func(l *Loop, h Handle, r *framing.Request) Accept
	onMessage func(l *Loop, h Handle, op framing.OpCode, p []byte) // replaces echo
}

func newTestHandler() *testHandler {
	return &testHandler{opens: make(chan Handle, 20000), closes: make(chan closeEvent, 20000)}
}

func (th *testHandler) OnUpgrade(l *Loop, h Handle, r *framing.Request) Accept {
	th.mu.Lock()
	f := th.onUpgrade
	th.mu.Unlock()
	if f != nil {
		return f(l, h, r)
	}
	if bytes.Equal(r.Path, []byte("/refuse")) {
		return Accept{Status: http.StatusUnauthorized}
	}
	return Accept{Deflate: true}
}

func (th *testHandler) OnOpen(l *Loop, h Handle) { th.opens <- h }

func (th *testHandler) OnMessage(l *Loop, h Handle, op framing.OpCode, p []byte) {
	th.mu.Lock()
	f := th.onMessage
	th.mu.Unlock()
	if th.msgs != nil {
		th.msgs <- string(p)
	}
	if f != nil {
		f(l, h, op, p)
		return
	}
	if op == framing.OpText && bytes.HasPrefix(p, []byte("close:")) {
		code, _ := strconv.Atoi(string(p[6:]))
		if err := l.Close(h, framing.StatusCode(code), "bye"); err != nil {
			panic(err)
		}
		return
	}
	if err := l.Write(h, op, p); err != nil {
		panic(err)
	}
}

func (th *testHandler) OnClose(l *Loop, h Handle, code framing.StatusCode, err error) {
	th.closes <- closeEvent{h, code, err}
}

// waitClose waits for the next OnClose.
func (th *testHandler) waitClose(t *testing.T) closeEvent {
	t.Helper()
	select {
	case ev := <-th.closes:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose within 10s")
	}
	return closeEvent{}
}

func (th *testHandler) waitOpen(t *testing.T) Handle {
	t.Helper()
	select {
	case h := <-th.opens:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("no OnOpen within 10s")
	}
	return 0
}

func testConfig() Config {
	return Config{Addr: "127.0.0.1:0", Loops: 2, Logger: zerolog.Nop()}
}

func startNode(t testing.TB, cfg Config, h Handler) *Node {
	t.Helper()
	n, err := NewNode(cfg, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func wsURL(n *Node, path string) string { return "ws://" + n.Addr().String() + path }

// onLoop runs fn on loop id and waits for it.
func onLoop(n *Node, id int, fn func(l *Loop)) {
	done := make(chan struct{})
	n.Post(id, func(l *Loop) { fn(l); close(done) })
	<-done
}

// rawConn is a hand-driven client for what real libraries refuse to send.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, n *Node) *rawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", n.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

// upgrade sends a minimal valid request and reads the 101.
func (c *rawConn) upgrade(t *testing.T) {
	t.Helper()
	req := "GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d", resp.StatusCode)
	}
}

// readFrame reads one server frame.
func (c *rawConn) readFrame(t *testing.T) (framing.OpCode, []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.r, h[:]); err != nil {
		t.Fatalf("reading frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var e [2]byte
		io.ReadFull(c.r, e[:])
		n = int(binary.BigEndian.Uint16(e[:]))
	case 127:
		var e [8]byte
		io.ReadFull(c.r, e[:])
		n = int(binary.BigEndian.Uint64(e[:]))
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.r, p); err != nil {
		t.Fatalf("reading payload: %v", err)
	}
	return framing.OpCode(h[0] & 0xf), p
}

func closeCodeOf(p []byte) framing.StatusCode {
	if len(p) < 2 {
		return framing.StatusNoStatus
	}
	return framing.StatusCode(binary.BigEndian.Uint16(p))
}

// waitFor polls cond until it holds or the deadline passes; only for facts
// no event signals.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childProc is this test binary run again as a helper process (one test,
// enabled by an environment variable) that answers request lines on stdin
// with reply lines on stdout.
type childProc struct {
	tb  testing.TB
	in  io.WriteCloser
	out *bufio.Reader
}

// startChild runs the test named run in a child process with env set to
// "1"; the child's stderr goes to stderr (nil discards it). The child ends
// when its stdin closes, at cleanup.
func startChild(tb testing.TB, run, env string, stderr io.Writer) *childProc {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run", "^"+run+"$")
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); cmd.Wait() })
	return &childProc{tb: tb, in: stdin, out: bufio.NewReader(stdout)}
}

// line returns the fields after prefix of the child's next line that starts
// with prefix.
func (c *childProc) line(prefix string) []string {
	c.tb.Helper()
	for {
		s, err := c.out.ReadString('\n')
		if err != nil {
			c.tb.Fatalf("child: %v", err)
		}
		if strings.HasPrefix(s, prefix) {
			return strings.Fields(s)[1:]
		}
	}
}

// ask sends the request line req and returns the fields of the reply line
// with prefix.
func (c *childProc) ask(req, prefix string) []string {
	c.tb.Helper()
	if _, err := io.WriteString(c.in, req+"\n"); err != nil {
		c.tb.Fatalf("child: %v", err)
	}
	return c.line(prefix)
}

// queuedItems returns the unsent items of a queue with its runs of the
// broadcast log expanded into an item per frame (holes stay as empty items).
func queuedItems(l *Loop, q *outQueue) []qitem {
	var out []qitem
	for _, it := range q.items[q.head:] {
		if !it.run {
			out = append(out, it)
			continue
		}
		for _, e := range l.logRange(it.key, it.n) {
			out = append(out, qitem{b: e.bytes()})
		}
	}
	return out
}
