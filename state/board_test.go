package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// TestLeaderboardPageMatchesBruteForce checks every page boundary against
// the reference ranking, on boards deep enough for three tree levels.
func TestLeaderboardPageMatchesBruteForce(t *testing.T) {
	for seed := int64(1); seed <= 6; seed++ {
		rng := rand.New(rand.NewSource(seed))
		lb := NewLeaderboard()
		ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
		players := 50 + rng.Intn(6000)
		for step := 0; step < 3*players; step++ {
			p := fmt.Sprintf("p%d", rng.Intn(players))
			d := int64(rng.Intn(5))
			ref.add(p, d)
			lb.Add(p, d)
		}
		order := ref.order()
		check := func(off, lim int) {
			t.Helper()
			got := lb.Page(nil, off, lim)
			var want []Entry
			if off >= 0 && lim > 0 && off < len(order) {
				want = order[off:min(off+lim, len(order))]
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("seed %d: Page(%d, %d) of %d = %d entries, want %d (first diff in %v vs %v)", seed, off, lim, len(order), len(got), len(want), got[:min(3, len(got))], want[:min(3, len(want))])
			}
		}
		for off := 0; off <= len(order)+1; off += 1 + rng.Intn(97) {
			check(off, 1+rng.Intn(MaxPageLimit))
		}
		for _, c := range [][2]int{{0, 0}, {-1, 5}, {0, len(order)}, {len(order) - 1, 10}, {len(order), 10}, {63, 2}, {64, 64}} {
			check(c[0], c[1])
		}
	}
}

// claimsHunt makes a hunt of n one-point or zero-point treasures in a row
// and has players claim them in a random order, mirroring the claims in
// ref; it returns the treasure layout.
func claimsHunt(t *testing.T, m *Memory, id string, n, players int, rng *rand.Rand, ref *bruteRank) []Treasure {
	t.Helper()
	ts := make([]Treasure, n)
	for i := range ts {
		ts[i] = Treasure{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: int64(rng.Intn(4))}
	}
	if _, err := m.Create(context.Background(), Spec{ID: id, Width: n, Height: 1, Treasures: ts}); err != nil {
		t.Fatal(err)
	}
	for _, i := range rng.Perm(n - 1) { // the last treasure stays: the hunt stays open
		p := fmt.Sprintf("p%d", rng.Intn(players))
		res, err := m.Dig(context.Background(), id, p, i, 0)
		if err != nil || !res.Found {
			t.Fatalf("dig %d: %+v %v", i, res, err)
		}
		ref.add(p, ts[i].Points)
	}
	return ts
}

