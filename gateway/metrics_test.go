package gateway

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/framing"
)

// scrape reads /metrics as flat series.
func (tg *testGateway) scrape(t testing.TB) map[string]float64 {
	t.Helper()
	code, body := tg.adminDo(t, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	return flatSeries(parseMetrics(t, body))
}

// rawHandshake sends head on a fresh TCP connection and returns the status
// line the gateway answers.
func rawHandshake(t *testing.T, addr, head string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, _ := c.Read(b)
	line, _, _ := strings.Cut(string(b[:n]), "\r\n")
	return line
}

// Every new series counts what happened: handshakes by outcome, their
// time, closes by code, refused joins, dig and fan-out times, and the p99s
// of /v1/stats come from the same histograms.
func TestMetricsNewSeries(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxHunts = 1 })
	tg.createHunt(t, fixedHunt("h", 3))
	tg.createHunt(t, fixedHunt("other", 1))

	alice := tg.player(t, "alice")
	bob := tg.player(t, "bob")
	alice.join("h")
	bob.join("h")
	alice.send(`{"op":"join","hunt":"other"}`)
	alice.expectError("too_many_hunts")
	alice.send(`{"op":"dig","hunt":"h","x":0,"y":0}`)
	alice.expect("dug")
	bob.until("update") // the claimed push: one fan-out
	alice.send(`{"op":"dig","hunt":"h","x":5,"y":5}`)
	alice.until("dug")

	if st := tg.dialStatus(t, "/ws", nil); st != 401 {
		t.Fatalf("no token: %d", st)
	}
	if st := tg.dialStatus(t, "/nowhere", nil); st != 404 {
		t.Fatalf("unknown path: %d", st)
	}
	addr := tg.Addr().String()
	if line := rawHandshake(t, addr, "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.Contains(line, " 400 ") {
		t.Fatalf("not an upgrade: %q", line)
	}
	big := "GET /ws HTTP/1.1\r\nHost: x\r\nX-Pad: " + strings.Repeat("a", 5000) + "\r\n\r\n"
	if line := rawHandshake(t, addr, big); !strings.Contains(line, " 431 ") {
		t.Fatalf("large head: %q", line)
	}
	carol := tg.player(t, "carol")
	_ = carol.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000+0, ""), time.Now().Add(time.Second))
	_ = alice.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Second))

	want := map[string]float64{
		`huntgate_handshakes_total{code="101"}`:                    3,
		`huntgate_handshakes_total{code="401"}`:                    1,
		`huntgate_handshakes_total{code="404"}`:                    1,
		`huntgate_handshakes_total{code="400"}`:                    1,
		`huntgate_handshakes_total{code="431"}`:                    1,
		`huntgate_handshake_seconds_count`:                         7,
		`huntgate_closes_total{code="1000"}`:                       1,
		`huntgate_closes_total{code="other"}`:                      1,
		`huntgate_joins_refused_total{code="too_many_hunts"}`:      1,
		`huntgate_dig_seconds_count`:                               2,
		`huntgate_fanout_seconds_count`:                            2, // claimed and leaderboard
		`huntgate_joins_refused_total{code="forbidden"}`:           0,
		`huntgate_handshakes_total{code="none"}`:                   0,
		`huntgate_errors_total{code="too_many_hunts"}`:             1,
		`huntgate_requests_total{op="dig"}`:                        2,
		`huntgate_loop_connections{loop="0"}` + "+" + `{loop="1"}`: 1,
	}
	var got map[string]float64
	waitFor(t, "the metrics", func() bool {
		got = tg.scrape(t)
		got[`huntgate_loop_connections{loop="0"}+{loop="1"}`] = got[`huntgate_loop_connections{loop="0"}`] + got[`huntgate_loop_connections{loop="1"}`]
		for k, v := range want {
			if got[k] != v {
				return false
			}
		}
		return true
	})
	for _, k := range []string{`huntgate_dig_seconds_sum`, `huntgate_fanout_seconds_sum`, `huntgate_handshake_seconds_sum`} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
	if _, ok := got[`huntgate_queue_bytes{loop="1"}`]; !ok {
		t.Error("no huntgate_queue_bytes")
	}
	for _, k := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if _, ok := got[k]; !ok {
			t.Errorf("no %s", k)
		}
	}

	code, body := tg.adminDo(t, "GET", "/v1/stats", "", "")
	var st struct {
		LatencyMs map[string]float64 `json:"latency_ms"`
		Loops     []LoopStats        `json:"loops"`
	}
	if code != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("stats: %d %s", code, body)
	}
	for _, k := range []string{"dig_p99", "fanout_p99", "handshake_p99"} {
		if v, ok := st.LatencyMs[k]; !ok || v <= 0 || v > 10_000 {
			t.Errorf("latency_ms.%s = %v (present %v), want in (0, 10000]", k, v, ok)
		}
	}
	if len(st.Loops) != 2 || st.Loops[0].QueueBytes < 0 {
		t.Errorf("loops %+v", st.Loops)
	}
}

