package gateway

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
	"github.com/huntgate/huntgate/state/redisengine"
)

// BenchmarkWebhookBudget measures webhook delivery to a local receiver at
// 1,000 updates/s on the memory engine: the p99 from Publish to the
// receiver's 2xx in steady state, the updates lost across a receiver
// outage, and the event loops' pass time with and without webhooks under
// the same load (50 joined players, so the loops fan every update out),
// in the same run: HG_WEBHOOK_ROUNDS rounds (default 1) of one run without
// and one with webhooks, in alternating order (ABBA...), ratios of the
// medians. It is one fixed-length run per call, whatever b.N: short by
// default (the suite's smoke run); the budget run sets the lengths in
// seconds:
//
//	flock /work/measure.lock env HG_WEBHOOK_STEADY=20 HG_WEBHOOK_OUTAGE=60 HG_WEBHOOK_ROUNDS=4 \
//	  go test -run '^$' -bench 'WebhookBudget' -benchtime 1x ./gateway/
func BenchmarkWebhookBudget(b *testing.B) { webhookBudget(b, nil) }

// BenchmarkWebhookBudgetRedis is BenchmarkWebhookBudget on the Redis engine
// (a real redis-server): updates published through the engine, delivered
// from the hunt's backlog in Redis under the lease; it also reports the
// Redis round trips per delivered update, from INFO commandstats (scripts
// run, less one per Publish) and from the node's claim count.
func BenchmarkWebhookBudgetRedis(b *testing.B) {
	srv := redistest.Standalone(b, redistest.Options{})
	webhookBudget(b, &redisengine.Config{URL: srv.URL()})
}

