package redisengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

var ctx = context.Background()

// prefixes makes each engine group's keys its own, across -count runs too.
var prefixes atomic.Uint64

func newEngine(t testing.TB, cfg Config) *Engine {
	t.Helper()
	if len(cfg.Cluster) == 0 && cfg.URL == "" {
		cfg.URL = redisURL // the shared server, unless the test has its own
	}
	if cfg.Prefix == "" {
		cfg.Prefix = fmt.Sprintf("t:%s:%d:", t.Name(), prefixes.Add(1))
	}
	e, err := New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func admin(t testing.TB) *redis.Client {
	opt, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// collector is a sink that records updates and signals each arrival.
type collector struct {
	mu  sync.Mutex
	ups []state.Update
	sig chan struct{}
}

func newCollector() *collector { return &collector{sig: make(chan struct{}, 1)} }

func (c *collector) sink(u state.Update) {
	c.mu.Lock()
	c.ups = append(c.ups, u)
	c.mu.Unlock()
	select {
	case c.sig <- struct{}{}:
	default:
	}
}

func (c *collector) snapshot() []state.Update {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ups)
}

// waitFor waits until ok holds for the updates received, or fails.
func (c *collector) waitFor(t *testing.T, what string, ok func([]state.Update) bool) []state.Update {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		if ups := c.snapshot(); ok(ups) {
			return ups
		}
		select {
		case <-c.sig:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; got %d updates", what, len(c.snapshot()))
		}
	}
}

// eventually polls cond until it holds or a deadline passes: for states
// that nothing signals (a TTL expiring, a subscription taking effect).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// numSub is how many connections subscribe to the shard channel ch, asked
// of the node that owns its slot (-1 if it could not be asked).
func numSub(t *testing.T, a redis.UniversalClient, ch string) int64 {
	var c redis.Cmdable = a
	if cc, ok := a.(*redis.ClusterClient); ok {
		m, err := cc.MasterForKey(ctx, ch)
		if err != nil {
			return -1
		}
		c = m
	}
	n, err := c.PubSubShardNumSub(ctx, ch).Result()
	if err != nil {
		return -1
	}
	return n[ch]
}

// watchAndWait watches hunt on e and waits until its subscription is live.
func watchAndWait(t *testing.T, a redis.UniversalClient, e *Engine, hunt string, want int64) {
	t.Helper()
	e.Watch(hunt)
	ch := e.keysOf(hunt).ch
	eventually(t, "subscription to "+ch, func() bool {
		return numSub(t, a, ch) >= want
	})
}

func reliable(ups []state.Update, hunt string) []state.Update {
	var out []state.Update
	for _, u := range ups {
		if u.Hunt == hunt && u.Kind.Reliable() {
			out = append(out, u)
		}
	}
	return out
}

// dialGate holds new connections back, while hold is set, until open is
// closed.
type dialGate struct {
	hold atomic.Bool
	open chan struct{}
}

func newDialGate() *dialGate { return &dialGate{open: make(chan struct{})} }

func (g *dialGate) wait(ctx context.Context) {
	if g.hold.Load() {
		select {
		case <-g.open:
		case <-ctx.Done():
		}
	}
}

// rankBrute ranks players from claims in seq order: score desc, then who
// reached their score first (a zero-point claim by a known player changes
// nothing, as in the state package).
type rankBrute struct {
	score map[string]int64
	tick  map[string]int
	n     int
}

func (r *rankBrute) add(p string, pts int64) {
	if _, ok := r.score[p]; ok && pts == 0 {
		return
	}
	r.n++
	r.score[p] += pts
	r.tick[p] = r.n
}

func (r *rankBrute) order() []state.Entry {
	var es []state.Entry
	for p, s := range r.score {
		es = append(es, state.Entry{Player: p, Score: s})
	}
	sort.Slice(es, func(i, j int) bool {
		if es[i].Score != es[j].Score {
			return es[i].Score > es[j].Score
		}
		return r.tick[es[i].Player] < r.tick[es[j].Player]
	})
	return es
}

func (r *rankBrute) rank(p string) int {
	for i, e := range r.order() {
		if e.Player == p {
			return i + 1
		}
	}
	return 0
}

func top(es []state.Entry) []state.Entry {
	if len(es) > state.TopSize {
		es = es[:state.TopSize]
	}
	return es
}

