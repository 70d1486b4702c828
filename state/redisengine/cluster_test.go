package redisengine

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// The Redis Cluster (3 primaries + 3 replicas) shared by the tests that do
// not kill nodes, started by the first of them and stopped by TestMain.
var (
	sharedOnce    sync.Once
	sharedCluster *redistest.Cluster
	sharedErr     error
)

func clusterOf(t testing.TB) *redistest.Cluster {
	t.Helper()
	sharedOnce.Do(func() { sharedCluster, sharedErr = redistest.NewCluster(redistest.ClusterOptions{}) })
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedCluster
}

func stopSharedCluster() {
	if sharedCluster != nil {
		sharedCluster.Stop()
	}
}

// newClusterEngine is newEngine on cluster c.
func newClusterEngine(t testing.TB, c *redistest.Cluster, cfg Config) *Engine {
	t.Helper()
	cfg.Cluster = c.Addrs()
	return newEngine(t, cfg)
}

func clusterAdmin(t testing.TB, c *redistest.Cluster) *redis.ClusterClient {
	a := c.Client()
	t.Cleanup(func() { _ = a.Close() })
	return a
}

// restoreAfter makes the shared cluster whole again when the test ends:
// the killed node back, as a replica of the primary that replaced it.
func restoreAfter(t *testing.T, c *redistest.Cluster, killed *redistest.Server) {
	t.Cleanup(func() {
		if killed.PID() == 0 {
			if err := killed.Restart(); err != nil {
				t.Error(err)
				return
			}
		}
		hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := c.WaitHealthy(hctx, 3, 1); err != nil {
			t.Error(err)
		}
	})
}

// TestClusterConformsToMemory: the conformance script of the standalone
// engine, on a Redis Cluster.
func TestClusterConformsToMemory(t *testing.T) {
	c := clusterOf(t)
	conformance(t, newClusterEngine(t, c, Config{HistoryMax: conformanceHmax, WatchReplay: -1}), clusterAdmin(t, c))
}

