package state

import (
	"context"
	"runtime"
	"sync"
	"testing"
)

const benchPlayers = 1_000_000

var (
	bigOnce    sync.Once
	bigBoard   *Leaderboard
	bigNames   []string
	bigPerNode float64 // heap bytes per player, names excluded
)

// bigLeaderboard builds, once per process, a board of 10^6 players with
// scores 0-9999 (many ties).
func bigLeaderboard() (*Leaderboard, []string) {
	bigOnce.Do(func() {
		bigNames = playerNames(benchPlayers)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		bigBoard = NewLeaderboard()
		for i, p := range bigNames {
			bigBoard.Add(p, int64(i*7919%10000))
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		bigPerNode = float64(after.HeapAlloc-before.HeapAlloc) / benchPlayers
	})
	return bigBoard, bigNames
}

// next is a xorshift step: a cheap pseudo-random index for the loops.
func next(x *uint64) uint64 {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return *x
}

func BenchmarkLeaderboardAdd(b *testing.B) {
	lb, names := bigLeaderboard()
	b.ReportAllocs()
	x := uint64(1)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lb.Add(names[next(&x)%benchPlayers], 1)
	}
	b.ReportMetric(bigPerNode, "heapB/player")
}

func BenchmarkLeaderboardRank(b *testing.B) {
	lb, names := bigLeaderboard()
	b.ReportAllocs()
	x := uint64(2)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, _, ok := lb.Rank(names[next(&x)%benchPlayers]); !ok {
			b.Fatal("player missing")
		}
	}
}

func BenchmarkLeaderboardTop10(b *testing.B) {
	lb, _ := bigLeaderboard()
	b.ReportAllocs()
	dst := make([]Entry, 0, TopSize)
	for i := 0; i < b.N; i++ {
		dst = lb.Top(dst[:0], TopSize)
	}
	if len(dst) != TopSize {
		b.Fatal(len(dst))
	}
}

// BenchmarkLeaderboardAddNew inserts new players: the cost of a first claim.
func BenchmarkLeaderboardAddNew(b *testing.B) {
	names := playerNames(b.N)
	lb := NewLeaderboard()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lb.Add(names[i], int64(i%1000))
	}
}

func BenchmarkHistoryAppend(b *testing.B) {
	h := NewHistory(DefaultHistoryMax, DefaultHistoryAge)
	top := []Entry{{"a", 1}}
	for i := 0; i < DefaultHistoryMax; i++ { // reach the steady state: full ring
		h.Append(Update{Seq: uint64(i + 1), Kind: KindClaimed, Top: top, At: t0})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h.Append(Update{Hunt: "h", Seq: uint64(DefaultHistoryMax + i + 1), Kind: KindClaimed, Player: "p", Treasure: "t", At: t0})
	}
}

// missCells returns cells of h without a treasure.
func missCells(h *Hunt, n int) [][2]int {
	var out [][2]int
	for x := 0; x < h.width && len(out) < n; x++ {
		for y := 0; y < h.height && len(out) < n; y++ {
			c := h.cell(x, y)
			_, inSparse := h.sparse[c]
			if (h.dense != nil && h.dense[c] == 0) || (h.dense == nil && !inSparse) {
				out = append(out, [2]int{x, y})
			}
		}
	}
	return out
}

func BenchmarkHuntDigMiss(b *testing.B) {
	for _, tc := range []struct {
		name string
		side int
	}{{"dense-256x256", 256}, {"sparse-4096x4096", 4096}} {
		b.Run(tc.name, func(b *testing.B) {
			h, err := NewHunt(Spec{ID: "h", Width: tc.side, Height: tc.side, Random: &RandomSpec{Count: 1000, Seed: 1, MaxPoints: 10}}, 1)
			if err != nil {
				b.Fatal(err)
			}
			cells := missCells(h, 1024)
			out := make([]Update, 0, 3)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c := cells[i&1023]
				out, _, _ = h.Apply(Command{Op: OpDig, Player: "p", X: c[0], Y: c[1], At: t0}, out[:0])
			}
		})
	}
}