// Output stuck behind a reader that does not read shows in the queued
// bytes until it is written.
func TestMetricsQueueBytes(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.QueueBytes = 64 << 20; c.QueueFrames = 1 << 20 })
	tg.createHunt(t, fixedHunt("h", 1))
	// A small receive buffer, so that the socket buffers fill soon and
	// what is past them waits in the gateway's queue (not below the 64 KiB
	// loopback MSS: the receiver would then never announce an open window).
	d := websocket.Dialer{NetDial: func(network, addr string) (net.Conn, error) {
		c, err := net.Dial(network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	wc, _, err := d.Dial(tg.ws+"/ws?player=slow", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer wc.Close()
	slow := &client{t: t, c: wc}
	slow.join("h")
	event := `{"pad":"` + strings.Repeat("x", 60000) + `"}`
	queued := func() float64 {
		s := tg.scrape(t)
		return s[`huntgate_queue_bytes{loop="0"}`] + s[`huntgate_queue_bytes{loop="1"}`]
	}
	for i := 0; i%10 != 0 || queued() < 256<<10; i++ {
		if i > 400 {
			t.Fatal("nothing queued after 24 MB of events")
		}
		if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, event); code != 200 {
			t.Fatalf("event: %d %s", code, body)
		}
	}
	// Reading everything drains the queue.
	_ = slow.c.SetReadDeadline(time.Time{})
	go func() {
		for {
			if _, _, err := slow.c.ReadMessage(); err != nil {
				return
			}
		}
	}()
	waitFor(t, "the queue to drain", func() bool { return queued() == 0 })
}

// The observations made on the loops cost no allocation.
func TestMetricsHotPathAllocs(t *testing.T) {
	var m metrics
	newMetrics(&m, statsCollector{})
	start := time.Now()
	e := errTooManyHunts
	if n := testing.AllocsPerRun(1000, func() {
		observeSince(m.dig, start)
		m.fanout.Observe(0.002)
		m.countHandshake(101, time.Millisecond)
		m.countHandshake(0, 0)
		m.countClose(framing.StatusNormal)
		m.countClose(4000)
		m.countJoinRefused(e)
		m.countError(e)
	}); n != 0 {
		t.Fatalf("%v allocations per observation round, want 0", n)
	}
}

// BenchmarkMetricsHotPath is one histogram observation and one labelled
// counter increment, as a loop makes them.
func BenchmarkMetricsHotPath(b *testing.B) {
	var m metrics
	newMetrics(&m, statsCollector{})
	b.Run("histogram", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m.dig.Observe(float64(i&1023) * 1e-5)
		}
	})
	b.Run("counter", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.countClose(framing.StatusNormal)
		}
	})
	b.Run("histogram-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				m.fanout.Observe(float64(i&1023) * 1e-5)
			}
		})
	})
}

// quantile interpolates inside the bucket the rank falls in, over the
// difference between two snapshots.
func TestQuantileWindow(t *testing.T) {
	bounds := []float64{1, 2, 4}
	// cumulative counts then total: 100 observations, 50 <= 1, 90 <= 2, 100 <= 4
	now := []uint64{50, 90, 100, 100}
	if got := quantile(0.99, bounds, now, nil); got < 3.79 || got > 3.81 {
		t.Errorf("p99 = %v, want 3.8", got)
	}
	// Only what came after old counts: 50 new, all in (2, 4].
	old := []uint64{50, 50, 50, 50}
	now = []uint64{50, 50, 100, 100}
	if got := quantile(0.5, bounds, now, old); got != 3 {
		t.Errorf("p50 of the window = %v, want 3", got)
	}
	if got := quantile(0.99, bounds, old, old); got != 0 {
		t.Errorf("empty window: %v", got)
	}
	// Past the last bound: the last bound.
	if got := quantile(0.99, bounds, []uint64{0, 0, 0, 10}, nil); got != 4 {
		t.Errorf("overflow: %v", got)
	}
}