func webhookBudget(b *testing.B, rcfg *redisengine.Config) {
	steady := envSeconds("HG_WEBHOOK_STEADY", 1)
	outage := envSeconds("HG_WEBHOOK_OUTAGE", 0.3)
	rounds := max(int(envSeconds("HG_WEBHOOK_ROUNDS", 1)), 1)
	for i := 0; i < b.N; i++ {
		var base, with []webhookRun
		for r := 0; r < rounds; r++ {
			a := func() { base = append(base, webhookLoad(b, rcfg, nil, steady, 0)) }
			w := func() { with = append(with, webhookLoad(b, rcfg, newTarget(b), steady, 0)) }
			if r%2 == 0 {
				a()
				w()
			} else {
				w()
				a()
			}
		}
		out := webhookLoad(b, rcfg, newTarget(b), steady, outage)
		med := func(rs []webhookRun, f func(webhookRun) float64) float64 {
			v := make([]float64, len(rs))
			for i, r := range rs {
				v[i] = f(r)
			}
			slices.Sort(v)
			if len(v)%2 == 1 {
				return v[len(v)/2]
			}
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		perPass := func(r webhookRun) float64 { return r.busy / float64(max(r.passes, 1)) }
		perUpdate := func(r webhookRun) float64 { return r.busy / float64(max(r.published, 1)) }
		passes := func(r webhookRun) float64 { return float64(r.passes) / float64(max(r.published, 1)) }
		cpu := func(r webhookRun) float64 { return r.cpu / float64(max(r.published, 1)) }
		loopCPU := func(r webhookRun) float64 { return r.loopCPU / float64(max(r.published, 1)) }
		loopWait := func(r webhookRun) float64 { return r.loopWait / float64(max(r.published, 1)) }
		var p99, p50 []float64
		lost := 0
		var delivered, claims, scripts int64
		for _, r := range with {
			p99, p50 = append(p99, r.p99.Seconds()*1e3), append(p50, r.p50.Seconds()*1e3)
			lost += r.lost
			delivered, claims, scripts = delivered+r.delivered, claims+r.claims, scripts+r.scripts
		}
		slices.Sort(p99)
		b.ReportMetric(p99[len(p99)-1], "p99_ms_worst")
		b.ReportMetric(med(with, func(r webhookRun) float64 { return r.p99.Seconds() * 1e3 }), "p99_ms")
		b.ReportMetric(med(with, func(r webhookRun) float64 { return r.p50.Seconds() * 1e3 }), "p50_ms")
		b.ReportMetric(float64(lost), "lost")
		b.ReportMetric(float64(out.lost), "lost_outage")
		b.ReportMetric(out.drain.Seconds(), "drain_after_outage_s")
		b.ReportMetric(med(with, perPass)/med(base, perPass), "loop_busy_per_pass_ratio")
		b.ReportMetric(med(with, perUpdate)/med(base, perUpdate), "loop_busy_per_update_ratio")
		b.ReportMetric(med(with, passes)/med(base, passes), "loop_passes_per_update_ratio")
		b.ReportMetric(med(with, cpu)/med(base, cpu), "process_cpu_per_update_ratio")
		if base[0].loopCPU > 0 {
			b.ReportMetric(med(with, loopCPU)/med(base, loopCPU), "loop_thread_cpu_per_update_ratio")
			b.ReportMetric(med(with, loopWait)/med(base, loopWait), "loop_thread_runqueue_wait_per_update_ratio")
			for j := range with {
				b.Logf("round %d: loop threads per update: cpu %.1f us, run-queue wait %.1f us without | cpu %.1f us, run-queue wait %.1f us with",
					j, loopCPU(base[j])*1e6, loopWait(base[j])*1e6, loopCPU(with[j])*1e6, loopWait(with[j])*1e6)
			}
		}
		if rcfg != nil && delivered > 0 {
			b.ReportMetric(float64(claims)/float64(delivered), "claims_per_delivered")
			b.ReportMetric(float64(scripts)/float64(delivered), "redis_rt_per_delivered")
		}
		for j := range with {
			b.Logf("round %d: without: busy/pass %.1f us, busy/update %.1f us, passes/update %.3f, cpu/update %.0f us, pass max %.2f ms, %d GCs (%.1f ms STW) | with: busy/pass %.1f us, busy/update %.1f us, passes/update %.3f, cpu/update %.0f us, pass max %.2f ms, %d GCs (%.1f ms STW), p50 %v p99 %v lost %d",
				j, perPass(base[j])*1e6, perUpdate(base[j])*1e6, passes(base[j]), cpu(base[j])*1e6, base[j].passMax*1e3, base[j].gcs, base[j].gcPause*1e3,
				perPass(with[j])*1e6, perUpdate(with[j])*1e6, passes(with[j]), cpu(with[j])*1e6, with[j].passMax*1e3, with[j].gcs, with[j].gcPause*1e3, with[j].p50, with[j].p99, with[j].lost)
		}
		b.Logf("outage %.1fs in %.1fs at 1000/s: published %d, lost %d, drained %v after it; delivered %d with %d claims and %d other scripts (Redis)",
			outage, steady+outage, out.published, out.lost, out.drain, delivered, claims, scripts)
	}
}

// newTarget is the receiver of a benchmark run: in its own process with
// HG_WEBHOOK_RECEIVER_PROC=1, else in this one.
func newTarget(b *testing.B) hookTarget {
	if os.Getenv("HG_WEBHOOK_RECEIVER_PROC") == "1" {
		return newProcReceiver(b)
	}
	return newReceiver(b)
}

func envSeconds(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil && v >= 0 {
		return v
	}
	return def
}

type webhookRun struct {
	p50, p99, drain time.Duration
	lost, published int
	busy, passMax   float64
	passes          int64
	cpu             float64 // process CPU seconds (user+system) during the load
	// loopCPU and loopWait are the loop threads' time on a CPU and ready
	// but waiting for one, from the kernel (pinned loops only, else 0).
	loopCPU, loopWait float64
	gcs               uint32  // garbage collections during the load
	gcPause           float64 // their stop-the-world pauses, seconds
	delivered         int64
	claims, scripts   int64 // Redis: webhook claims, and scripts run less one per Publish
}

var benchRuns atomic.Int64

// startCPUs is the CPU set the process started with (taskset), read before
// any loop pins its thread.
var startCPUs = func() (s unix.CPUSet) {
	_ = unix.SchedGetaffinity(0, &s)
	return s
}()

// restoreAffinity gives every thread of the process the CPU set it started
// with. A pinned loop's thread returns to the runtime's pool with the
// loop's CPU when the gateway stops; left so, the next run's goroutines, and
// the receiver processes they start, would share the CPU the next loop is
// meant to have alone.
func restoreAffinity(b *testing.B) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var s unix.CPUSet
		if unix.SchedGetaffinity(tid, &s) == nil && s != startCPUs {
			if err := unix.SchedSetaffinity(tid, &startCPUs); err != nil {
				b.Logf("thread %d: restore affinity: %v", tid, err)
			}
		}
	}
}

