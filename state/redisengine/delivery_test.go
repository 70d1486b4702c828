package redisengine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// redisNow reads Redis's clock, the one that stamps updates.
func redisNow(t *testing.T, a *redis.Client) time.Time {
	t.Helper()
	now, err := a.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// cutBeforeWatch sets up a publishing node and a subscribing node (cfg's
// WatchReplay and Logger) with hunts "h" and "other", watches "other" to
// put the subscriber's connection in pub/sub mode, then kills that
// connection with the reconnect held at the gate until the caller opens it:
// a Watch of "h" made now subscribes only once the gate opens.
func cutBeforeWatch(t *testing.T, cfg Config) (a *redis.Client, pub, sub *Engine, gate *dialGate, c *collector) {
	t.Helper()
	a = admin(t)
	pub = newEngine(t, Config{})
	gate = newDialGate()
	sub = newEngine(t, Config{dialGate: gate.wait, Prefix: pub.prefix, WatchReplay: cfg.WatchReplay, Logger: cfg.Logger})
	c = newCollector()
	sub.Subscribe(c.sink)
	for _, id := range []string{"h", "other"} {
		if _, err := pub.Create(ctx, state.Spec{ID: id, Width: 1, Height: 1}); err != nil {
			t.Fatal(err)
		}
	}
	watchAndWait(t, a, sub, "other", 1)
	gate.hold.Store(true)
	if err := a.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	return a, pub, sub, gate, c
}

// TestWatchSlowSubscriptionNoGap follows the gateway's join (Watch, then
// Join, then live updates) while the pub/sub connection is down, so the
// subscription takes effect long after Watch: an update published after
// Join, however long before the subscription, must still reach the sink,
// since the gateway relies on the stream after Join being complete.
func TestWatchSlowSubscriptionNoGap(t *testing.T) {
	// The margin covers the time between the replay's window being
	// computed and Redis running the history read (a replay that missed
	// "early" failed once in 80 -race runs at 20 ms on a loaded machine);
	// the wait below puts the subscription 5 margins after "early".
	const margin = 100 * time.Millisecond
	a, pub, sub, gate, c := cutBeforeWatch(t, Config{WatchReplay: margin})
	sub.Watch("h")
	st, err := sub.Join(ctx, "h", "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "h", []byte(`"early"`)); err != nil {
		t.Fatal(err)
	}
	hist, ok, err := pub.History(ctx, "h", st.Epoch, st.Seq)
	if err != nil || !ok || len(hist) != 1 {
		t.Fatalf("history %v %v %v", hist, ok, err)
	}
	// The subscription takes effect well after Watch, by Redis's clock.
	eventually(t, "Redis's clock to pass the replay margin", func() bool {
		return redisNow(t, a).After(hist[0].At.Add(5 * margin))
	})
	close(gate.open)
	ch := sub.keysOf("h").ch
	eventually(t, "subscription", func() bool {
		return numSub(t, a, ch) == 1
	})
	last, err := pub.Publish(ctx, "h", []byte(`"late"`))
	if err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the late event", func(ups []state.Update) bool {
		r := reliable(ups, "h")
		return len(r) > 0 && r[len(r)-1].Seq == last
	})
	var seqs []uint64
	for _, u := range reliable(ups, "h") {
		seqs = append(seqs, u.Seq)
	}
	if !slices.Equal(seqs, []uint64{st.Seq + 1, last}) {
		t.Fatalf("sink got seqs %v after Join at seq %d, want %d and %d", seqs, st.Seq, st.Seq+1, last)
	}
}

// TestConformsToMemory runs one script of calls against the memory engine
// and the Redis engine and requires the same answers, errors, updates and
// history (epochs aside, which each engine draws): the gateway must not be
// able to tell them apart on one node.
func TestConformsToMemory(t *testing.T) {
	// No watch replay: the subscription is live before the first call, and
	// a replay racing the calls would stand the latest leaderboard in for
	// per-claim ones.
	conformance(t, newEngine(t, Config{HistoryMax: conformanceHmax, WatchReplay: -1}), admin(t))
}

