package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// dialSmallBuffer connects a player whose socket has a tiny receive buffer,
// so that a client that stops reading backs up into the gateway quickly.
func (tg *testGateway) dialSmallBuffer(t *testing.T, player string) *client {
	t.Helper()
	d := websocket.Dialer{
		NetDial: func(network, addr string) (net.Conn, error) {
			nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				err := rc.Control(func(fd uintptr) {
					serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
				})
				return errors.Join(err, serr)
			}}
			return nd.Dial(network, addr)
		},
	}
	c, _, err := d.Dial(tg.ws+"/ws?player="+player, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{t: t, c: c}
}

// A player that stops reading while 1,000 updates are published is closed
// with 1008 "slow"; everyone else gets every update, in order.
func TestSlowReaderClosedOthersServed(t *testing.T) {
	tg := startGateway(t, func(c *Config) {
		c.QueueBytes = 256 << 10
		c.WriteTimeout = 2 * time.Second
	})
	tg.createHunt(t, fixedHunt("h", 1))
	slow := tg.dialSmallBuffer(t, "slow")
	slow.join("h")
	const readers, events = 3, 1000
	var fast []*client
	for i := 0; i < readers; i++ {
		c := tg.player(t, fmt.Sprintf("fast%d", i))
		c.join("h")
		fast = append(fast, c)
	}
	errs := make(chan error, readers)
	var wg sync.WaitGroup
	progress := make([]atomic.Uint64, readers)
	for i, c := range fast {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer progress[i].Store(events) // on error too, so the publisher stops waiting
			for want := uint64(1); want <= events; want++ {
				m, err := c.tryRead(20 * time.Second)
				if err != nil {
					errs <- err
					return
				}
				if m.str("kind") != "event" || uint64(m.num("seq")) != want {
					errs <- fmt.Errorf("got %v, want event seq %d", m, want)
					return
				}
				progress[i].Store(want)
			}
		}()
	}
	data := []byte(`{"pad":"` + strings.Repeat("x", 8000) + `"}`)
	// Published in bursts of 16 (128 KB, within a reader's queue bound), each
	// once the readers have caught up: a rate the gateway can serve, while
	// the slow player's backlog keeps growing.
	for i := 1; i <= events; i++ {
		if _, err := tg.engine.Publish(context.Background(), "h", data); err != nil {
			t.Fatal(err)
		}
		if i%16 == 0 || i == events {
			waitFor(t, "readers caught up", func() bool {
				for k := range progress {
					if progress[k].Load() < uint64(i) {
						return false
					}
				}
				return true
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	waitFor(t, "slow close", func() bool { return tg.node.Stats().SlowCloses >= 1 })
	// What the slow player does read ends with 1008 "slow" (or a cut socket).
	got := 0
	for {
		_ = slow.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, b, err := slow.c.ReadMessage()
		if err == nil {
			if !bytes.Contains(b, []byte(`"kind":"event"`)) {
				t.Fatalf("slow player got %s", b)
			}
			got++
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && (ce.Code != websocket.ClosePolicyViolation || ce.Text != "slow") {
			t.Fatalf("slow player closed with %v, want 1008 slow", ce)
		}
		break
	}
	if got >= events {
		t.Fatalf("slow player got all %d updates: it was never slow", got)
	}
	t.Logf("slow player read %d of %d before the close", got, events)
	waitFor(t, "slow player gone", func() bool { return tg.hunts.getString("h").players.Load() == readers })
}

// A leaderboard update still queued is replaced by a newer one; reliable
// updates are never dropped. Checked through a player whose socket is full:
// every claimed arrives in order, leaderboards never go back in seq nor
// arrive before the claimed they reflect, and the latest one (the final
// scores) is never lost. How many older leaderboards
// were replaced depends on the kernel's buffers, so it is only logged.
func TestLeaderboardLatestValue(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.QueueBytes = 4 << 20; c.QueueFrames = 100000 })
	tg.createHunt(t, fixedHunt("h", 60))
	slow := tg.dialSmallBuffer(t, "slow")
	slow.join("h")
	digger := tg.player(t, "digger")
	digger.join("h")
	for i := 0; i < 60; i++ {
		digger.send(`{"op":"dig","hunt":"h","x":%d,"y":0}`, i)
		digger.until("dug")
	}
	claimed, boards := 0, 0
	var lastSeq, boardSeq float64
	for claimed < 60 || boardSeq < 60 {
		m := slow.read()
		switch m.str("kind") {
		case "claimed":
			claimed++
			if m.num("seq") != lastSeq+1 {
				t.Fatalf("claimed seq %v after %v", m["seq"], lastSeq)
			}
			lastSeq = m.num("seq")
		case "leaderboard":
			boards++
			if m.num("seq") < boardSeq {
				t.Fatalf("leaderboard seq %v after %v", m["seq"], boardSeq)
			}
			if m.num("seq") > lastSeq {
				t.Fatalf("leaderboard seq %v ahead of the claimed it reflects (last claimed %v)", m["seq"], lastSeq)
			}
			boardSeq = m.num("seq")
			if boardSeq == 60 {
				top, _ := m["top"].([]any)
				if len(top) != 1 || top[0].(map[string]any)["score"] != float64(60*61/2) {
					t.Fatalf("last leaderboard %v, want digger with %d", m, 60*61/2)
				}
			}
		}
	}
	if boards > 60 {
		t.Fatalf("%d leaderboard updates for 60 claims", boards)
	}
	t.Logf("slow player: %d claimed, %d leaderboard updates of 60", claimed, boards)
}

func TestEchoEndpoint(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.dial(t, "/echo")
	big := bytes.Repeat([]byte("0123456789"), 200000) // 2 MB
	for _, m := range []struct {
		op   int
		data []byte
	}{{websocket.TextMessage, []byte("hello")}, {websocket.BinaryMessage, []byte{0, 1, 2, 255}}, {websocket.BinaryMessage, big}, {websocket.TextMessage, nil}} {
		if err := c.c.WriteMessage(m.op, m.data); err != nil {
			t.Fatal(err)
		}
		_ = c.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		op, b, err := c.c.ReadMessage()
		if err != nil || op != m.op || !bytes.Equal(b, m.data) {
			t.Fatalf("echo: op %d len %d err %v, want op %d len %d", op, len(b), err, m.op, len(m.data))
		}
	}
	// With permessage-deflate negotiated.
	d := websocket.Dialer{EnableCompression: true}
	dc, resp, err := d.Dial(tg.ws+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		t.Fatalf("deflate not negotiated: %q", ext)
	}
	dc.EnableWriteCompression(true)
	payload := bytes.Repeat([]byte("compressible "), 5000)
	if err := dc.WriteMessage(websocket.TextMessage, payload); err != nil {
		t.Fatal(err)
	}
	_ = dc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, b, err := dc.ReadMessage(); err != nil || !bytes.Equal(b, payload) {
		t.Fatalf("deflate echo: %d bytes, %v", len(b), err)
	}
}

func TestFanoutEndpoint(t *testing.T) {
	tg := startGateway(t, nil)
	var cs []*client
	for i := 0; i < 6; i++ {
		cs = append(cs, tg.dial(t, "/fanout"))
	}
	waitFor(t, "fanout conns open", func() bool { return tg.m.conns.Load() == 6 })
	for round := 0; round < 3; round++ {
		sender := cs[round]
		want := fmt.Sprintf("round %d", round)
		if err := sender.c.WriteMessage(websocket.TextMessage, []byte(want)); err != nil {
			t.Fatal(err)
		}
		for i, c := range cs {
			_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, b, err := c.c.ReadMessage()
			if err != nil || string(b) != want {
				t.Fatalf("client %d: %q %v, want %q", i, b, err, want)
			}
		}
	}
	// A closed client leaves the list; the rest keep receiving.
	cs[0].c.Close()
	waitFor(t, "fanout conn closed", func() bool { return tg.m.conns.Load() == 5 })
	if err := cs[1].c.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs[1:] {
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		op, b, err := c.c.ReadMessage()
		if err != nil || op != websocket.BinaryMessage || !bytes.Equal(b, []byte{1, 2, 3}) {
			t.Fatalf("after close: %d %v %v", op, b, err)
		}
	}
}

// Shutdown sends reconnect notices, then closes with 1001; readiness is false
// meanwhile and new upgrades are refused.
func TestShutdownDrains(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.DrainWindow = 300 * time.Millisecond })
	tg.createHunt(t, fixedHunt("h", 1))
	var cs []*client
	for i := 0; i < 4; i++ {
		c := tg.player(t, fmt.Sprintf("p%d", i))
		c.join("h")
		cs = append(cs, c)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- tg.Shutdown(ctx)
	}()
	afters := map[float64]bool{}
	for _, c := range cs {
		m := c.expect("reconnect")
		if m.num("after_ms") < 0 || m.num("after_ms") > 300 {
			t.Fatalf("reconnect %v", m)
		}
		afters[m.num("after_ms")] = true
		if ce := c.expectClose(); ce.Code != websocket.CloseGoingAway {
			t.Fatalf("close %v, want 1001", ce)
		}
	}
	if len(afters) < 2 {
		t.Fatalf("reconnects not staggered: %v", afters)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !tg.draining.Load() {
		t.Fatal("not draining after shutdown")
	}
}

// Many players across both loops all get every update of their hunt.
func TestManyPlayersAllLoops(t *testing.T) {
	n := 2000
	if testing.Short() {
		n = 200
	}
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("big", 1))
	cs := make([]*client, n)
	for i := range cs {
		cs[i] = tg.player(t, fmt.Sprintf("p%d", i))
		cs[i].sendRaw(`{"op":"join","hunt":"big"}`)
	}
	for _, c := range cs {
		c.expect("joined")
	}
	st := tg.Stats(context.Background())
	if st.Connections.Total != int64(n) || st.Connections.Loops[0] == 0 || st.Connections.Loops[1] == 0 || st.Hunts["big"].Players != n {
		t.Fatalf("stats: %+v", st.Connections)
	}
	const events = 5
	for i := 0; i < events; i++ {
		if _, err := tg.engine.Publish(context.Background(), "big", []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cs {
		for i := 0; i < events; i++ {
			if m := c.expect("update"); m.num("seq") != float64(i+1) || m.num("data") != float64(i) {
				t.Fatalf("got %v, want seq %d", m, i+1)
			}
		}
	}
	if got := tg.m.deliveries.Load(); got != int64(n*events) {
		t.Fatalf("deliveries %d, want %d", got, n*events)
	}
}
