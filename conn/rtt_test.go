package conn

import (
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/framing"
)

// rttClient sends 8-byte timestamps and records the round trip of each echo.
type rttClient struct {
	nopHandler
	base    time.Time
	left    []int // per loop: round trips still to start
	samples [][]time.Duration
	opens   chan Handle
	mu      sync.Mutex
	pending int
	done    chan struct{}
}

func (c *rttClient) OnOpen(l *Loop, h Handle) { c.opens <- h }

func (c *rttClient) send(l *Loop, h Handle) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(time.Since(c.base)))
	l.Write(h, framing.OpBinary, b[:])
}

func (c *rttClient) OnMessage(l *Loop, h Handle, op framing.OpCode, p []byte) {
	sent := time.Duration(binary.LittleEndian.Uint64(p))
	c.samples[l.ID()] = append(c.samples[l.ID()], time.Since(c.base)-sent)
	if c.left[l.ID()] > 0 {
		c.left[l.ID()]--
		c.send(l, h)
		return
	}
	c.mu.Lock()
	c.pending--
	if c.pending == 0 {
		close(c.done)
	}
	c.mu.Unlock()
}

// BenchmarkEchoRTT compares the echo round trip with and without pinning the
// server loops: 100 connections, each with one message in flight, 20,000
// round trips in all. Client and server share the machine, as the load
// generator does. Run: go test -run '^$' -bench EchoRTT -benchtime 1x ./conn
func BenchmarkEchoRTT(b *testing.B) {
	for _, pin := range []bool{false, true} {
		name := "unpinned"
		if pin {
			name = "pinned"
		}
		b.Run(name, func(b *testing.B) {
			cfg := testConfig()
			cfg.Pin = pin
			srv := startNode(b, cfg, &echoBenchHandler{})
			const conns, total = 100, 20000
			cc := &rttClient{base: time.Now(), left: make([]int, 2), samples: make([][]time.Duration, 2),
				opens: make(chan Handle, conns), pending: conns, done: make(chan struct{})}
			cli := startNode(b, Config{Loops: 2, Logger: zerolog.Nop()}, cc)
			for i := 0; i < conns; i++ {
				cli.Dial(DialOptions{Addr: srv.Addr().String(), Loop: i % 2})
			}
			hs := make([]Handle, 0, conns)
			for i := 0; i < conns; i++ {
				select {
				case h := <-cc.opens:
					hs = append(hs, h)
				case <-time.After(10 * time.Second):
					b.Fatal("dial timed out")
				}
			}
			b.ResetTimer()
			for id := 0; id < 2; id++ {
				cli.Post(id, func(l *Loop) {
					n := 0
					for _, h := range hs {
						if h.Loop() == l.ID() {
							n++
						}
					}
					cc.left[l.ID()] = total/2 - n
					for _, h := range hs {
						if h.Loop() == l.ID() {
							cc.send(l, h)
						}
					}
				})
			}
			select {
			case <-cc.done:
			case <-time.After(60 * time.Second):
				b.Fatal("round trips did not finish")
			}
			b.StopTimer()
			var all []time.Duration
			// Reading the samples on the loops orders it after the last
			// callbacks that wrote them.
			for id := 0; id < 2; id++ {
				onLoop(cli, id, func(l *Loop) {})
			}
			for _, s := range cc.samples {
				all = append(all, s...)
			}
			slices.Sort(all)
			q := func(f float64) float64 { return float64(all[int(f*float64(len(all)-1))].Microseconds()) }
			b.ReportMetric(q(0.5), "p50-µs")
			b.ReportMetric(q(0.99), "p99-µs")
			b.ReportMetric(q(0.999), "p999-µs")
			b.ReportMetric(float64(len(all))/b.Elapsed().Seconds(), "rt/s")
		})
	}
}