// conformanceHmax is the HistoryMax of both engines in conformance.
const conformanceHmax = 3

// conformance is TestConformsToMemory's script, against red, an engine with
// HistoryMax conformanceHmax and no watch replay; a is a client of its Redis.
func conformance(t *testing.T, red *Engine, a redis.UniversalClient) {
	const hmax = conformanceHmax
	mem := state.NewMemory(state.MemoryConfig{HistoryMax: hmax})
	mc, rc := newCollector(), newCollector()
	mem.Subscribe(mc.sink)
	red.Subscribe(rc.sink)

	spec := state.Spec{ID: "h.1-x_Y", Width: 4, Height: 3, Treasures: []state.Treasure{
		{ID: "a", X: 0, Y: 0, Points: 5}, {ID: "b", X: 1, Y: 0, Points: 5},
		{ID: "c", X: 2, Y: 0, Points: 0}, {ID: "d", X: 3, Y: 2, Points: 7},
		{ID: "e", X: 0, Y: 2, Points: 3}, {ID: "f", X: 1, Y: 2, Points: 2},
	}}
	type run struct {
		e     state.Engine
		epoch uint64
		out   []string
	}
	runs := []*run{{e: mem}, {e: red}}
	for _, r := range runs {
		st, err := r.e.Create(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		r.epoch = st.Epoch
	}
	watchAndWait(t, a, red, spec.ID, 1)
	mem.Watch(spec.ID)

	status := func(r *run) func(state.Status, error) string {
		return func(st state.Status, err error) string {
			if st.Epoch != 0 && st.Epoch != r.epoch {
				return fmt.Sprintf("epoch %d, want %d", st.Epoch, r.epoch)
			}
			st.Epoch = 0
			return fmt.Sprintf("%+v %v", st, err)
		}
	}
	seqs := func(ups []state.Update) []uint64 {
		var s []uint64
		for _, u := range ups {
			s = append(s, u.Seq)
		}
		return s
	}
	history := func(r *run) string {
		st, _ := r.e.Status(ctx, spec.ID)
		var b []string
		for since := uint64(0); since <= st.Seq+1; since++ {
			ups, ok, err := r.e.History(ctx, spec.ID, r.epoch, since)
			b = append(b, fmt.Sprintf("since %d: %v %v %v", since, seqs(ups), ok, err))
		}
		ups, ok, err := r.e.History(ctx, spec.ID, r.epoch+1, 0)
		b = append(b, fmt.Sprintf("other epoch: %v %v %v", seqs(ups), ok, err))
		ups, ok, err = r.e.History(ctx, spec.ID, r.epoch, 1<<60)
		b = append(b, fmt.Sprintf("far since: %v %v %v", seqs(ups), ok, err))
		_, ok, err = r.e.History(ctx, "nope", r.epoch, 1<<60)
		b = append(b, fmt.Sprintf("unknown hunt, far since: %v %v", ok, err))
		_, ok, err = r.e.History(ctx, "nope", r.epoch, 0)
		b = append(b, fmt.Sprintf("unknown hunt: %v %v", ok, err))
		return fmt.Sprint(b)
	}
	steps := []func(r *run) string{
		func(r *run) string { return status(r)(r.e.Join(ctx, spec.ID, "p1")) },
		func(r *run) string { return status(r)(r.e.Join(ctx, spec.ID, "p2")) },
		func(r *run) string { return fmt.Sprint(r.e.Leave(ctx, spec.ID, "p2")) },
		func(r *run) string { return fmt.Sprint(r.e.Leave(ctx, spec.ID, "p2")) },
		func(r *run) string { return fmt.Sprint(r.e.Leave(ctx, spec.ID, "p2")) },
		// An unknown hunt: the memory engine says so, the Redis engine
		// answers nil rather than wait on Redis (see Engine.Leave).
		func(r *run) string {
			if err := r.e.Leave(ctx, "nope", "p2"); err != nil && !errors.Is(err, state.ErrUnknownHunt) {
				return err.Error()
			}
			return "nil or unknown hunt"
		},
		func(r *run) string { return status(r)(r.e.Join(ctx, "nope", "p1")) },
		func(r *run) string { return status(r)(r.e.Status(ctx, spec.ID)) },
		history,
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 3, 1)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 4, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 0, -1)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, "nope", "p1", 0, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 0, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p2", 0, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		// p2 ties p1 at 5 later: p1 stays first.
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p2", 1, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		// A zero-point claim by a known player changes no place.
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 2, 0)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string { s, err := r.e.Publish(ctx, spec.ID, []byte(`{"x":1}`)); return fmt.Sprint(s, err) },
		func(r *run) string { s, err := r.e.Publish(ctx, "nope", []byte(`1`)); return fmt.Sprint(s, err) },
		// p3 enters at 3, then p1 moves to 8 and p3 to 10.
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p3", 0, 2)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p3", 3, 2)
			return fmt.Sprintf("%+v %v", res, err)
		},
		history,
		func(r *run) string { return status(r)(r.e.Status(ctx, spec.ID)) },
		func(r *run) string { return status(r)(r.e.End(ctx, spec.ID)) },
		func(r *run) string { return status(r)(r.e.End(ctx, spec.ID)) },
		func(r *run) string { return status(r)(r.e.End(ctx, "nope")) },
		func(r *run) string { s, err := r.e.Publish(ctx, spec.ID, []byte(`1`)); return fmt.Sprint(s, err) },
		func(r *run) string {
			res, err := r.e.Dig(ctx, spec.ID, "p1", 9, 9)
			return fmt.Sprintf("%+v %v", res, err)
		},
		func(r *run) string { return status(r)(r.e.Join(ctx, spec.ID, "p4")) },
		history,
		func(r *run) string { ids, err := r.e.Hunts(ctx); return fmt.Sprint(ids, err) },
	}
	for i, step := range steps {
		m, rd := step(runs[0]), step(runs[1])
		if m != rd {
			t.Errorf("step %d:\nmemory %s\nredis  %s", i, m, rd)
		}
	}

	// The same updates, in the same order (At and epoch aside).
	want := mc.snapshot()
	got := rc.waitFor(t, "the updates", func(ups []state.Update) bool { return len(ups) >= len(want) })
	norm := func(ups []state.Update) string {
		var b []string
		for _, u := range ups {
			b = append(b, fmt.Sprintf("%s %d %s %s %d %v %s", u.Hunt, u.Seq, u.Kind, u.Treasure, u.Points, u.Top, u.Data)+" "+u.Player)
		}
		return fmt.Sprint(b)
	}
	if norm(got) != norm(want) {
		t.Fatalf("updates:\nmemory %s\nredis  %s", norm(want), norm(got))
	}
}