// BenchmarkHuntDigHit claims treasures of a full 1024x1024 grid, 10^4
// players taking turns; a claim that changes the top builds a new top
// slice (the only allocation of a hit by a known player).
func BenchmarkHuntDigHit(b *testing.B) {
	names := playerNames(10_000)
	spec := Spec{ID: "h", Width: 1024, Height: 1024, Random: &RandomSpec{Count: 1 << 20, Seed: 1, MaxPoints: 100}}
	newHunt := func() *Hunt {
		h, err := NewHunt(spec, 1)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range names { // every player known: no node allocations
			h.lb.Add(p, 0)
		}
		return h
	}
	h := newHunt()
	out := make([]Update, 0, 3)
	b.ReportAllocs()
	b.ResetTimer()
	for i, k := 0, 0; i < b.N; i, k = i+1, k+1 {
		if k == len(h.treasures) {
			b.StopTimer()
			h, k = newHunt(), 0
			b.StartTimer()
		}
		t := h.treasures[k]
		var res Result
		out, res, _ = h.Apply(Command{Op: OpDig, Player: names[i%len(names)], X: t.X, Y: t.Y, At: t0}, out[:0])
		if !res.Dig.Found {
			b.Fatal("miss")
		}
	}
}

// BenchmarkMemoryDig is a dig through the engine: table lookup, hunt lock,
// rules, history append and the sink.
func BenchmarkMemoryDig(b *testing.B) {
	ctx := context.Background()
	b.Run("miss", func(b *testing.B) {
		m := NewMemory(MemoryConfig{})
		m.Subscribe(func(Update) {})
		m.Create(ctx, Spec{ID: "h", Width: 256, Height: 256, Random: &RandomSpec{Count: 1000, Seed: 1, MaxPoints: 10}})
		cells := missCells(m.hunts["h"].h, 1024)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			c := cells[i&1023]
			if _, err := m.Dig(ctx, "h", "p", c[0], c[1]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("hit", func(b *testing.B) {
		names := playerNames(10_000)
		m := NewMemory(MemoryConfig{})
		m.Subscribe(func(Update) {})
		var ts []Treasure
		n := 0
		create := func() {
			n++
			id := "h" + names[n][len("player-"):]
			m.Create(ctx, Spec{ID: id, Width: 1024, Height: 1024, Random: &RandomSpec{Count: 1 << 20, Seed: 1, MaxPoints: 100}})
			mh := m.hunts[id]
			for _, p := range names {
				mh.h.lb.Add(p, 0)
			}
			ts = mh.h.treasures
		}
		create()
		id := "h" + names[n][len("player-"):]
		b.ReportAllocs()
		b.ResetTimer()
		for i, k := 0, 0; i < b.N; i, k = i+1, k+1 {
			if k == len(ts) {
				b.StopTimer()
				create()
				id, k = "h"+names[n][len("player-"):], 0
				b.StartTimer()
			}
			r, err := m.Dig(ctx, id, names[i%len(names)], ts[k].X, ts[k].Y)
			if err != nil || !r.Found {
				b.Fatal(r, err)
			}
		}
	})
}

// BenchmarkLeaderboardPage100 reads a page of 100 from a random rank of a
// 10^6-player board.
func BenchmarkLeaderboardPage100(b *testing.B) {
	lb, _ := bigLeaderboard()
	b.ReportAllocs()
	dst := make([]Entry, 0, 100)
	x := uint64(3)
	for i := 0; i < b.N; i++ {
		dst = lb.Page(dst[:0], int(next(&x)%(benchPlayers-100)), 100)
	}
	if len(dst) != 100 {
		b.Fatal(len(dst))
	}
}

var (
	bigHuntOnce sync.Once
	bigHunt     *Memory
)

// BenchmarkMemoryBoardPage100 is the admin API's leaderboard page of 100
// (GET /v1/hunts/{id}/leaderboard) through the memory engine, at a random
// offset of a hunt whose 10^6 treasures were claimed by 10^6 players.
func BenchmarkMemoryBoardPage100(b *testing.B) {
	bigHuntOnce.Do(func() {
		bigHunt = NewMemory(MemoryConfig{})
		ctx := context.Background()
		names := playerNames(benchPlayers)
		if _, err := bigHunt.Create(ctx, Spec{ID: "big", Width: 1000, Height: 1001,
			Random: &RandomSpec{Count: benchPlayers, Seed: 1, MaxPoints: 10000}}); err != nil {
			b.Fatal(err)
		}
		mh, _ := bigHunt.hunt("big")
		for i, t := range mh.h.Treasures() {
			if _, err := bigHunt.Dig(ctx, "big", names[i], t.X, t.Y); err != nil {
				b.Fatal(err)
			}
		}
	})
	ctx := context.Background()
	b.ReportAllocs()
	x := uint64(4)
	var p BoardPage
	for i := 0; i < b.N; i++ {
		var err error
		if p, err = bigHunt.Board(ctx, "big", int(next(&x)%(benchPlayers-100)), 100); err != nil {
			b.Fatal(err)
		}
	}
	if len(p.Entries) != 100 || p.Total != benchPlayers {
		b.Fatal(len(p.Entries), p.Total)
	}
}