// TestClusterHuntsOnShards: hunts land on different shards, each hunt's
// keys on the primary that owns its slot (keySlot agrees with CLUSTER
// KEYSLOT), and a hunt's updates travel only through that shard: its
// channel has the watching node's subscription on its owner and none on
// the other primaries. Players are counted across two nodes and a node's
// counts vanish when it closes.
func TestClusterHuntsOnShards(t *testing.T) {
	c := clusterOf(t)
	a := clusterAdmin(t, c)
	pub := newClusterEngine(t, c, Config{})
	sub := newClusterEngine(t, c, Config{Prefix: pub.prefix})
	col := newCollector()
	sub.Subscribe(col.sink)
	prim, err := c.Primaries(ctx)
	if err != nil || len(prim) != 3 {
		t.Fatalf("primaries %v %v", prim, err)
	}
	owners := map[int][]string{}
	var hunts []string
	for i := 0; i < 12; i++ {
		h := fmt.Sprintf("h%d", i)
		if _, err := pub.Create(ctx, state.Spec{ID: h, Width: 2, Height: 1,
			Treasures: []state.Treasure{{ID: "t", X: 1, Y: 0, Points: 3}}}); err != nil {
			t.Fatal(err)
		}
		k := pub.keysOf(h)
		slot, err := c.Slot(ctx, k.meta)
		if err != nil {
			t.Fatal(err)
		}
		if keySlot(k.meta) != slot || keySlot(k.ch) != slot {
			t.Fatalf("keySlot(%s) = %d, CLUSTER KEYSLOT %d", k.meta, keySlot(k.meta), slot)
		}
		o, err := c.Owner(ctx, k.meta)
		if err != nil {
			t.Fatal(err)
		}
		rc := o.Client()
		n, err := rc.Exists(ctx, k.meta, k.treasures).Result()
		rc.Close()
		if err != nil || n != 2 {
			t.Fatalf("hunt %s not on its owner %d: %d keys, %v", h, o.Port, n, err)
		}
		owners[o.Port] = append(owners[o.Port], h)
		hunts = append(hunts, h)
	}
	if len(owners) != 3 {
		t.Fatalf("12 hunts on %d shards: %v", len(owners), owners)
	}
	for _, h := range hunts {
		watchAndWait(t, a, sub, h, 1)
	}
	for _, p := range prim {
		rc := p.Client()
		for _, h := range hunts {
			ch := pub.keysOf(h).ch
			n, err := rc.PubSubShardNumSub(ctx, ch).Result()
			if err != nil {
				t.Fatal(err)
			}
			want := int64(0)
			if slices.Contains(owners[p.Port], h) {
				want = 1
			}
			if n[ch] != want {
				t.Fatalf("shard %d: %d subscribers of %s, want %d", p.Port, n[ch], h, want)
			}
		}
		rc.Close()
	}
	for _, h := range hunts {
		if _, err := pub.Join(ctx, h, "p1"); err != nil {
			t.Fatal(err)
		}
		st, err := sub.Join(ctx, h, "p2")
		if err != nil || st.Players != 2 {
			t.Fatalf("join %s: %+v %v", h, st, err)
		}
		if r, err := pub.Dig(ctx, h, "p1", 1, 0); err != nil || !r.Found {
			t.Fatalf("dig %s: %+v %v", h, r, err)
		}
	}
	// Each hunt: claimed, leaderboard, ended.
	ups := col.waitFor(t, "every hunt's updates", func(ups []state.Update) bool { return len(ups) >= 3*len(hunts) })
	per := map[string][]state.Kind{}
	for _, u := range ups {
		per[u.Hunt] = append(per[u.Hunt], u.Kind)
	}
	for _, h := range hunts {
		if want := []state.Kind{state.KindClaimed, state.KindLeaderboard, state.KindEnded}; !slices.Equal(per[h], want) {
			t.Fatalf("hunt %s: %v, want %v", h, per[h], want)
		}
	}
	ids, err := sub.Hunts(ctx)
	if err != nil || !slices.Equal(ids, []string{"h0", "h1", "h10", "h11", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"}) {
		t.Fatalf("hunts %v %v", ids, err)
	}
	nodes, err := pub.Nodes(ctx)
	if err != nil || len(nodes) != 2 {
		t.Fatalf("nodes %v %v", nodes, err)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	for _, h := range hunts {
		if st, err := pub.Status(ctx, h); err != nil || st.Players != 1 {
			t.Fatalf("status %s after a node closed: %+v %v", h, st, err)
		}
	}
}

// TestClusterCrashedNodeCounts: a node that stops beating (a crash) drops
// out of every hunt's player count once its counts expire, by Redis's
// clock, on every shard.
func TestClusterCrashedNodeCounts(t *testing.T) {
	c := clusterOf(t)
	a := newClusterEngine(t, c, Config{HeartbeatTTL: 300 * time.Millisecond})
	b := newClusterEngine(t, c, Config{Prefix: a.prefix, HeartbeatTTL: 300 * time.Millisecond})
	hunts := []string{"x", "y", "z"}
	for _, h := range hunts {
		if _, err := a.Create(ctx, state.Spec{ID: h, Width: 1, Height: 1}); err != nil {
			t.Fatal(err)
		}
		for _, e := range []*Engine{a, b} {
			if _, err := e.Join(ctx, h, "p"); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.stopHeartbeat()
	// Players 1, not 0: a's counts, set when b's were, outlive the TTL
	// because a's heartbeat renews them.
	eventually(t, "b's counts to expire", func() bool {
		for _, h := range hunts {
			st, err := a.Status(ctx, h)
			if err != nil || st.Players != 1 {
				return false
			}
		}
		return true
	})
}

// TestClusterFailover: a primary is killed with SIGKILL mid-game. Its
// replica is promoted, the engines carry on by themselves (calls fail
// during the failover and succeed after it, the watching node's
// subscription moves to the new primary and fills what it missed), and a
// player who saw updates up to some seq resumes from it with nothing lost:
// with WaitReplicas 1 every answered write was on the replica, so the
// history after the failover holds exactly what was delivered before it.
func TestClusterFailover(t *testing.T) {
	c := clusterOf(t)
	digger := newClusterEngine(t, c, Config{WaitReplicas: 1, WaitTimeout: 2 * time.Second})
	watcher := newClusterEngine(t, c, Config{Prefix: digger.prefix})
	col := newCollector()
	watcher.Subscribe(col.sink)
	a := clusterAdmin(t, c)

	// One hunt per shard, 20 treasures in a row each.
	const cells = 20
	var ts []state.Treasure
	for x := range cells {
		ts = append(ts, state.Treasure{ID: fmt.Sprintf("t%d", x), X: x, Y: 0, Points: int64(x + 1)})
	}
	byOwner := map[int]string{}
	epochs := map[string]uint64{}
	for i := 0; len(byOwner) < 3; i++ {
		h := fmt.Sprintf("f%d", i)
		o, err := c.Owner(ctx, digger.keysOf(h).meta)
		if err != nil {
			t.Fatal(err)
		}
		if byOwner[o.Port] != "" {
			continue
		}
		byOwner[o.Port] = h
		st, err := digger.Create(ctx, state.Spec{ID: h, Width: cells, Height: 1, Treasures: ts})
		if err != nil {
			t.Fatal(err)
		}
		epochs[h] = st.Epoch
		watchAndWait(t, a, watcher, h, 1)
	}
	var hunts []string
	for _, h := range byOwner {
		hunts = append(hunts, h)
	}
	slices.Sort(hunts)

	dig := func(h string, x int) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, err := digger.Dig(ctx, h, fmt.Sprintf("p%d", x%3), x, 0)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("dig %s %d: %v", h, x, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for x := 0; x < cells/2; x++ {
		for _, h := range hunts {
			dig(h, x)
		}
	}
	// Claimed and leaderboard for each dig.
	col.waitFor(t, "the first half", func(ups []state.Update) bool { return len(ups) == 3*cells })
	if n := digger.WaitShort(); n != 0 {
		t.Fatalf("%d writes answered before a replica had them", n)
	}
	seen := map[string]uint64{}
	for _, u := range reliable(col.snapshot(), "") {
		seen[u.Hunt] = max(seen[u.Hunt], u.Seq)
	}

	victim := hunts[0]
	old, err := c.Owner(ctx, digger.keysOf(victim).meta)
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	restoreAfter(t, c, old)
	// The game goes on at once: digs fail until the replica is promoted
	// and the engine's slot map follows, then succeed, with no restart.
	for _, h := range hunts {
		dig(h, cells/2)
	}
	now, err := c.Owner(ctx, digger.keysOf(victim).meta)
	if err != nil || now == old {
		t.Fatalf("owner of %s after the failover: %v %v", victim, now, err)
	}
	// The promoted primary has no replica until the old one comes back as
	// its replica: meanwhile each write of its hunts waits WaitTimeout.
	if err := old.Restart(); err != nil {
		t.Fatal(err)
	}
	hctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.WaitHealthy(hctx, 3, 1); err != nil {
		t.Fatal(err)
	}
	short := digger.WaitShort()
	for x := cells/2 + 1; x < cells; x++ {
		for _, h := range hunts {
			dig(h, x)
		}
	}
	if n := digger.WaitShort(); n != short {
		t.Fatalf("%d writes answered before a replica had them, with the old primary back as a replica", n-short)
	}

	// The watcher's stream of each hunt: every seq once, in order, through
	// the ended update, whatever the failover cost its subscription.
	ups := col.waitFor(t, "every hunt to end", func(ups []state.Update) bool {
		n := 0
		for _, u := range ups {
			if u.Kind == state.KindEnded {
				n++
			}
		}
		return n == len(hunts)
	})
	show := func(u state.Update) string {
		return fmt.Sprintf("%d %s %s %s %d %s", u.Seq, u.Kind, u.Treasure, u.Player, u.Points, u.Data)
	}
	for _, h := range hunts {
		var stream []string
		for i, u := range reliable(ups, h) {
			if u.Seq != uint64(i+1) || u.Epoch != epochs[h] {
				t.Fatalf("hunt %s: update %d has seq %d epoch %d", h, i, u.Seq, u.Epoch)
			}
			stream = append(stream, show(u))
		}
		// A player who saw up to seen[h] before the kill resumes there.
		resumed, ok, err := digger.History(ctx, h, epochs[h], seen[h])
		if err != nil || !ok {
			t.Fatalf("resume %s at %d: ok %v, %v", h, seen[h], ok, err)
		}
		var got []string
		for _, u := range resumed {
			got = append(got, show(u))
		}
		if want := stream[seen[h]:]; !slices.Equal(got, want) {
			t.Fatalf("hunt %s resumed at %d:\n got  %v\n want %v", h, seen[h], got, want)
		}
		// What the player saw before the kill is what Redis holds now.
		all, ok, err := watcher.History(ctx, h, epochs[h], 0)
		if err != nil || !ok {
			t.Fatalf("history %s: %v %v", h, ok, err)
		}
		var held []string
		for _, u := range all {
			held = append(held, show(u))
		}
		if !slices.Equal(held, stream) {
			t.Fatalf("hunt %s: history after the failover differs from what was delivered:\n held %v\n seen %v", h, held, stream)
		}
	}
	if g := watcher.Gaps(); g != 0 {
		t.Fatalf("%d gaps", g)
	}
	t.Logf("victim %s: primary %d -> %d; watcher filled %d updates", victim, old.Port, now.Port, watcher.Filled())
}

// TestClusterFailoverMidDig: without WaitReplicas, the primary of a hunt
// is killed with SIGKILL while digs run against it. Whatever the failover
// lost, no one is served wrong content: within an epoch every seq the
// watching node delivered has one content, and a player who resumes with
// the last seq it saw before the kill is either served exactly what Redis
// now holds after it, with what it saw still what Redis holds, or told to
// reset (the hunt took a new epoch: Epoch integrity).
func TestClusterFailoverMidDig(t *testing.T) {
	c := clusterOf(t)
	digger := newClusterEngine(t, c, Config{})
	watcher := newClusterEngine(t, c, Config{Prefix: digger.prefix})
	col := newCollector()
	watcher.Subscribe(col.sink)
	a := clusterAdmin(t, c)
	const side = 40 // every cell a treasure: every dig that lands claims
	st, err := digger.Create(ctx, state.Spec{ID: "v", Width: side, Height: side,
		Random: &state.RandomSpec{Count: side * side, Seed: 7, MaxPoints: 9}})
	if err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, watcher, "v", 1)
	var acked atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	var stopOnce sync.Once
	halt := func() { stopOnce.Do(func() { close(stop) }); <-done }
	// A failed test stops the digger too, before the engines close under it.
	t.Cleanup(halt)
	go func() {
		defer close(done)
		for cell := 0; cell < side*side; cell++ {
			select {
			case <-stop:
				return
			default:
			}
			// Errors during the failover are expected: the cell is
			// skipped, as a player would dig elsewhere, after a pause as a
			// client backs off (without it a refused connection fails at
			// once and the loop ran out of cells before the promotion).
			r, err := digger.Dig(ctx, "v", playerNames[cell%7], cell%side, cell/side)
			if err != nil {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				continue
			}
			if r.Found {
				acked.Add(1)
			}
		}
	}()
	eventually(t, "digs before the kill", func() bool { return acked.Load() >= 50 })
	old, err := c.Owner(ctx, digger.keysOf("v").meta)
	if err != nil {
		t.Fatal(err)
	}
	old.Kill()
	restoreAfter(t, c, old)
	seen := reliable(col.snapshot(), "v") // what a player had when its node lost Redis
	last := seen[len(seen)-1]
	n := acked.Load()
	// The promotion takes the cluster's node timeout plus an election, and
	// longer on a loaded machine: TestClusterFailover allows 30 s too.
	for deadline := time.Now().Add(30 * time.Second); acked.Load() < n+50; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for digs after the failover (%d acknowledged before the kill, %d now)", n, acked.Load())
		}
	}
	halt()

	// The watching node's stream reaches what Redis holds now.
	var now state.Status
	eventually(t, "the stream to catch up", func() bool {
		if now, err = digger.Status(ctx, "v"); err != nil {
			return false
		}
		ups := reliable(col.snapshot(), "v")
		u := ups[len(ups)-1]
		return u.Epoch == now.Epoch && u.Seq == now.Seq
	})
	content := map[string]string{}
	for _, u := range reliable(col.snapshot(), "v") {
		k := fmt.Sprint(u.Epoch, "/", u.Seq)
		v := fmt.Sprint(u.Kind, u.Treasure, u.Player, u.Points)
		if w, ok := content[k]; ok && w != v {
			t.Fatalf("seq %s delivered as %s and as %s", k, w, v)
		}
		content[k] = v
	}
	resumed, ok, err := watcher.History(ctx, "v", last.Epoch, last.Seq)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		if now.Epoch == st.Epoch {
			t.Fatalf("resume at %d refused while the hunt kept its epoch", last.Seq)
		}
		t.Logf("the failover lost writes the player saw: reset (epoch %d -> %d, %d digs acknowledged)", st.Epoch, now.Epoch, acked.Load())
		return
	}
	if now.Epoch != last.Epoch {
		t.Fatalf("resume served under epoch %d, the hunt has %d", last.Epoch, now.Epoch)
	}
	held, ok, err := watcher.History(ctx, "v", last.Epoch, 0)
	if err != nil || !ok {
		t.Fatalf("history: %v %v", ok, err)
	}
	for _, u := range held {
		if u.Seq > last.Seq {
			break
		}
		if w := content[fmt.Sprint(u.Epoch, "/", u.Seq)]; w != fmt.Sprint(u.Kind, u.Treasure, u.Player, u.Points) {
			t.Fatalf("seq %d seen as %s, Redis holds %+v", u.Seq, w, u)
		}
	}
	for i, u := range resumed {
		if u.Seq != last.Seq+uint64(i)+1 {
			t.Fatalf("resume at %d: update %d has seq %d", last.Seq, i, u.Seq)
		}
	}
	t.Logf("no write the player saw was lost; resumed %d updates after seq %d", len(resumed), last.Seq)
}