// webhookLoad publishes 1,000 events/s for steady seconds to a hunt with 50
// joined players on a gateway (memory engine, or Redis with rcfg) whose
// webhook goes to r (nil: none); with outage > 0 the receiver is away for
// that long in the middle. The gateway is stopped at the end.
func webhookLoad(b *testing.B, rcfg *redisengine.Config, r hookTarget, steady, outage float64) webhookRun {
	cfg := Config{
		Addr: "127.0.0.1:0", AdminAddr: "-", Loops: 2, DevMode: true, Rate: -1,
		StatsInterval: -1, DrainWindow: 100 * time.Millisecond,
		Pin: os.Getenv("HG_WEBHOOK_PIN") == "1",
	}
	// HG_WEBHOOK_LOOPS and HG_WEBHOOK_CPUS (pins the loops there) let a run
	// give the loop a CPU of its own while the process is confined to the
	// others (taskset), to separate core sharing from the loop's own work.
	if v := os.Getenv("HG_WEBHOOK_LOOPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("HG_WEBHOOK_LOOPS: %v", err)
		}
		cfg.Loops = n
	}
	if v := os.Getenv("HG_WEBHOOK_CPUS"); v != "" {
		cpus, err := conn.ParseCPUList(v)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Pin, cfg.CPUs = true, cpus
	}
	if r != nil {
		cfg.WebhookURL, cfg.WebhookSecret = r.url(), testWebhookSecret
	}
	ctx := context.Background()
	var engine state.Engine
	var rc *redis.Client
	if rcfg != nil {
		ec := *rcfg
		ec.Prefix = fmt.Sprintf("wb%d:", benchRuns.Add(1))
		if r != nil {
			ec.WebhookBacklog = DefaultWebhookOutbox
		}
		e, err := redisengine.New(ctx, ec)
		if err != nil {
			b.Fatal(err)
		}
		engine = e
		opt, _ := redis.ParseURL(rcfg.URL)
		rc = redis.NewClient(opt)
		defer rc.Close()
	} else {
		engine = state.NewMemory(state.MemoryConfig{Epoch: 1 << 40})
	}
	g, err := New(cfg, engine)
	if err != nil {
		b.Fatal(err)
	}
	if err := g.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = g.Shutdown(sctx)
		_ = engine.Close()
		if cfg.Pin {
			restoreAffinity(b)
		}
	}()
	tg := &testGateway{Gateway: g, ws: "ws://" + g.Addr().String()}
	if _, err := engine.Create(ctx, state.Spec{ID: "w", Width: 2, Height: 2}); err != nil {
		b.Fatal(err)
	}
	var readers sync.WaitGroup
	defer readers.Wait()
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
		defer p.c.Close()
	}
	stats := func() (busy float64, passes int64, passMax float64) {
		for _, l := range tg.Stats(ctx).Loops {
			busy += l.BusySec
			passes += l.Passes
			passMax = max(passMax, l.PassMaxSec)
		}
		return
	}
	busy0, passes0, _ := stats()
	cpu0 := processCPU()
	run0, wait0 := g.loopSched()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	var scripts0, claims0 int64
	if rc != nil {
		scripts0 = scriptCalls(b, rc)
	}
	if g.wh != nil {
		claims0 = g.wh.claims.Load()
	}
	var mu sync.Mutex
	sent := map[uint64]time.Time{}
	// Publishers: a Redis Publish is a round trip, so one goroutine alone
	// would not keep up 1,000/s on a loaded machine. Each job is the time
	// its update was due.
	jobs := make(chan time.Time, 1<<17)
	var pubs sync.WaitGroup
	for range 8 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			for t0 := range jobs {
				seq, err := engine.Publish(ctx, "w", []byte(`{"t":1}`))
				if err != nil {
					b.Error(err)
					continue
				}
				mu.Lock()
				sent[seq] = t0
				mu.Unlock()
			}
		}()
	}
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
			jobs <- time.Now()
		}
	}
	tick.Stop()
	close(jobs)
	pubs.Wait()
	busy1, passes1, passMax := stats()
	run := webhookRun{busy: busy1 - busy0, passes: passes1 - passes0, passMax: passMax, published: len(sent), cpu: processCPU() - cpu0}
	run1, wait1 := g.loopSched()
	runtime.ReadMemStats(&ms1)
	run.gcs, run.gcPause = ms1.NumGC-ms0.NumGC, float64(ms1.PauseTotalNs-ms0.PauseTotalNs)/1e9
	run.loopCPU, run.loopWait = run1-run0, wait1-wait0
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
	run.delivered = int64(r.count())
	if rc != nil {
		run.claims = g.wh.claims.Load() - claims0
		run.scripts = scriptCalls(b, rc) - scripts0 - int64(len(sent))
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		run.p50, run.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	r.down()
	return run
}

// loopSched sums the kernel's schedstat of the loop threads (pinned loops):
// seconds on a CPU and seconds runnable but waiting for one.
func (g *Gateway) loopSched() (run, wait float64) {
	for _, l := range g.node.Stats().Loops {
		if l.Thread == 0 {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/schedstat", l.Thread))
		if err != nil {
			continue
		}
		var r, w int64
		if _, err := fmt.Sscan(string(b), &r, &w); err == nil {
			run, wait = run+float64(r)/1e9, wait+float64(w)/1e9
		}
	}
	return run, wait
}

// processCPU is this process's user and system CPU time in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
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
