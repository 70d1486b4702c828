package conn

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

func TestFramesPipelinedWithHandshake(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialRaw(t, n)
	req := "GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	b := []byte(req)
	b = framing.AppendMaskedFrame(b, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte("first"))
	b = framing.AppendMaskedFrame(b, framing.OpText, true, [4]byte{1, 2, 3, 4}, []byte("second, cut"))
	c.Write(b[:len(b)-3]) // the second frame is incomplete: it becomes a tail
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := c.r.ReadString('\n')
	if err != nil || !strings.Contains(line, "101") {
		t.Fatalf("status line %q %v", line, err)
	}
	for line != "\r\n" {
		if line, err = c.r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
	}
	if op, p := c.readFrame(t); op != framing.OpText || string(p) != "first" {
		t.Fatalf("%v %q", op, p)
	}
	c.Write(b[len(b)-3:])
	if op, p := c.readFrame(t); op != framing.OpText || string(p) != "second, cut" {
		t.Fatalf("%v %q", op, p)
	}
}

func TestPauseAcceptClosesListeners(t *testing.T) {
	th := newTestHandler()
	n := startNode(t, testConfig(), th)
	c := dialRaw(t, n)
	c.upgrade(t)
	th.waitOpen(t)
	n.PauseAccept(true)
	waitFor(t, "listeners closed", 5*time.Second, func() bool {
		cc, err := net.DialTimeout("tcp", n.Addr().String(), time.Second)
		if err == nil {
			cc.Close()
		}
		return err != nil
	})
	// Established connections are unaffected.
	c.Write(framing.AppendMaskedFrame(nil, framing.OpText, true, [4]byte{}, []byte("still")))
	if op, p := c.readFrame(t); op != framing.OpText || string(p) != "still" {
		t.Fatalf("%v %q", op, p)
	}
	n.PauseAccept(false)
	waitFor(t, "listeners reopened", 5*time.Second, func() bool {
		cc, err := net.DialTimeout("tcp", n.Addr().String(), time.Second)
		if err == nil {
			cc.Close()
		}
		return err == nil
	})
	c2 := dialRaw(t, n)
	c2.upgrade(t)
	th.waitOpen(t)
}

// TestEMFILEChild is the server half of TestAcceptEMFILEDoesNotSpin.
func TestEMFILEChild(t *testing.T) {
	if os.Getenv("HUNTGATE_CONN_EMFILE_CHILD") != "1" {
		t.Skip("server half of TestAcceptEMFILEDoesNotSpin")
	}
	n, err := NewNode(Config{Addr: "127.0.0.1:0", Loops: 1, MaxConns: 1 << 20, Logger: zerolog.Nop()}, &nopHandler{})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	// Leave room for 3 more fds only.
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	ents, _ := os.ReadDir("/proc/self/fd")
	rl.Cur = uint64(len(ents) + 3)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("ADDR %s\n", n.Addr())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		st := n.Stats()
		fmt.Printf("STAT %d %d\n", st.Accepted, n.loops[0].stats.passes.Load())
	}
}

func TestAcceptEMFILEDoesNotSpin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	child := startChild(t, "TestEMFILEChild", "HUNTGATE_CONN_EMFILE_CHILD", nil)
	addr := child.line("ADDR")[0]
	stat := func() (accepted, passes int64) {
		f := child.ask("s", "STAT")
		accepted, _ = strconv.ParseInt(f[0], 10, 64)
		passes, _ = strconv.ParseInt(f[1], 10, 64)
		return
	}
	// More connections than the child has fds for: the backlog keeps the
	// rest, and the listener stays readable while accept fails.
	for i := 0; i < 10; i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The child's last free fds may be taken one backoff after another, so
	// the count settles over a few backoff periods: wait until it holds
	// still for 100 ms (20 backoffs) before measuring.
	var settled int64 = -1
	waitFor(t, "child accepted what it could", 10*time.Second, func() bool {
		a, _ := stat()
		if a >= 3 && a == settled {
			return true
		}
		settled = a
		time.Sleep(100 * time.Millisecond) // the settling window, not synchronisation
		return false
	})
	a0, p0 := stat()
	start := time.Now()
	time.Sleep(500 * time.Millisecond) // a spinning loop shows in the pass count over this window
	a1, p1 := stat()
	el := time.Since(start)
	// Backing off 5 ms, a loop makes ~200 passes a second plus the stat
	// requests; a spinning one makes hundreds of thousands.
	if rate := float64(p1-p0) / el.Seconds(); rate > 5000 {
		t.Fatalf("loop made %.0f passes/s while out of fds: spinning", rate)
	}
	if a1 != a0 {
		t.Fatalf("accepted %d -> %d with no fds left", a0, a1)
	}
	t.Logf("accepted %d, %d passes in %v while out of fds", a1, p1-p0, el)
}