func TestMemoryBoardAndPlayerRank(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	rng := rand.New(rand.NewSource(7))
	ref := &bruteRank{score: map[string]int64{}, tick: map[string]int{}}
	claimsHunt(t, m, "h", 3000, 700, rng, ref)
	order := ref.order()
	for _, c := range [][2]int{{0, 100}, {0, 1}, {99, 100}, {len(order) - 5, 100}, {len(order), 10}, {5, 1000}} {
		p, err := m.Board(ctx, "h", c[0], c[1])
		if err != nil {
			t.Fatal(err)
		}
		if p.Total != len(order) || p.Seq != 2999 {
			t.Fatalf("page %v: total %d seq %d, want %d 2999", c, p.Total, p.Seq, len(order))
		}
		want := order[min(c[0], len(order)):min(c[0]+c[1], len(order))]
		if len(p.Entries) != len(want) {
			t.Fatalf("page %v: %d entries, want %d", c, len(p.Entries), len(want))
		}
		for i, e := range p.Entries {
			if e.Rank != c[0]+i+1 || e.Player != want[i].Player || e.Score != want[i].Score {
				t.Fatalf("page %v entry %d: %+v, want rank %d %+v", c, i, e, c[0]+i+1, want[i])
			}
		}
	}
	for i, e := range order {
		around := i % 7
		pr, err := m.PlayerRank(ctx, "h", e.Player, around)
		if err != nil {
			t.Fatal(err)
		}
		if pr.Rank != i+1 || pr.Score != e.Score || pr.Player != e.Player {
			t.Fatalf("PlayerRank(%s) = rank %d score %d, want %d %d", e.Player, pr.Rank, pr.Score, i+1, e.Score)
		}
		lo, hi := max(i-around, 0), min(i+around+1, len(order))
		if len(pr.Around) != hi-lo {
			t.Fatalf("PlayerRank(%s, %d): %d around, want %d", e.Player, around, len(pr.Around), hi-lo)
		}
		for j, a := range pr.Around {
			if a.Rank != lo+j+1 || a.Player != order[lo+j].Player || a.Score != order[lo+j].Score {
				t.Fatalf("PlayerRank(%s) around %d: %+v, want rank %d %+v", e.Player, j, a, lo+j+1, order[lo+j])
			}
		}
	}
	if _, err := m.PlayerRank(ctx, "h", "nobody", 3); !errors.Is(err, ErrNotRanked) {
		t.Fatalf("unranked player: %v", err)
	}
	if _, err := m.PlayerRank(ctx, "nohunt", "p1", 3); !errors.Is(err, ErrUnknownHunt) {
		t.Fatalf("unknown hunt: %v", err)
	}
	if _, err := m.Board(ctx, "nohunt", 0, 10); !errors.Is(err, ErrUnknownHunt) {
		t.Fatalf("unknown hunt: %v", err)
	}
}

func TestMemoryClaimsRecord(t *testing.T) {
	ctx := context.Background()
	var clock time.Time = time.Date(2026, 12, 7, 17, 0, 0, 0, time.UTC)
	// History of 4 updates and 1 s: the claims record must outlive both.
	m := NewMemory(MemoryConfig{HistoryMax: 4, HistoryAge: time.Second, Now: func() time.Time { return clock }})
	ts := make([]Treasure, 50)
	for i := range ts {
		ts[i] = Treasure{ID: fmt.Sprintf("t%d", i), X: i % 10, Y: i / 10, Points: int64(i)}
	}
	if _, err := m.Create(ctx, Spec{ID: "h", Width: 10, Height: 5, Treasures: ts}); err != nil {
		t.Fatal(err)
	}
	if ep, cs, err := m.Claims(ctx, "h"); err != nil || cs == nil || len(cs) != 0 || ep != m.Epoch() {
		t.Fatalf("empty record: %d %v %v", ep, cs, err)
	}
	var seq uint64
	for i := range ts {
		clock = clock.Add(time.Minute)
		if i%3 == 0 {
			if _, err := m.Publish(ctx, "h", []byte(`1`)); err != nil {
				t.Fatal(err)
			}
		}
		res, err := m.Dig(ctx, "h", fmt.Sprintf("p%d", i%4), ts[i].X, ts[i].Y)
		if err != nil || !res.Found {
			t.Fatal(res, err)
		}
		seq = res.Seq
		_, cs, err := m.Claims(ctx, "h")
		if err != nil || len(cs) != i+1 {
			t.Fatalf("after claim %d: %d claims, %v", i, len(cs), err)
		}
		c := cs[i]
		want := Claim{Seq: seq, Treasure: ts[i].ID, Player: fmt.Sprintf("p%d", i%4), Points: ts[i].Points, X: ts[i].X, Y: ts[i].Y, At: clock}
		if c != want {
			t.Fatalf("claim %d: %+v, want %+v", i, c, want)
		}
	}
	// The history held only the last 4 updates of the last second: the
	// record above did not come from it.
	if _, ok, _ := m.History(ctx, "h", m.Epoch(), 0); ok {
		t.Fatal("history still holds every update; the test proves nothing")
	}
	if _, _, err := m.Claims(ctx, "nohunt"); !errors.Is(err, ErrUnknownHunt) {
		t.Fatalf("unknown hunt: %v", err)
	}
}
