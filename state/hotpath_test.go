package state

import (
	"context"
	"testing"
)

// TestHotPathsDoNotAllocate pins the 0 allocs/op of the benchmarks as a
// test, so a change that adds an allocation to a hot path fails here.
func TestHotPathsDoNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts")
	}
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	m.Subscribe(func(Update) {})
	const side = 64
	if _, err := m.Create(ctx, Spec{ID: "h", Width: side, Height: side, Random: &RandomSpec{Count: side * side / 2, Seed: 1, MaxPoints: 5}}); err != nil {
		t.Fatal(err)
	}
	mh := m.hunts["h"]
	names := playerNames(64)
	for _, p := range names {
		mh.h.lb.Add(p, 1000) // a top nobody below will enter
	}
	low := playerNames(32)
	for i := range low {
		low[i] += "-low"
		mh.h.lb.Add(low[i], 0)
	}
	for i := 0; i < 4096; i++ { // fill the history ring to its steady state
		m.Publish(ctx, "h", nil)
	}
	miss := missCells(mh.h, 1)[0]
	ts := mh.h.treasures
	k := 0
	dst := make([]Entry, 0, TopSize)
	for name, f := range map[string]func(){
		"dig miss": func() { m.Dig(ctx, "h", "p", miss[0], miss[1]) },
		"dig hit":  func() { m.Dig(ctx, "h", low[k%32], ts[k].X, ts[k].Y); k++ },
		"rank":     func() { mh.h.lb.Rank(names[3]) },
		"top":      func() { dst = mh.h.lb.Top(dst[:0], TopSize) },
		"status":   func() { m.Status(ctx, "h") },
		"history":  func() { mh.hist.Append(Update{Seq: mh.h.seq + 1, At: m.now()}); mh.h.seq++ },
	} {
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: %v allocs/op", name, n)
		}
	}
	if k == 0 || mh.h.left != side*side/2-k {
		t.Fatalf("%d hits measured, %d treasures left of %d", k, mh.h.left, side*side/2)
	}
}
