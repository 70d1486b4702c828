package redisengine

import (
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
