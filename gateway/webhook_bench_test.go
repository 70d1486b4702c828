package gateway

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
)

// BenchmarkWebhookBudget measures webhook delivery to a local receiver at
// 1,000 updates/s: the p99 from Publish to the receiver's 2xx in steady
// state, the updates lost across a receiver outage, and the event loops'
// pass time with and without webhooks under the same load (50 joined
// players, so the loops fan every update out), in the same run. It is one
// fixed-length run per call, whatever b.N: short by default (the suite's
// smoke run); the budget run sets the lengths in seconds:
//
//	flock /work/measure.lock env HG_WEBHOOK_STEADY=30 HG_WEBHOOK_OUTAGE=60 \
//	  go test -run '^$' -bench WebhookBudget -benchtime 1x ./gateway/
func BenchmarkWebhookBudget(b *testing.B) {
	steady := envSeconds("HG_WEBHOOK_STEADY", 1)
	outage := envSeconds("HG_WEBHOOK_OUTAGE", 0.3)
	for i := 0; i < b.N; i++ {
		base := webhookLoad(b, "", steady, 0)
		r := newReceiver(b)
		with := webhookLoad(b, r.url(), steady, 0)
		r2 := newReceiver(b)
		out := webhookLoad(b, r2.url(), steady, outage)
		b.ReportMetric(with.p99.Seconds()*1e3, "p99_ms")
		b.ReportMetric(with.p50.Seconds()*1e3, "p50_ms")
		b.ReportMetric(float64(with.lost), "lost")
		b.ReportMetric(float64(out.lost), "lost_outage")
		b.ReportMetric(out.drain.Seconds(), "drain_after_outage_s")
		b.ReportMetric(with.busyPerPass/base.busyPerPass, "loop_busy_per_pass_ratio")
		b.ReportMetric(with.passMax/max(base.passMax, 1e-9), "loop_pass_max_ratio")
		b.Logf("steady %.1fs at 1000/s: p50 %v p99 %v lost %d; outage %.1fs: lost %d, drained %v after it; loop busy/pass %.1f us with vs %.1f us without (x%.2f), pass max %.2f ms vs %.2f ms",
			steady, with.p50, with.p99, with.lost, outage, out.lost, out.drain,
			with.busyPerPass*1e6, base.busyPerPass*1e6, with.busyPerPass/base.busyPerPass, with.passMax*1e3, base.passMax*1e3)
	}
}

func envSeconds(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v >= 0 {
		return v
	}
	return def
}

type webhookRun struct {
	p50, p99, drain      time.Duration
	lost                 int
	busyPerPass, passMax float64
}

// webhookLoad publishes 1,000 events/s for steady seconds to a hunt with 50
// joined players on a gateway whose webhook is url ("" for none); with
// outage > 0 the receiver is away for that long in the middle.
func webhookLoad(b *testing.B, url string, steady, outage float64) webhookRun {
	tg := startGateway(b, func(c *Config) {
		c.WebhookURL, c.WebhookSecret = url, testWebhookSecret
		c.Rate = -1
	})
	tg.createHunt(b, state.Spec{ID: "w", Width: 2, Height: 2})
	var readers sync.WaitGroup
	for i := 0; i < 50; i++ {
		p := tg.player(b, fmt.Sprintf("p%d", i))
		p.join("w")
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				if _, _, err := p.c.ReadMessage(); err != nil {
					return
				}
			}
		}()
	}
	var r *receiver
	if url != "" {
		r = receiverOf(b, url)
	}
	ctx := context.Background()
	stats := func() (busy float64, passes int64, passMax float64) {
		for _, l := range tg.Stats(ctx).Loops {
			busy += l.BusySec
			passes += l.Passes
			passMax = max(passMax, l.PassMaxSec)
		}
		return
	}
	busy0, passes0, _ := stats()
	var mu sync.Mutex
	sent := map[uint64]time.Time{}
	total := time.Duration((steady + outage) * float64(time.Second))
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	down := false
	var upAt time.Time
	for n := 0; time.Since(start) < total; {
		<-tick.C
		el := time.Since(start)
		if outage > 0 && r != nil {
			mid := time.Duration(steady / 2 * float64(time.Second))
			if !down && upAt.IsZero() && el >= mid {
				r.down()
				down = true
			} else if down && el >= mid+time.Duration(outage*float64(time.Second)) {
				r.up()
				down, upAt = false, time.Now()
			}
		}
		for want := int(el / time.Millisecond); n < want; n++ {
			t0 := time.Now()
			seq, err := tg.engine.Publish(ctx, "w", []byte(`{"t":1}`))
			if err != nil {
				b.Fatal(err)
			}
			mu.Lock()
			sent[seq] = t0
			mu.Unlock()
		}
	}
	tick.Stop()
	busy1, passes1, passMax := stats()
	run := webhookRun{busyPerPass: (busy1 - busy0) / float64(max(passes1-passes0, 1)), passMax: passMax}
	if r == nil {
		return run
	}
	if down {
		r.up()
		upAt = time.Now()
	}
	// Wait (bounded) until the receiver has every update.
	deadline := time.Now().Add(2*time.Minute + time.Duration(outage*float64(time.Second)))
	for time.Now().Before(deadline) && r.count() < len(sent) {
		time.Sleep(20 * time.Millisecond)
	}
	if !upAt.IsZero() {
		run.drain = time.Since(upAt)
	}
	lat := r.latencies(sent)
	run.lost = len(sent) - r.count()
	if len(lat) > 0 {
		slices.Sort(lat)
		run.p50, run.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return run
}

// receiverOf finds the receiver serving url among those the benchmark made.
func receiverOf(tb testing.TB, url string) *receiver {
	benchReceiversMu.Lock()
	defer benchReceiversMu.Unlock()
	for _, r := range benchReceivers {
		if r.url() == url {
			return r
		}
	}
	tb.Fatalf("no receiver at %s", url)
	return nil
}

var (
	benchReceiversMu sync.Mutex
	benchReceivers   []*receiver
)

// count returns the distinct seqs received (one hunt).
func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.firstAt)
}

// latencies returns, for each update received, the time from its send to
// its first arrival at the receiver.
func (r *receiver) latencies(sent map[uint64]time.Time) []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]time.Duration, 0, len(r.firstAt))
	for seq, at := range r.firstAt {
		if t0, ok := sent[seq]; ok {
			out = append(out, at.Sub(t0))
		}
	}
	return out
}
