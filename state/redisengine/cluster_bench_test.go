package redisengine

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// Dig throughput of one redis-server against a Redis Cluster of 3
// primaries + 3 replicas, in the same run (go test -bench DigThroughput
// -count N interleaves the two). Many goroutines dig at random cells of
// 48 hunts spread over the shards, 10 % of the cells holding a treasure.
// Besides digs/s it reports where the CPU goes, per dig: each redis-server
// process's CPU time (utime+stime from /proc) over the digs its shard ran
// (EVALSHA calls in INFO commandstats), Redis's own usec_per_call of the
// dig script, and this process's CPU (the engine and go-redis).
func BenchmarkDigThroughput(b *testing.B) {
	b.Run("standalone", func(b *testing.B) {
		e := newEngine(b, Config{})
		digThroughput(b, e, []*redistest.Server{standalone}, nil)
	})
	b.Run("cluster", func(b *testing.B) {
		c := clusterOf(b)
		e := newClusterEngine(b, c, Config{})
		prim, err := c.Primaries(ctx)
		if err != nil {
			b.Fatal(err)
		}
		var reps []*redistest.Server
		for _, s := range c.Nodes {
			if !slices.Contains(prim, s) {
				reps = append(reps, s)
			}
		}
		digThroughput(b, e, prim, reps)
	})
}

const (
	benchHunts = 48
	benchSide  = 100
)

func digThroughput(b *testing.B, e *Engine, prim, reps []*redistest.Server) {
	hunts := make([]string, benchHunts)
	for i := range hunts {
		hunts[i] = "d" + strconv.Itoa(i)
		if _, err := e.Create(ctx, state.Spec{ID: hunts[i], Width: benchSide, Height: benchSide,
			Random: &state.RandomSpec{Count: benchSide * benchSide / 10, Seed: int64(i) + 1, MaxPoints: 100}}); err != nil {
			b.Fatal(err)
		}
	}
	before := make([]procSample, len(prim)+len(reps))
	for i, s := range append(slices.Clone(prim), reps...) {
		before[i] = sample(b, s)
	}
	var self0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	var errs atomic.Int64
	b.SetParallelism(32)
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 1))
		for pb.Next() {
			h := hunts[r.IntN(len(hunts))]
			if _, err := e.Dig(ctx, h, playerNames[r.IntN(len(playerNames))], r.IntN(benchSide), r.IntN(benchSide)); err != nil && !errors.Is(err, state.ErrEnded) {
				errs.Add(1)
			}
		}
	})
	el := time.Since(t0)
	b.StopTimer()
	if n := errs.Load(); n > 0 {
		b.Fatalf("%d digs failed", n)
	}
	var self1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	b.ReportMetric(float64(b.N)/el.Seconds(), "digs/s")
	b.ReportMetric(float64(cpuOf(self1)-cpuOf(self0))/1e3/float64(b.N), "client-µs/dig")
	var primCPU, repCPU time.Duration
	var calls, usec int64
	for i, s := range append(slices.Clone(prim), reps...) {
		d := sample(b, s).minus(before[i])
		if i < len(prim) {
			primCPU += d.cpu
			calls += d.calls
			usec += d.usec
			if testing.Verbose() {
				b.Logf("primary %d: %d digs (%.0f %%), %.1f µs CPU per dig, usec_per_call %.1f",
					s.Port, d.calls, 100*float64(d.calls)/float64(max(b.N, 1)), float64(d.cpu.Microseconds())/float64(max(d.calls, 1)), float64(d.usec)/float64(max(d.calls, 1)))
			}
		} else {
			repCPU += d.cpu
		}
	}
	b.ReportMetric(float64(primCPU.Microseconds())/float64(max(calls, 1)), "primary-cpu-µs/dig")
	b.ReportMetric(float64(usec)/float64(max(calls, 1)), "script-µs/dig")
	if len(reps) > 0 {
		b.ReportMetric(float64(repCPU.Microseconds())/float64(max(calls, 1)), "replica-cpu-µs/dig")
	}
}

func cpuOf(r syscall.Rusage) int64 {
	return r.Utime.Nano() + r.Stime.Nano()
}

// procSample is a redis-server's CPU time and its dig script's calls.
type procSample struct {
	cpu         time.Duration
	calls, usec int64
}

func (a procSample) minus(b procSample) procSample {
	return procSample{a.cpu - b.cpu, a.calls - b.calls, a.usec - b.usec}
}

// sample reads s's CPU time from /proc and its EVALSHA calls and their
// total time from INFO commandstats (every engine call here is a dig).
func sample(b *testing.B, s *redistest.Server) procSample {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", s.PID()))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	p := procSample{cpu: time.Duration(ut+st) * time.Second / 100} // USER_HZ
	c := s.Client()
	defer c.Close()
	info, err := c.Info(ctx, "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:"); ok {
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					p.calls = n
				case "usec":
					p.usec = n
				}
			}
		}
	}
	return p
}

// BenchmarkClusterDigWait is the latency of a claiming dig on the cluster
// without and with WaitReplicas 1 (WAIT for one replica before the
// answer), one dig at a time, in the same run: the cost of --redis-wait.
func BenchmarkClusterDigWait(b *testing.B) {
	for _, n := range []int{0, 1} {
		b.Run(fmt.Sprintf("wait=%d", n), func(b *testing.B) {
			c := clusterOf(b)
			e := newClusterEngine(b, c, Config{WaitReplicas: n, WaitTimeout: time.Second})
			const side = 100
			hunt, cell := 0, side*side
			lat := make([]time.Duration, 0, 1024)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if cell == side*side {
					b.StopTimer()
					hunt++
					if _, err := e.Create(ctx, state.Spec{ID: "w" + strconv.Itoa(hunt), Width: side, Height: side,
						Random: &state.RandomSpec{Count: side * side, Seed: 1, MaxPoints: 1000}}); err != nil {
						b.Fatal(err)
					}
					cell = 0
					b.StartTimer()
				}
				t := time.Now()
				res, err := e.Dig(ctx, "w"+strconv.Itoa(hunt), playerNames[i%len(playerNames)], cell/side, cell%side)
				lat = append(lat, time.Since(t))
				if err != nil || !res.Found {
					b.Fatal(res, err)
				}
				cell++
			}
			b.StopTimer()
			if e.WaitShort() != 0 {
				b.Fatalf("%d waits timed out", e.WaitShort())
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
