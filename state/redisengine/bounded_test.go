package redisengine

import (
	"fmt"
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
)

// TestCrashedNodeCountPruned: the connection count of a node that crashed
// (heartbeat stopped, no Close) leaves the nodes:conns hash once a live
// node's heartbeat prunes its registry entry, so the hash does not keep a
// field for every node that ever crashed. The live node's stays.
func TestCrashedNodeCountPruned(t *testing.T) {
	ttl := 300 * time.Millisecond
	a := newEngine(t, Config{HeartbeatTTL: ttl, NodeID: "live"})
	b := newEngine(t, Config{HeartbeatTTL: ttl, NodeID: "crashed", Prefix: a.prefix})
	a.SetLoad(func() int64 { return 3 })
	b.SetLoad(func() int64 { return 5 })
	adm := admin(t)
	if n, err := adm.HLen(ctx, a.loadKey).Result(); err != nil || n != 2 {
		t.Fatalf("counts %d %v, want both nodes'", n, err)
	}
	b.stopHeartbeat()
	eventually(t, "the crashed node's count to go", func() bool {
		ok, err := adm.HExists(ctx, a.loadKey, "crashed").Result()
		return err == nil && !ok
	})
	if v, err := adm.HGet(ctx, a.loadKey, "live").Result(); err != nil || v != "3" {
		t.Fatalf("live node's count %q %v", v, err)
	}
}

// TestUnwatchDropsReaderState: the pub/sub reader's per-hunt track and the
// cached keys of a hunt go when the node stops watching it, so a node that
// watched many hunts over its life holds state for those it watches now.
func TestUnwatchDropsReaderState(t *testing.T) {
	e := newEngine(t, Config{})
	a := admin(t)
	const n = 20
	for i := range n {
		id := fmt.Sprintf("h%d", i)
		if _, err := e.Create(ctx, state.Spec{ID: id, Width: 2, Height: 2}); err != nil {
			t.Fatal(err)
		}
		watchAndWait(t, a, e, id, 1)
	}
	keys := func() int {
		c := 0
		e.keys.Range(func(_, _ any) bool { c++; return true })
		return c
	}
	eventually(t, "a track per watched hunt", func() bool { return e.tracked.Load() == n })
	if k := keys(); k != n {
		t.Fatalf("cached keys %d, want %d", k, n)
	}
	for i := range n - 1 {
		id := fmt.Sprintf("h%d", i)
		e.Unwatch(id)
		ch := e.keysOf(id).ch
		eventually(t, "unsubscribed from "+ch, func() bool { return numSub(t, a, ch) == 0 })
	}
	eventually(t, "one track left", func() bool { return e.tracked.Load() == 1 })
	eventually(t, "one hunt's keys left", func() bool { return keys() == 1 })
	// The hunt still watched works as before.
	c := newCollector()
	e.Subscribe(c.sink)
	last := fmt.Sprintf("h%d", n-1)
	if _, err := e.Publish(ctx, last, []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the event", func(ups []state.Update) bool { return len(ups) == 1 && ups[0].Hunt == last })
}
