package redisengine

import (
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// TestDigLocal: a node answers a dig itself only where no treasure can be:
// an empty cell of an open hunt it watches, once it has read the hunt's
// treasure cells. Treasure cells (claimed or not), cells off the grid, an
// ended hunt, and a hunt created again under the same id (new epoch, a
// treasure where the old one had none) all go to Redis, which answers them
// right.
func TestDigLocal(t *testing.T) {
	pub := newEngine(t, Config{})
	testDigLocal(t, admin(t), pub, newEngine(t, Config{Prefix: pub.prefix}))
}

// TestDigLocalCluster: the same on a Redis Cluster (the cells and the
// epoch are read in one transaction, on the hunt's shard).
func TestDigLocalCluster(t *testing.T) {
	c := clusterOf(t)
	pub := newClusterEngine(t, c, Config{})
	testDigLocal(t, clusterAdmin(t, c), pub, newClusterEngine(t, c, Config{Prefix: pub.prefix}))
}

func testDigLocal(t *testing.T, a redis.UniversalClient, pub, sub *Engine) {
	spec := state.Spec{ID: "h", Width: 4, Height: 1, Treasures: []state.Treasure{
		{ID: "a", X: 0, Y: 0, Points: 5}, {ID: "b", X: 1, Y: 0, Points: 7},
	}}
	if _, err := pub.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, ok := sub.DigLocal("h", "p", 3, 0); ok {
		t.Fatal("a dig answered from a copy of a hunt not watched")
	}
	watchAndWait(t, a, sub, "h", 1)
	if !sub.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	local := func(x, y int) bool {
		res, ok := sub.DigLocal("h", "p", x, y)
		if ok && res != (state.DigResult{}) {
			t.Fatalf("DigLocal(%d, %d) = %+v: a local answer must be a miss", x, y, res)
		}
		return ok
	}
	// The first digs start the read of the cells and go to Redis.
	eventually(t, "the cells read", func() bool { return local(3, 0) })
	if !local(2, 0) {
		t.Fatal("an empty cell went to Redis once the cells were read")
	}
	for _, c := range [][2]int{{0, 0}, {1, 0}, {4, 0}, {-1, 0}, {0, 1}} {
		if local(c[0], c[1]) {
			t.Fatalf("cell %v answered locally: a treasure or off the grid", c)
		}
	}
	if n := sub.DigsLocal(); n < 2 {
		t.Fatalf("DigsLocal %d, want at least the 2 misses answered", n)
	}
	// Redis answers the treasure cell: b is claimed through sub.
	if r, err := sub.Dig(ctx, "h", "p", 1, 0); err != nil || !r.Found || r.Treasure != "b" {
		t.Fatalf("dig on b: %+v, %v", r, err)
	}
	if _, err := sub.Dig(ctx, "h", "p", 4, 0); !errors.Is(err, state.ErrOutOfGrid) {
		t.Fatalf("dig off the grid: %v", err)
	}

	// Ended: no more local answers, Redis says ended.
	if _, err := pub.End(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the copy to see the end", func() bool { return !local(3, 0) })
	if _, err := sub.Dig(ctx, "h", "p", 3, 0); !errors.Is(err, state.ErrEnded) {
		t.Fatalf("dig after the end: %v", err)
	}

	// The hunt goes and is created again with a treasure at 3,0.
	k := pub.keysOf("h")
	if n, err := a.Del(ctx, k.meta, k.treasures, k.lb, k.members, k.hist, k.nodes, k.live, k.claims, k.wq, k.wk, k.wl).Result(); err != nil || n == 0 {
		t.Fatalf("deleting h: %d keys, %v", n, err)
	}
	spec.Treasures = []state.Treasure{{ID: "z", X: 3, Y: 0, Points: 9}}
	if _, err := pub.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "h", []byte(`"again"`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new epoch's cells", func() bool {
		if local(3, 0) {
			t.Fatal("3,0 answered as a miss: the old epoch's cells were used")
		}
		return local(0, 0) // a treasure before, empty now
	})
	if local(3, 0) {
		t.Fatal("3,0 answered as a miss in the new epoch")
	}
	if r, err := sub.Dig(ctx, "h", "p", 3, 0); err != nil || !r.Found || r.Treasure != "z" {
		t.Fatalf("dig on z: %+v, %v", r, err)
	}
}

// TestDigLocalTooManyCells: a hunt with more treasures than a node keeps
// is read once (its count only) and every dig of it goes to Redis.
func TestDigLocalTooManyCells(t *testing.T) {
	pub := newEngine(t, Config{})
	sub := newEngine(t, Config{Prefix: pub.prefix})
	const side = 257 // 66,049 cells
	if _, err := pub.Create(ctx, state.Spec{ID: "d", Width: side, Height: side,
		Random: &state.RandomSpec{Count: maxLocalCells + 1, Seed: 3, MaxPoints: 5}}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, admin(t), sub, "d", 1)
	if !sub.AwaitLocal(ctx, "d") {
		t.Fatal("no copy of a watched hunt")
	}
	l := sub.localOf("d")
	eventually(t, "the cells read", func() bool {
		_, _ = sub.DigLocal("d", "p", 0, 0)
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.cells != nil
	})
	l.mu.Lock()
	all, kept := l.cells.all, len(l.cells.cells)
	l.mu.Unlock()
	if !all || kept != 0 {
		t.Fatalf("cells all %v, %d kept: want none kept, all to Redis", all, kept)
	}
	for x := 0; x < side; x++ {
		if _, ok := sub.DigLocal("d", "p", x, x); ok {
			t.Fatalf("dig at %d,%d answered locally", x, x)
		}
	}
}
