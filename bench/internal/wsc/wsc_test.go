package wsc

import (
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/huntgate/huntgate/bench/internal/baseline"
	"github.com/huntgate/huntgate/framing"
	"github.com/rs/zerolog"
)

// recorder is a Handler that reports events on channels.
type recorder struct {
	client Client
	open   chan Handle
	msgs   chan string
	closed chan framing.StatusCode
}

func (r *recorder) OnOpen(l Loop, h Handle) {
	if tag, ok := l.Tag(h); !ok || tag != 7 {
		r.msgs <- "bad tag"
	}
	r.open <- h
	_ = l.Write(h, framing.OpText, []byte("hello"))
}

func (r *recorder) OnMessage(l Loop, h Handle, op framing.OpCode, p []byte) {
	r.msgs <- string(p)
	// A timer on the loop, then the close handshake from there.
	l.After(time.Millisecond, func(l Loop) { _ = l.Close(h, framing.StatusNormal, "") })
}

func (r *recorder) OnClose(l Loop, h Handle, code framing.StatusCode, err error) { r.closed <- code }

func TestTransports(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: baseline.NewGorilla(zerolog.Nop())}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	for _, kind := range []string{KindConn, KindGorilla} {
		t.Run(kind, func(t *testing.T) {
			r := &recorder{open: make(chan Handle, 2), msgs: make(chan string, 4), closed: make(chan framing.StatusCode, 2)}
			var c Client
			if kind == KindConn {
				c, err = NewConn(1, r, zerolog.Nop(), 0, Timeouts{})
				if err != nil {
					t.Fatal(err)
				}
			} else {
				c = NewGorilla(1, r)
			}
			defer c.Close()
			if err := c.Dial(DialOptions{Addr: ln.Addr().String(), LocalAddr: "127.0.0.3", Path: "/echo", Tag: 7, Loop: 0}); err != nil {
				t.Fatal(err)
			}
			timeout := time.After(5 * time.Second)
			select {
			case <-r.open:
			case code := <-r.closed:
				t.Fatalf("dial failed: %d", code)
			case <-timeout:
				t.Fatal("no open")
			}
			select {
			case m := <-r.msgs:
				if m != "hello" {
					t.Fatalf("echo %q", m)
				}
			case <-timeout:
				t.Fatal("no echo")
			}
			select {
			case code := <-r.closed:
				if code != framing.StatusNormal {
					t.Fatalf("close code %d", code)
				}
			case <-timeout:
				t.Fatal("no close")
			}
			// A dial to a closed port fails with 1006 and no OnOpen.
			dead, _ := net.Listen("tcp", "127.0.0.1:0")
			addr := dead.Addr().String()
			dead.Close()
			if err := c.Dial(DialOptions{Addr: addr, Path: "/echo", Tag: 7, Loop: -1}); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-r.closed:
				if code != framing.StatusAbnormal {
					t.Fatalf("failed dial code %d", code)
				}
			case <-r.open:
				t.Fatal("opened a dead port")
			case <-time.After(5 * time.Second):
				t.Fatal("failed dial not reported")
			}
		})
	}
}
