package conn

import (
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// With a P more than it runs loops, a busy loop blocks in raw waits (keeping
// its P), still serves its connections and lets a stop of the world for
// the garbage collector through; with no spare P it never waits raw.
func TestRawWaits(t *testing.T) {
	for _, spare := range []bool{true, false} {
		procs := 1
		if spare {
			procs = 2
		}
		old := runtime.GOMAXPROCS(procs)
		cfg := testConfig()
		cfg.Loops = 1
		n := startNode(t, cfg, newTestHandler())
		c, _, err := websocket.DefaultDialer.Dial(wsURL(n, "/echo"), nil)
		if err != nil {
			runtime.GOMAXPROCS(old)
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			if err := c.WriteMessage(websocket.TextMessage, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, p, err := c.ReadMessage(); err != nil || string(p) != "ping" {
				t.Fatalf("echo %d: %q %v", i, p, err)
			}
			if i%10 == 0 {
				runtime.GC() // stops the world while the loop may be in a raw wait
			}
		}
		c.Close()
		n.Close()
		runtime.GOMAXPROCS(old)
		raw := n.loops[0].rawWaits
		if spare && raw == 0 {
			t.Fatal("no raw wait with a spare P")
		}
		if !spare && raw != 0 {
			t.Fatalf("%d raw waits without a spare P", raw)
		}
	}
}

func TestRawTimeout(t *testing.T) {
	for _, c := range [][2]int{{-1, rawWaitMs}, {1, 1}, {rawWaitMs, rawWaitMs}, {rawWaitMs + 1, rawWaitMs}, {1 << 30, rawWaitMs}} {
		if got := rawTimeout(c[0]); got != c[1] {
			t.Fatalf("rawTimeout(%d) = %d, want %d", c[0], got, c[1])
		}
	}
}
