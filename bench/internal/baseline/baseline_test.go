package baseline

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// servers starts both baselines on loopback and returns their host:port.
func servers(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: NewGorilla(zerolog.Nop())}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	out["gorilla"] = ln.Addr().String()

	np, err := NewNetpoll(zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	nln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = np.Serve(nln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = np.Shutdown(ctx)
	})
	out["netpoll"] = nln.Addr().String()
	return out
}

func dial(t *testing.T, addr, path string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial("ws://"+addr+path, nil)
	if err != nil {
		t.Fatalf("dial %s%s: %v", addr, path, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c
}

func TestEchoAndFanout(t *testing.T) {
	for name, addr := range servers(t) {
		t.Run(name, func(t *testing.T) {
			e := dial(t, addr, "/echo")
			for _, m := range []struct {
				mt int
				p  []byte
			}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, bytes.Repeat([]byte{0, 1, 2}, 3000)}} {
				if err := e.WriteMessage(m.mt, m.p); err != nil {
					t.Fatal(err)
				}
				mt, p, err := e.ReadMessage()
				if err != nil {
					t.Fatal(err)
				}
				if mt != m.mt || !bytes.Equal(p, m.p) {
					t.Fatalf("echo: got type %d len %d, want type %d len %d", mt, len(p), m.mt, len(m.p))
				}
			}

			var fs []*websocket.Conn
			for i := 0; i < 3; i++ {
				fs = append(fs, dial(t, addr, "/fanout"))
			}
			got := make(chan int, 1024)
			for i, c := range fs {
				go func() {
					for {
						_, p, err := c.ReadMessage()
						if err != nil {
							return
						}
						if string(p) == "all" {
							got <- i
						} else {
							got <- -1 - i
						}
					}
				}()
			}
			// The hub registers a connection only after the upgrade response is
			// out, so probe until every connection has seen a probe.
			seen := map[int]bool{}
			deadline := time.After(5 * time.Second)
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			for len(seen) < len(fs) {
				select {
				case <-tick.C:
					if err := fs[0].WriteMessage(websocket.TextMessage, []byte("probe")); err != nil {
						t.Fatal(err)
					}
				case i := <-got:
					if i < 0 {
						seen[-1-i] = true
					}
				case <-deadline:
					t.Fatalf("only %d of %d fanout conns registered", len(seen), len(fs))
				}
			}
			tick.Stop()
			if err := fs[1].WriteMessage(websocket.BinaryMessage, []byte("all")); err != nil {
				t.Fatal(err)
			}
			all := map[int]bool{}
			for len(all) < len(fs) {
				select {
				case i := <-got:
					if i >= 0 {
						all[i] = true
					}
				case <-deadline:
					t.Fatalf("fanout reached %d of %d conns", len(all), len(fs))
				}
			}
		})
	}
}
