package redisengine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// roundTrips counts the commands and pipelines a client sends: each is one
// round trip to Redis.
type roundTrips struct{ n atomic.Int64 }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n.Add(1)
		return next(ctx, cmds)
	}
}

var _ redis.Hook = (*roundTrips)(nil)

// TestRecordsConformToMemory plays the same claims on both engines and
// compares every leaderboard query and the claims record: the memory
// engine's are checked against a brute-force ranking in package state.
func TestRecordsConformToMemory(t *testing.T) {
	mem := state.NewMemory(state.MemoryConfig{})
	red := newEngine(t, Config{HistoryMax: 8})
	const n, players = 600, 150
	ts := make([]state.Treasure, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range ts {
		ts[i] = state.Treasure{ID: fmt.Sprintf("t%d", i), X: i % 30, Y: i / 30, Points: int64(rng.IntN(4))}
	}
	spec := state.Spec{ID: "h", Width: 30, Height: n / 30, Treasures: ts}
	for _, e := range []state.Engine{mem, red} {
		if _, err := e.Create(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Second)
	for _, i := range rng.Perm(n - 1) {
		p := fmt.Sprintf("p%d", rng.IntN(players))
		for _, e := range []state.Engine{mem, red} {
			if res, err := e.Dig(ctx, "h", p, ts[i].X, ts[i].Y); err != nil || !res.Found {
				t.Fatalf("dig: %+v %v", res, err)
			}
		}
	}
	after := time.Now().Add(time.Second)
	recs := []state.Records{mem, red}
	total := 0
	for _, c := range [][2]int{{0, 100}, {0, 1}, {17, 50}, {140, 100}, {1000, 10}, {0, 1000}} {
		var got [2]string
		for i, r := range recs {
			p, err := r.Board(ctx, "h", c[0], c[1])
			got[i] = fmt.Sprintf("%+v %v", p, err)
			total = p.Total
		}
		if got[0] != got[1] {
			t.Fatalf("page %v:\nmemory %s\nredis  %s", c, got[0], got[1])
		}
	}
	if total < players/2 {
		t.Fatalf("only %d players ranked; the test proves little", total)
	}
	for i := 0; i < players+2; i++ {
		var got [2]string
		for j, r := range recs {
			pr, err := r.PlayerRank(ctx, "h", fmt.Sprintf("p%d", i), i%6)
			got[j] = fmt.Sprintf("%+v %v", pr, err)
		}
		if got[0] != got[1] {
			t.Fatalf("player p%d:\nmemory %s\nredis  %s", i, got[0], got[1])
		}
	}
	me, mcs, _ := mem.Claims(ctx, "h")
	re, rcs, err := red.Claims(ctx, "h")
	if err != nil || len(rcs) != n-1 || len(mcs) != n-1 || me == 0 || re == 0 {
		t.Fatalf("claims: %d %d %v", len(rcs), len(mcs), err)
	}
	// The history held 8 updates: the record is not read from it.
	for i := range rcs {
		at := rcs[i].At
		if at.Before(before) || at.After(after) || (i > 0 && at.Before(rcs[i-1].At)) {
			t.Fatalf("claim %d at %v, outside [%v, %v] or before the one before", i, at, before, after)
		}
		rcs[i].At, mcs[i].At = time.Time{}, time.Time{}
		if rcs[i] != mcs[i] {
			t.Fatalf("claim %d: redis %+v, memory %+v", i, rcs[i], mcs[i])
		}
	}
	for _, r := range recs {
		if _, err := r.Board(ctx, "nope", 0, 10); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("board of unknown hunt: %v", err)
		}
		if _, err := r.PlayerRank(ctx, "nope", "p1", 1); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("rank in unknown hunt: %v", err)
		}
		if _, err := r.PlayerRank(ctx, "h", "nobody", 1); !errors.Is(err, state.ErrNotRanked) {
			t.Fatalf("rank of unranked player: %v", err)
		}
		if _, _, err := r.Claims(ctx, "nope"); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("claims of unknown hunt: %v", err)
		}
	}
}

// TestBoardOneRoundTrip counts what a leaderboard page and a player's rank
// cost: one round trip each once the scripts are loaded.
func TestBoardOneRoundTrip(t *testing.T) {
	e := newEngine(t, Config{})
	spec := state.Spec{ID: "h", Width: 300, Height: 1, Random: &state.RandomSpec{Count: 300, Seed: 3, MaxPoints: 50}}
	if _, err := e.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	ts, _ := spec.Layout()
	for i, tr := range ts[:250] {
		if _, err := e.Dig(ctx, "h", fmt.Sprintf("p%d", i), tr.X, tr.Y); err != nil {
			t.Fatal(err)
		}
	}
	// Load the scripts once (EVALSHA's first NOSCRIPT costs a second trip).
	if _, err := e.Board(ctx, "h", 0, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PlayerRank(ctx, "h", "p1", 1); err != nil {
		t.Fatal(err)
	}
	var rt roundTrips
	e.rdb.AddHook(&rt)
	p, err := e.Board(ctx, "h", 100, 100)
	if err != nil || len(p.Entries) != 100 || p.Total != 250 {
		t.Fatalf("page: %d entries of %d, %v", len(p.Entries), p.Total, err)
	}
	if n := rt.n.Load(); n != 1 {
		t.Fatalf("a page of 100 took %d round trips, want 1", n)
	}
	if _, err := e.PlayerRank(ctx, "h", "p7", 5); err != nil {
		t.Fatal(err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Fatalf("a player's rank took %d round trips, want 1", n-1)
	}
}