// TestReconnectFillLeaderboard: claims missed while the pub/sub connection
// was down come back from the history, and so must the leaderboard they
// changed; a leaderboard is latest-value, so losing the newest one leaves
// clients with a stale top until some later claim.
func TestReconnectFillLeaderboard(t *testing.T) {
	a := admin(t)
	pub := newEngine(t, Config{})
	gate := newDialGate()
	sub := newEngine(t, Config{dialGate: gate.wait, Prefix: pub.prefix, WatchReplay: -1})
	c := newCollector()
	sub.Subscribe(c.sink)
	if _, err := pub.Create(ctx, state.Spec{ID: "h", Width: 3, Height: 1, Treasures: []state.Treasure{
		{ID: "a", X: 0, Y: 0, Points: 5}, {ID: "b", X: 1, Y: 0, Points: 3}, {ID: "c", X: 2, Y: 0, Points: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, sub, "h", 1)
	if _, err := pub.Publish(ctx, "h", []byte(`0`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "first event", func(ups []state.Update) bool { return len(ups) == 1 })
	gate.hold.Store(true)
	if err := a.Do(ctx, "CLIENT", "KILL", "TYPE", "pubsub").Err(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []struct {
		p string
		x int
	}{{"p1", 0}, {"p2", 1}} {
		if res, err := pub.Dig(ctx, "h", d.p, d.x, 0); err != nil || !res.Found {
			t.Fatalf("dig %+v %v", res, err)
		}
	}
	close(gate.open)
	ch := sub.keysOf("h").ch
	eventually(t, "resubscription", func() bool {
		return numSub(t, a, ch) == 1
	})
	last, err := pub.Publish(ctx, "h", []byte(`"last"`))
	if err != nil {
		t.Fatal(err)
	}
	// The leaderboard the fill hands over is as of the fill's last seq: it
	// follows "last" when the fill read the history after that was
	// published (the confirmation came after it), and precedes it
	// otherwise. Either way the last leaderboard is the one of the claims.
	want := []state.Entry{{Player: "p1", Score: 5}, {Player: "p2", Score: 3}}
	ups := c.waitFor(t, "the last event and a leaderboard with the claims", func(ups []state.Update) bool {
		got, board := false, false
		for _, u := range ups {
			got = got || u.Seq == last && u.Kind == state.KindEvent
			board = board || u.Kind == state.KindLeaderboard && slices.Equal(u.Top, want)
		}
		return got && board
	})
	if sub.Filled() == 0 {
		t.Fatal("the reconnect was not exercised")
	}
	var board []state.Entry
	for _, u := range ups {
		if u.Kind == state.KindLeaderboard {
			board = u.Top
		}
	}
	if !slices.Equal(board, want) {
		t.Fatalf("last leaderboard after seq %d: %v, want %v", last, board, want)
	}
}

// logSignal is a log writer that signals each line containing match.
type logSignal struct {
	match string
	hit   chan struct{}
}

func (l *logSignal) Write(p []byte) (int, error) {
	if strings.Contains(string(p), l.match) {
		select {
		case l.hit <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// breakHistory makes hunt's history unreadable (a string where the list
// belongs), so that reading it fails as when Redis is still loading, and
// returns a function that puts the list back.
func breakHistory(t *testing.T, a *redis.Client, e *Engine, hunt string) (restore func()) {
	t.Helper()
	hist := e.keysOf(hunt).hist
	if err := a.Rename(ctx, hist, hist+":aside").Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.Set(ctx, hist, "not a list", 0).Err(); err != nil {
		t.Fatal(err)
	}
	return func() {
		t.Helper()
		if err := a.Rename(ctx, hist+":aside", hist).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// await waits until a log line matched, failing with what after 10 s.
func (l *logSignal) await(t *testing.T, what string) {
	t.Helper()
	select {
	case <-l.hit:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// reopenHistoryBroken opens gate while the history of hunt "h" cannot be
// read, waits for logs to report the failed read (what names it), mends
// the history, publishes one more event (data) and waits until the sink has
// it: it returns every update the sink got and that event's seq.
func reopenHistoryBroken(t *testing.T, a *redis.Client, pub, sub *Engine, gate *dialGate, logs *logSignal, c *collector, what, data string) ([]state.Update, uint64) {
	t.Helper()
	restore := breakHistory(t, a, sub, "h")
	close(gate.open)
	logs.await(t, what+" was not tried")
	restore()
	last, err := pub.Publish(ctx, "h", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the last event", func(ups []state.Update) bool {
		r := reliable(ups, "h")
		return len(r) > 0 && r[len(r)-1].Seq == last
	})
	return ups, last
}

// TestReconnectFillRetriedAfterError: when the history cannot be read at
// the resubscription (Redis still loading after a restart, a timeout), the
// missed updates are still held; the fill must be tried again when the
// next update shows the gap, not be given up as if they were gone.
func TestReconnectFillRetriedAfterError(t *testing.T) {
	logs := &logSignal{match: "missed updates", hit: make(chan struct{}, 1)}
	a, pub, sub, gate, c := cutSubscriber(t, Config{Logger: zerolog.New(logs)})
	for i := 1; i <= 3; i++ {
		if _, err := pub.Publish(ctx, "h", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	// The history answers with an error while the connection comes back.
	ups, _ := reopenHistoryBroken(t, a, pub, sub, gate, logs, c, "the fill at resubscription", `4`)
	for i, u := range ups {
		if u.Seq != uint64(i+1) || string(u.Data) != fmt.Sprint(i) {
			t.Fatalf("update %d: seq %d data %q (of %d)", i, u.Seq, u.Data, len(ups))
		}
	}
	if sub.Gaps() != 0 {
		t.Fatalf("%d gaps reported for updates that were held", sub.Gaps())
	}
}

// TestWatchReplayRetriedAfterError: when the history cannot be read as the
// subscription of a new watch takes effect, what was published between
// Join and then is still replayed, before the next update.
func TestWatchReplayRetriedAfterError(t *testing.T) {
	logs := &logSignal{match: "watch replay", hit: make(chan struct{}, 1)}
	a, pub, sub, gate, c := cutBeforeWatch(t, Config{Logger: zerolog.New(logs)})
	sub.Watch("h")
	st, err := sub.Join(ctx, "h", "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	ups, last := reopenHistoryBroken(t, a, pub, sub, gate, logs, c, "the watch replay", `2`)
	var seqs []uint64
	for _, u := range reliable(ups, "h") {
		seqs = append(seqs, u.Seq)
	}
	if !slices.Equal(seqs, []uint64{st.Seq + 1, last}) {
		t.Fatalf("sink got seqs %v after Join at seq %d", seqs, st.Seq)
	}
}

// TestRedisRestart: Redis restarts and loses its data. Calls fail with an
// engine error meanwhile (never a panic), the pub/sub subscription comes
// back by itself, the lost hunt answers ErrUnknownHunt, and a hunt created
// again reaches the watching node under a new epoch, so clients reset
// rather than resume against history that is gone.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	url := srv.URL()
	mk := func() *Engine {
		e, err := New(ctx, Config{URL: url, HeartbeatTTL: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	pub, sub := mk(), mk()
	c := newCollector()
	sub.Subscribe(c.sink)
	spec := state.Spec{ID: "h", Width: 1, Height: 1}
	st, err := pub.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	opt, _ := redis.ParseURL(url)
	a := redis.NewClient(opt)
	defer a.Close()
	watchAndWait(t, a, sub, "h", 1)
	if _, err := pub.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "first event", func(ups []state.Update) bool { return len(ups) == 1 })

	srv.Kill()
	if _, err := pub.Status(ctx, "h"); err == nil || errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("status with Redis down: %v", err)
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	// Calls made while Redis was down may keep go-redis refusing for up to
	// a second after its return; the node says when it serves again.
	eventually(t, "ready again", func() bool { return pub.Ready() == nil })
	if _, err := pub.Status(ctx, "h"); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("status of the lost hunt: %v", err)
	}
	ch := sub.keysOf("h").ch
	eventually(t, "resubscription", func() bool {
		return numSub(t, a, ch) == 1
	})
	st2, err := pub.Create(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if st2.Epoch == st.Epoch {
		t.Fatal("a hunt created again kept its epoch")
	}
	if _, err := pub.Publish(ctx, "h", []byte(`again`)); err != nil {
		t.Fatal(err)
	}
	ups := c.waitFor(t, "the event of the new hunt", func(ups []state.Update) bool { return len(ups) == 2 })
	if u := ups[1]; u.Epoch != st2.Epoch || u.Seq != 1 || string(u.Data) != "again" {
		t.Fatalf("after the restart: %+v", u)
	}
	eventually(t, "the nodes to register again", func() bool {
		ns, err := pub.Nodes(ctx)
		return err == nil && len(ns) == 2
	})
	_ = sub.Close() // while this Redis still runs
	_ = pub.Close()
}
