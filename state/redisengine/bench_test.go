package redisengine

import (
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/huntgate/huntgate/state"
)

// BenchmarkDigMiss is a dig of an empty cell: one script round trip.
func BenchmarkDigMiss(b *testing.B) {
	e := newEngine(b, Config{})
	if _, err := e.Create(ctx, state.Spec{ID: "b", Width: 1000, Height: 1000}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := e.Dig(ctx, "b", "player-1", i%1000, (i/1000)%1000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDigHit claims a treasure per dig: claim, seq, leaderboard,
// history and publish, in one script round trip. Hunts of 100,000
// treasures are created outside the timer as needed.
func BenchmarkDigHit(b *testing.B) {
	e := newEngine(b, Config{})
	const side = 316 // 99,856 cells
	hunt, cell := 0, side*side
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if cell == side*side {
			b.StopTimer()
			hunt++
			if _, err := e.Create(ctx, state.Spec{ID: "b" + string(rune('a'+hunt%26)) + string(rune('a'+hunt/26)), Width: side, Height: side,
				Random: &state.RandomSpec{Count: side * side, Seed: 1, MaxPoints: 1000}}); err != nil {
				b.Fatal(err)
			}
			cell = 0
			b.StartTimer()
		}
		res, err := e.Dig(ctx, "b"+string(rune('a'+hunt%26))+string(rune('a'+hunt/26)), playerNames[i%len(playerNames)], cell/side, cell%side)
		if err != nil || !res.Found {
			b.Fatal(res, err)
		}
		cell++
	}
}

var playerNames = func() []string {
	ps := make([]string, 1000)
	for i := range ps {
		ps[i] = "p" + string(rune('a'+i%26)) + string(rune('a'+i/26%26)) + string(rune('a'+i/676))
	}
	return ps
}()

// BenchmarkDigMissParallel is BenchmarkDigMiss from many goroutines over
// the connection pool: throughput rather than latency.
func BenchmarkDigMissParallel(b *testing.B) {
	e := newEngine(b, Config{})
	if _, err := e.Create(ctx, state.Spec{ID: "b", Width: 1000, Height: 1000}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for i := 0; pb.Next(); i++ {
			if _, err := e.Dig(ctx, "b", "player-1", i%1000, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkDigConcurrent makes misses from about 64 goroutines (64 /
// GOMAXPROCS per P, rounded down), as the gateway's
// workers do, sent one EVALSHA per call as before the batcher (unbatched)
// and through it (batched), in the same run. Beside ns/op it reports the
// round trips per dig (pipelines and commands seen by a go-redis hook) and
// the CPU per dig of this process and of redis-server (INFO cpu).
func BenchmarkDigConcurrent(b *testing.B) {
	e := newEngine(b, Config{PoolSize: 64})
	if _, err := e.Create(ctx, state.Spec{ID: "b", Width: 1000, Height: 1000}); err != nil {
		b.Fatal(err)
	}
	if _, err := e.Dig(ctx, "b", "p", 0, 0); err != nil { // loads the script
		b.Fatal(err)
	}
	var rt roundTrips
	e.rdb.AddHook(&rt)
	k := e.keysOf("b")
	for _, mode := range []string{"unbatched", "batched"} {
		b.Run(mode, func(b *testing.B) {
			dig := func(i int) error {
				se, ss, fresh := e.guardArgs("b")
				if mode == "unbatched" {
					return digLua.Run(ctx, e.rdb, k.dig, "p", i%1000, 1, e.hmax, k.chArg, e.wmax, se, ss, fresh).Err()
				}
				_, err := e.run(ctx, digLua, k.dig, "p", i%1000, 1, e.hmax, k.chArg, e.wmax, se, ss, fresh)
				return err
			}
			trips, self, srv := rt.n.Load(), cpuSelf(), cpuRedis(b, e)
			b.ReportAllocs()
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					if err := dig(i); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			n := float64(b.N)
			b.ReportMetric(float64(rt.n.Load()-trips)/n, "trips/dig")
			b.ReportMetric(float64(cpuSelf()-self)/n/1e3, "client-cpu-µs/dig")
			b.ReportMetric(float64(cpuRedis(b, e)-srv)/n/1e3, "redis-cpu-µs/dig")
			b.ReportMetric(n/b.Elapsed().Seconds(), "digs/s")
		})
	}
}

// cpuSelf is this process's user+system CPU time in ns.
func cpuSelf() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// cpuRedis is redis-server's user+system CPU time in ns, from INFO cpu.
func cpuRedis(b *testing.B, e *Engine) int64 {
	info, err := e.rdb.Info(ctx, "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return int64(total * 1e9)
}