func TestConcurrentDigsTwoNodes(t *testing.T) {
	a := admin(t)
	// No watch replay: the subscriptions are live before the first dig, and
	// a replay racing the digs would stand the latest leaderboard in for
	// the per-claim ones this test checks.
	n1 := newEngine(t, Config{NodeID: "n1", WatchReplay: -1})
	n2 := newEngine(t, Config{NodeID: "n2", Prefix: n1.prefix, WatchReplay: -1})
	c1, c2 := newCollector(), newCollector()
	n1.Subscribe(c1.sink)
	n2.Subscribe(c2.sink)

	const w, h, count = 12, 10, 40
	spec := state.Spec{ID: "h1", Width: w, Height: h}
	r := rand.New(rand.NewPCG(1, 2))
	for i, c := range r.Perm(w * h)[:count] {
		// Few distinct points, some zero, so that ties and their breaks matter.
		spec.Treasures = append(spec.Treasures, state.Treasure{ID: fmt.Sprintf("tr%d", i), X: c / h, Y: c % h, Points: int64(r.IntN(4))})
	}
	st, err := n1.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st.Epoch == 0 || st.Epoch >= 1<<53 || st.Seq != 0 || st.TreasuresLeft != count || st.State != state.StateOpen {
		t.Fatalf("create status %+v", st)
	}
	watchAndWait(t, a, n1, "h1", 1)
	watchAndWait(t, a, n2, "h1", 2)

	type found struct {
		player string
		res    state.DigResult
	}
	var mu sync.Mutex
	var founds []found
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		e := n1
		if g%2 == 1 {
			e = n2
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := rand.New(rand.NewPCG(uint64(g), 9))
			player := fmt.Sprintf("p%d", g%7)
			for _, c := range rr.Perm(w * h) {
				res, err := e.Dig(ctx, "h1", player, c/h, c%h)
				if errors.Is(err, state.ErrEnded) {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				if res.Found {
					mu.Lock()
					founds = append(founds, found{player, res})
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if len(founds) != count {
		t.Fatalf("%d treasures found, want %d", len(founds), count)
	}
	byTreasure := map[string]int{}
	bySeq := map[uint64]found{}
	for _, f := range founds {
		byTreasure[f.res.Treasure]++
		bySeq[f.res.Seq] = f
	}
	for _, tr := range spec.Treasures {
		if byTreasure[tr.ID] != 1 {
			t.Fatalf("treasure %s claimed %d times", tr.ID, byTreasure[tr.ID])
		}
	}
	for s := uint64(1); s <= count; s++ {
		if _, ok := bySeq[s]; !ok {
			t.Fatalf("no claim has seq %d", s)
		}
	}

	// Both sinks: every reliable update, seq 1..count+1, the same sequence,
	// and a leaderboard right after each claim, with its seq.
	done := func(ups []state.Update) bool { return len(reliable(ups, "h1")) == count+1 }
	u1 := c1.waitFor(t, "n1 updates", done)
	u2 := c2.waitFor(t, "n2 updates", done)
	for _, ups := range [][]state.Update{u1, u2} {
		for i, u := range ups {
			if u.Kind == state.KindClaimed && (i+1 >= len(ups) || ups[i+1].Kind != state.KindLeaderboard || ups[i+1].Seq != u.Seq) {
				t.Fatalf("claimed seq %d not followed by its leaderboard", u.Seq)
			}
		}
	}
	r1, r2 := reliable(u1, "h1"), reliable(u2, "h1")
	for i := range r1 {
		if r1[i].Seq != uint64(i+1) || r1[i].Epoch != st.Epoch {
			t.Fatalf("n1 update %d has seq %d epoch %d", i, r1[i].Seq, r1[i].Epoch)
		}
		a, b := r1[i], r2[i]
		if a.Seq != b.Seq || a.Kind != b.Kind || a.Treasure != b.Treasure || a.Player != b.Player || a.Points != b.Points {
			t.Fatalf("nodes differ at %d: %+v vs %+v", i, a, b)
		}
	}
	if last := r1[count]; last.Kind != state.KindEnded {
		t.Fatalf("last update %v, want ended", last.Kind)
	}

	// Leaderboard: replay the claims in seq order into a brute-force ranking
	// and check every dig's score and rank, every leaderboard's top, and the
	// final top.
	rb := &rankBrute{score: map[string]int64{}, tick: map[string]int{}}
	lbs := map[uint64][]state.Entry{}
	for _, u := range u1 {
		if u.Kind == state.KindLeaderboard {
			lbs[u.Seq] = u.Top
		}
	}
	for s := uint64(1); s <= count; s++ {
		f := bySeq[s]
		if r1[s-1].Player != f.player || r1[s-1].Treasure != f.res.Treasure {
			t.Fatalf("seq %d: update %+v, dig %+v by %s", s, r1[s-1], f.res, f.player)
		}
		rb.add(f.player, f.res.Points)
		if f.res.Score != rb.score[f.player] || f.res.Rank != rb.rank(f.player) {
			t.Fatalf("seq %d: dig score %d rank %d, brute force %d %d", s, f.res.Score, f.res.Rank, rb.score[f.player], rb.rank(f.player))
		}
		if want := top(rb.order()); !slices.Equal(lbs[s], want) {
			t.Fatalf("seq %d: leaderboard %v, brute force %v", s, lbs[s], want)
		}
	}
	final, err := n2.Status(ctx, "h1")
	if err != nil {
		t.Fatal(err)
	}
	want := top(rb.order())
	if !slices.Equal(final.Top, want) || !slices.Equal(r1[count].Top, want) {
		t.Fatalf("final top %v, ended top %v, brute force %v", final.Top, r1[count].Top, want)
	}
	if final.State != state.StateEnded || final.Seq != count+1 || final.TreasuresLeft != 0 {
		t.Fatalf("final status %+v", final)
	}
	if _, err := n1.Dig(ctx, "h1", "p1", 0, 0); !errors.Is(err, state.ErrEnded) {
		t.Fatalf("dig after the end: %v", err)
	}
}

func TestCreateAndErrors(t *testing.T) {
	n1 := newEngine(t, Config{})
	n2 := newEngine(t, Config{Prefix: n1.prefix})
	spec := state.Spec{ID: "r", Width: 30, Height: 20, Random: &state.RandomSpec{Count: 50, Seed: 7, MaxPoints: 100}}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		e := n1
		if i%2 == 1 {
			e = n2
		}
		wg.Add(1)
		go func() { defer wg.Done(); _, errs[i] = e.Create(ctx, spec) }()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, state.ErrExists):
			t.Fatal(err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent creates succeeded, want 1", ok)
	}
	// The random layout is the state package's.
	layout, err := spec.Layout()
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range layout[:5] {
		res, err := n2.Dig(ctx, "r", "p", tr.X, tr.Y)
		if err != nil || !res.Found || res.Treasure != tr.ID || res.Points != tr.Points {
			t.Fatalf("dig %+v: %+v %v", tr, res, err)
		}
	}
	if _, err := n1.Dig(ctx, "r", "p", 30, 0); !errors.Is(err, state.ErrOutOfGrid) {
		t.Fatalf("off grid: %v", err)
	}
	if _, err := n1.Dig(ctx, "nope", "p", 0, 0); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("unknown hunt: %v", err)
	}
	if _, err := n1.Status(ctx, "nope"); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("unknown hunt status: %v", err)
	}
	if _, err := n1.Create(ctx, state.Spec{ID: "bad id", Width: 1, Height: 1}); !errors.Is(err, state.ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	if _, err := n1.Create(ctx, state.Spec{ID: "empty", Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	if res, err := n1.Dig(ctx, "empty", "p", 1, 1); err != nil || res.Found {
		t.Fatalf("dig of a hunt without treasures: %+v %v", res, err)
	}
	ids, err := n2.Hunts(ctx)
	if err != nil || !slices.Equal(ids, []string{"empty", "r"}) {
		t.Fatalf("hunts %v %v", ids, err)
	}
	_ = n1.Close()
	if _, err := n1.Status(ctx, "r"); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestHistoryAcrossNodes(t *testing.T) {
	n1 := newEngine(t, Config{HistoryMax: 8})
	n2 := newEngine(t, Config{HistoryMax: 8, Prefix: n1.prefix})
	st, err := n1.Create(ctx, state.Spec{ID: "h", Width: 4, Height: 4, Treasures: []state.Treasure{{ID: "a", X: 1, Y: 2, Points: 5}, {ID: "b", X: 3, Y: 3, Points: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Publish(ctx, "h", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := n1.Dig(ctx, "h", "p", 1, 2); err != nil {
		t.Fatal(err)
	}
	seq, err := n1.Publish(ctx, "h", []byte(`{"n":2}`))
	if err != nil || seq != 3 {
		t.Fatalf("publish seq %d %v", seq, err)
	}
	ups, ok, err := n2.History(ctx, "h", st.Epoch, 1)
	if err != nil || !ok || len(ups) != 2 {
		t.Fatalf("history: %v %v %v", ups, ok, err)
	}
	if ups[0].Kind != state.KindClaimed || ups[0].Seq != 2 || ups[0].Treasure != "a" || ups[0].Player != "p" || ups[0].Points != 5 ||
		ups[1].Kind != state.KindEvent || ups[1].Seq != 3 || string(ups[1].Data) != `{"n":2}` || ups[1].Hunt != "h" || ups[1].Epoch != st.Epoch {
		t.Fatalf("history %+v", ups)
	}
	if ups, ok, _ := n2.History(ctx, "h", st.Epoch, 3); !ok || len(ups) != 0 {
		t.Fatalf("since = seq: %v %v", ups, ok)
	}
	if _, ok, _ := n2.History(ctx, "h", st.Epoch, 4); ok {
		t.Fatal("since beyond seq is ok")
	}
	if _, ok, _ := n2.History(ctx, "h", st.Epoch+1, 1); ok {
		t.Fatal("another epoch is ok")
	}
	if _, _, err := n2.History(ctx, "nope", st.Epoch, 0); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("unknown hunt: %v", err)
	}
	for i := 0; i < 10; i++ {
		if _, err := n1.Publish(ctx, "h", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// seq 13, 8 held: 6..13.
	if _, ok, _ := n2.History(ctx, "h", st.Epoch, 4); ok {
		t.Fatal("history beyond its count is ok")
	}
	if ups, ok, _ := n2.History(ctx, "h", st.Epoch, 5); !ok || len(ups) != 8 || ups[0].Seq != 6 || ups[7].Seq != 13 {
		t.Fatalf("history at the count bound: %d %v", len(ups), ok)
	}
}

func TestHistoryAge(t *testing.T) {
	n := newEngine(t, Config{HistoryAge: 300 * time.Millisecond})
	st, err := n.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	if ups, ok, _ := n.History(ctx, "h", st.Epoch, 0); !ok || len(ups) != 1 {
		t.Fatalf("fresh history: %v %v", ups, ok)
	}
	eventually(t, "history to age out", func() bool {
		_, ok, err := n.History(ctx, "h", st.Epoch, 0)
		return err == nil && !ok
	})
	if ups, ok, _ := n.History(ctx, "h", st.Epoch, 1); !ok || len(ups) != 0 {
		t.Fatalf("since = seq after ageing: %v %v", ups, ok)
	}
}

func TestPlayersAcrossNodes(t *testing.T) {
	ttl := 300 * time.Millisecond
	n1 := newEngine(t, Config{HeartbeatTTL: ttl})
	n2 := newEngine(t, Config{HeartbeatTTL: ttl, Prefix: n1.prefix})
	n3 := newEngine(t, Config{HeartbeatTTL: ttl, Prefix: n1.prefix})
	if _, err := n1.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []*Engine{n1, n1, n2, n2, n2, n3} {
		if _, err := e.Join(ctx, "h", "p"); err != nil {
			t.Fatal(err)
		}
	}
	if err := n3.Leave(ctx, "h", "p"); err != nil {
		t.Fatal(err)
	}
	if err := n3.Leave(ctx, "h", "p"); err != nil { // never below zero
		t.Fatal(err)
	}
	st, err := n3.Join(ctx, "h", "p")
	if err != nil || st.Players != 6 {
		t.Fatalf("players %d, want 6 (%v)", st.Players, err)
	}
	if _, err := n1.Join(ctx, "nope", "p"); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("join unknown: %v", err)
	}
	// A crashed node: its heartbeat stops and its count goes with its TTL.
	n2.stopHeartbeat()
	eventually(t, "n2's players to expire", func() bool {
		st, err := n1.Status(ctx, "h")
		return err == nil && st.Players == 3
	})
	// The live nodes' counts outlast several TTLs.
	time.Sleep(3 * ttl) // not synchronisation: the heartbeat must hold over time
	if st, _ := n1.Status(ctx, "h"); st.Players != 3 {
		t.Fatalf("players %d after live heartbeats, want 3", st.Players)
	}
	// A closed node's count goes at once.
	if err := n3.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := n1.Status(ctx, "h"); st.Players != 2 {
		t.Fatalf("players %d after close, want 2", st.Players)
	}
}

func TestWatchAndEvents(t *testing.T) {
	a := admin(t)
	pub := newEngine(t, Config{})
	sub := newEngine(t, Config{Prefix: pub.prefix, WatchReplay: -1})
	c := newCollector()
	sub.Subscribe(c.sink)
	for _, id := range []string{"w", "x", "s"} {
		if _, err := pub.Create(ctx, state.Spec{ID: id, Width: 1, Height: 1}); err != nil {
			t.Fatal(err)
		}
	}
	sub.Watch("w")
	watchAndWait(t, a, sub, "w", 1) // nested: two Watch calls
	watchAndWait(t, a, sub, "s", 1)
	data := []byte("{\"a\":\"b|c\\n\"}\n|x|\x00\xff\xfe")
	if _, err := pub.Publish(ctx, "x", []byte(`{"not":"watched"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "w", data); err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the event", func(ups []state.Update) bool { return len(ups) == 1 })
	if ups[0].Hunt != "w" || ups[0].Kind != state.KindEvent || !bytes.Equal(ups[0].Data, data) || ups[0].Seq != 1 {
		t.Fatalf("got %+v", ups[0])
	}
	// One Unwatch of two: still watched.
	sub.Unwatch("w")
	if _, err := pub.Publish(ctx, "w", []byte(`2`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "the second event", func(ups []state.Update) bool { return len(ups) == 2 })
	sub.Unwatch("w")
	ch := sub.keysOf("w").ch
	eventually(t, "unsubscribe", func() bool {
		return numSub(t, a, ch) == 0
	})
	if _, err := pub.Publish(ctx, "w", []byte(`3`)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.End(ctx, "s"); err != nil {
		t.Fatal(err)
	}
	// The sentinel's ended comes after w's event would have.
	ups = c.waitFor(t, "ended", func(ups []state.Update) bool { return len(ups) >= 3 })
	if len(ups) != 3 || ups[2].Hunt != "s" || ups[2].Kind != state.KindEnded || ups[2].Seq != 1 || ups[2].Top == nil {
		t.Fatalf("got %+v", ups)
	}
	if _, err := pub.End(ctx, "s"); !errors.Is(err, state.ErrEnded) {
		t.Fatalf("second end: %v", err)
	}
	if _, err := pub.Publish(ctx, "s", []byte(`1`)); !errors.Is(err, state.ErrEnded) {
		t.Fatalf("publish after end: %v", err)
	}
}

// TestWatchReplay: updates published before the subscription took effect
// reach the sink from the history.
func TestWatchReplay(t *testing.T) {
	pub := newEngine(t, Config{})
	sub := newEngine(t, Config{Prefix: pub.prefix})
	c := newCollector()
	sub.Subscribe(c.sink)
	if _, err := pub.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := pub.Publish(ctx, "h", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	sub.Watch("h")
	if _, err := pub.Publish(ctx, "h", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "4 events", func(ups []state.Update) bool { return len(reliable(ups, "h")) >= 4 })
	for i, u := range ups {
		if u.Seq != uint64(i+1) {
			t.Fatalf("update %d has seq %d: %+v", i, u.Seq, ups)
		}
	}
}

// cutSubscriber sets up a publishing node and a subscribing node (cfg's
// HistoryMax on both, the subscriber with cfg's Logger) on hunt "h",
// delivers one event (seq 1, data "0") to the subscriber, then kills its
// pub/sub connection with the reconnect held at the gate until the caller
// opens it.
func cutSubscriber(t *testing.T, cfg Config) (a *redis.Client, pub, sub *Engine, gate *dialGate, c *collector) {
	t.Helper()
	a = admin(t)
	pub = newEngine(t, Config{HistoryMax: cfg.HistoryMax})
	gate = newDialGate()
	sub = newEngine(t, Config{dialGate: gate.wait, HistoryMax: cfg.HistoryMax, Logger: cfg.Logger, Prefix: pub.prefix, WatchReplay: -1})
	c = newCollector()
	sub.Subscribe(c.sink)
	if _, err := pub.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, sub, "h", 1)
	if _, err := pub.Publish(ctx, "h", []byte(`0`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "first event", func(ups []state.Update) bool { return len(ups) == 1 })
	gate.hold.Store(true) // the reconnect waits until the updates are published
	if err := a.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	return a, pub, sub, gate, c
}

// TestReconnectFill kills the pub/sub connection while another node
// publishes: the updates missed meanwhile come from the history, in order.
func TestReconnectFill(t *testing.T) {
	_, pub, sub, gate, c := cutSubscriber(t, Config{})
	const n = 20
	for i := 1; i <= n; i++ {
		if _, err := pub.Publish(ctx, "h", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	close(gate.open)
	ups := c.waitFor(t, "all events", func(ups []state.Update) bool { return len(ups) >= n+1 })
	for i, u := range ups {
		if u.Seq != uint64(i+1) || string(u.Data) != fmt.Sprint(i) {
			t.Fatalf("update %d: seq %d data %q", i, u.Seq, u.Data)
		}
	}
	if sub.Gaps() != 0 || sub.Filled() != n {
		t.Fatalf("%d gaps, %d filled: the reconnect was not exercised", sub.Gaps(), sub.Filled())
	}
}

// TestUnknownHuntsNotCached: calls on hunts that do not exist answer
// ErrUnknownHunt and leave nothing behind in the engine's key cache; a
// hunt's keys are cached once it is watched here.
func TestUnknownHuntsNotCached(t *testing.T) {
	n := newEngine(t, Config{})
	for i := 0; i < 50; i++ {
		h := fmt.Sprint("nope", i)
		if _, err := n.Status(ctx, h); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("status %s: %v", h, err)
		}
		if _, err := n.Dig(ctx, h, "p", 0, 0); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("dig %s: %v", h, err)
		}
	}
	if _, err := n.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, admin(t), n, "h", 1)
	var cached []any
	n.keys.Range(func(k, _ any) bool { cached = append(cached, k); return true })
	if len(cached) != 1 || cached[0] != "h" {
		t.Fatalf("key cache holds %v, want [h]", cached)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, s := range []string{"", "c", "c|", "q|1|2|3|", "c|1|2|3|t|p", "l|1|2|3|p", "c|x|2|3|t|p|1", strings.Repeat("|", 9)} {
		if _, err := decodeUpdate("h", s); err == nil {
			t.Fatalf("%q decoded", s)
		}
	}
}

// TestLargeScoresExact plants a score near the largest a hunt can reach
// (state.MaxTreasures * state.MaxPoints < 2^50) and checks that a claim on
// top of it stays exact through the zset and every encoding.
func TestLargeScoresExact(t *testing.T) {
	a := admin(t)
	n := newEngine(t, Config{})
	c := newCollector()
	n.Subscribe(c.sink)
	if _, err := n.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 1, Treasures: []state.Treasure{{ID: "a", X: 0, Y: 0, Points: 3}, {ID: "b", X: 1, Y: 0, Points: 1}}}); err != nil {
		t.Fatal(err)
	}
	k := n.keysOf("h")
	const big = int64(state.MaxTreasures)*state.MaxPoints - 1
	member := "000000000000rich"
	if err := a.HSet(ctx, k.members, "rich", member).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.ZAdd(ctx, k.lb, redis.Z{Score: -float64(big), Member: member}).Err(); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, n, "h", 1)
	res, err := n.Dig(ctx, "h", "rich", 0, 0)
	if err != nil || res.Score != big+3 || res.Rank != 1 {
		t.Fatalf("dig %+v %v, want score %d", res, err, big+3)
	}
	ups := c.waitFor(t, "leaderboard", func(ups []state.Update) bool { return len(ups) >= 2 })
	if ups[1].Kind != state.KindLeaderboard || len(ups[1].Top) != 1 || ups[1].Top[0] != (state.Entry{Player: "rich", Score: big + 3}) {
		t.Fatalf("leaderboard %+v", ups[1])
	}
	st, err := n.Status(ctx, "h")
	if err != nil || st.Top[0].Score != big+3 {
		t.Fatalf("status %+v %v", st, err)
	}
}

// TestReconnectGap: when more updates were missed than the history holds,
// the gap is counted and the stream goes on from the next update.
func TestReconnectGap(t *testing.T) {
	a, pub, sub, gate, c := cutSubscriber(t, Config{HistoryMax: 4})
	for i := 0; i < 10; i++ {
		if _, err := pub.Publish(ctx, "h", []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	close(gate.open)
	eventually(t, "resubscription", func() bool {
		return numSub(t, a, sub.keysOf("h").ch) == 1
	})
	eventually(t, "the gap to be seen", func() bool { return sub.Gaps() > 0 })
	seq, err := pub.Publish(ctx, "h", []byte(`last`))
	if err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the last event", func(ups []state.Update) bool { return len(ups) > 0 && ups[len(ups)-1].Seq == seq })
	// What could be neither received nor filled is skipped; the rest comes
	// in order, once. The gap is reported once, however many updates
	// arrive after it.
	if ups[0].Seq != 1 || len(ups) != 2 || string(ups[len(ups)-1].Data) != "last" {
		t.Fatalf("got %d updates of %d, first seq %d", len(ups), seq, ups[0].Seq)
	}
	for i := 1; i < len(ups); i++ {
		if ups[i].Seq <= ups[i-1].Seq {
			t.Fatalf("seq %d after %d", ups[i].Seq, ups[i-1].Seq)
		}
	}
	if sub.Gaps() != 1 {
		t.Fatalf("%d gaps reported, want 1", sub.Gaps())
	}
}

func TestDecodePlayerWithBar(t *testing.T) {
	u, err := decodeUpdate("h", "c|3|9|1000|t1|a|b|7")
	if err != nil || u.Player != "a|b" || u.Points != 7 || u.Treasure != "t1" || u.Seq != 3 || u.Epoch != 9 || u.At.UnixMilli() != 1000 {
		t.Fatalf("%+v %v", u, err)
	}
}

// TestNodesListsLiveNodes runs two engines with their own node ids on one
// prefix: each lists both, sorted, with self set on its own id only, and
// after one closes the other lists itself alone. A node of another prefix
// (one the first matches as a glob) is listed by neither.
func TestNodesListsLiveNodes(t *testing.T) {
	base := fmt.Sprintf("t:%s:%d:", t.Name(), prefixes.Add(1))
	prefix := base + "*:"
	a := newEngine(t, Config{Prefix: prefix, NodeID: "node-b"})
	b := newEngine(t, Config{Prefix: prefix, NodeID: "node-a"})
	newEngine(t, Config{Prefix: base + "other:", NodeID: "ghost"})
	for _, e := range []*Engine{a, b} {
		got, err := e.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := []state.NodeInfo{{ID: "node-a", Self: e == b}, {ID: "node-b", Self: e == a}}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: Nodes = %v, want %v", e.NodeID(), got, want)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []state.NodeInfo{{ID: "node-b", Self: true}}; !slices.Equal(got, want) {
		t.Fatalf("after close: Nodes = %v, want %v", got, want)
	}
	if _, err := b.Nodes(ctx); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Nodes on a closed engine: %v, want ErrClosed", err)
	}
}

// TestNodesDropCrashedNode: a node that stops its heartbeat without closing
// (a crash) leaves the node list once its heartbeat expires.
func TestNodesDropCrashedNode(t *testing.T) {
	ttl := 300 * time.Millisecond
	a := newEngine(t, Config{HeartbeatTTL: ttl, NodeID: "live"})
	b := newEngine(t, Config{HeartbeatTTL: ttl, NodeID: "crashed", Prefix: a.prefix})
	if got, err := a.Nodes(ctx); err != nil || len(got) != 2 {
		t.Fatalf("Nodes = %v, %v; want both", got, err)
	}
	b.stopHeartbeat()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := a.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Equal(got, []state.NodeInfo{{ID: "live", Self: true}}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Nodes = %v long after the crashed node's heartbeat expired", got)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The live node keeps its entry across its own renewals: past the
	// expiry its entry had a moment ago, by Redis's clock.
	adm := admin(t)
	exp, err := adm.ZScore(ctx, a.nodesKey, "live").Result()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "Redis's clock to pass the live node's expiry", func() bool {
		return redisNow(t, adm).UnixMilli() > int64(exp)
	})
	if got, err := a.Nodes(ctx); err != nil || !slices.Equal(got, []state.NodeInfo{{ID: "live", Self: true}}) {
		t.Fatalf("after renewals: Nodes = %v, %v", got, err)
	}
}
