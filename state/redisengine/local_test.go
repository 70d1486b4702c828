package redisengine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// TestJoinLocalFollowsStream: a node's copy of a watched hunt follows the
// updates made on another node, claims, events and the end included, so a
// join answered from it has the status Redis has (players aside), a resume
// from it replays exactly what Redis would, and its count reaches Redis
// in the next batch.
func TestJoinLocalFollowsStream(t *testing.T) {
	a := admin(t)
	pub := newEngine(t, Config{})
	sub := newEngine(t, Config{Prefix: pub.prefix})
	spec := state.Spec{ID: "h", Width: 4, Height: 1, Treasures: []state.Treasure{
		{ID: "a", X: 0, Y: 0, Points: 5}, {ID: "b", X: 1, Y: 0, Points: 7}, {ID: "c", X: 2, Y: 0, Points: 1},
	}}
	if _, err := pub.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := sub.JoinLocal("h", "p", false, 0, 0); ok {
		t.Fatal("joined from a copy of a hunt not watched")
	}
	watchAndWait(t, a, sub, "h", 1)
	if !sub.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	same := func(what string) state.Status {
		t.Helper()
		want, err := pub.Status(ctx, "h")
		if err != nil {
			t.Fatal(err)
		}
		var got state.Status
		eventually(t, what, func() bool {
			st, _, _, ok := sub.JoinLocal("h", "p", false, 0, 0)
			if ok {
				_ = sub.Leave(ctx, "h", "p")
			}
			got = st
			st.Players, want.Players = 0, 0
			return ok && fmt.Sprint(st) == fmt.Sprint(want)
		})
		return got
	}
	same("the copy at creation")
	if _, err := pub.Dig(ctx, "h", "x", 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(ctx, "h", []byte(`"e"`)); err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Dig(ctx, "h", "y", 0, 0); err != nil {
		t.Fatal(err)
	}
	st := same("the copy after claims and an event")
	if st.Seq != 3 || st.TreasuresLeft != 1 || len(st.Top) != 2 {
		t.Fatalf("copy %+v", st)
	}
	st, ups, replay, ok := sub.JoinLocal("h", "q", true, st.Epoch, 1)
	want, _, _ := pub.History(ctx, "h", st.Epoch, 1)
	if !ok || !replay || fmt.Sprint(ups) != fmt.Sprint(want) || len(ups) != 2 {
		t.Fatalf("resume from the copy: %v %v %v, Redis: %v", ups, replay, ok, want)
	}
	if _, _, _, ok := sub.JoinLocal("h", "q", true, st.Epoch, 9); ok {
		t.Fatal("a since beyond the copy answered from it")
	}
	if _, _, replay, ok := sub.JoinLocal("h", "r", true, st.Epoch+1, 1); !ok || replay {
		t.Fatalf("another epoch: replay %v ok %v, want a reset", replay, ok)
	}
	eventually(t, "the count in Redis", func() bool {
		n, _ := a.HGet(ctx, sub.keysOf("h").nodes, sub.NodeID()).Int()
		return n == 2
	})
	if _, err := pub.Dig(ctx, "h", "y", 2, 0); err != nil { // the last treasure ends the hunt
		t.Fatal(err)
	}
	if st := same("the copy after the end"); st.State != state.StateEnded || st.TreasuresLeft != 0 {
		t.Fatalf("copy %+v", st)
	}
	sub.Unwatch("h")
	if _, _, _, ok := sub.JoinLocal("h", "p", false, 0, 0); ok {
		t.Fatal("joined from the copy of a hunt no longer watched")
	}
}

// TestRewatchGetsACopy: a hunt unwatched and watched again at once (its
// last player leaves as the next joins) gets a copy in step again without
// waiting for an update, so joins keep avoiding Redis.
func TestRewatchGetsACopy(t *testing.T) {
	e, _ := watchedHunt(t)
	rewatchRounds(t, e, "h")
}

// publishLoop publishes events to hunt through e, one after the other,
// until the returned function is called, which fails t if one failed.
func publishLoop(t *testing.T, e *Engine, hunt string) (stop func()) {
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-quit:
				done <- nil
				return
			default:
			}
			if _, err := e.Publish(ctx, hunt, []byte(`"tick"`)); err != nil {
				done <- err
				return
			}
		}
	}()
	return func() {
		close(quit)
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// watchedHunt returns an engine watching hunt "h" (2x2, no treasures),
// whose copy of it is in step, and an admin client of its Redis.
func watchedHunt(t *testing.T) (*Engine, *redis.Client) {
	t.Helper()
	a := admin(t)
	e := newEngine(t, Config{})
	if _, err := e.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, e, "h", 1)
	if !e.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	return e, a
}

// rewatchRounds unwatches and watches hunt again 20 times and fails if its
// copy is not in step again within a second each time.
func rewatchRounds(t *testing.T, e *Engine, hunt string) {
	t.Helper()
	for i := range 20 {
		e.Unwatch(hunt)
		e.Watch(hunt)
		c, cancel := context.WithTimeout(ctx, time.Second) // below readyWait: a copy that never comes fails here
		ok := e.AwaitLocal(c, hunt)
		cancel()
		if !ok {
			t.Fatalf("round %d: no copy after the hunt was watched again", i)
		}
	}
}

// TestJoinLocalAfterStart: a scheduled hunt that starts while a node watches
// it is open in the node's copy, so joins answered from the copy do not say
// "scheduled" to players who can dig.
func TestJoinLocalAfterStart(t *testing.T) {
	a := admin(t)
	e := newEngine(t, Config{ScheduleTick: 5 * time.Millisecond})
	c := newCollector()
	e.Subscribe(c.sink)
	later := time.Now().Add(time.Hour)
	if _, err := e.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2, StartsAt: &later}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, e, "h", 1)
	if !e.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	if st, _, _, ok := e.JoinLocal("h", "p", false, 0, 0); !ok || st.State != state.StateScheduled {
		t.Fatalf("before the start: %+v %v", st, ok)
	}
	// Bring the start forward to now, on Redis's clock, for the ticker.
	k := e.keysOf("h")
	if err := a.HSet(ctx, k.meta, "starts", 1).Err(); err != nil {
		t.Fatal(err)
	}
	if err := a.ZAdd(ctx, e.prefix+"schedule", redis.Z{Score: 1, Member: "h"}).Err(); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "started", func(ups []state.Update) bool {
		return len(ups) > 0 && ups[len(ups)-1].Kind == state.KindStarted
	})
	// The sink got started after the copy took it: the copy says open.
	st, _, _, ok := e.JoinLocal("h", "q", false, 0, 0)
	want, err := e.Status(ctx, "h")
	if err != nil {
		t.Fatal(err)
	}
	if !ok || st.State != state.StateOpen || st.Seq != 1 || want.State != state.StateOpen {
		t.Fatalf("after the start: copy %+v (ok %v), Redis %+v", st, ok, want)
	}
}

// TestRewatchUnderTrafficGetsACopy: a hunt watched again while its updates
// keep coming on the shared pub/sub connection (an update of the old watch
// still in flight reaches the reader after the new Watch) gets a copy in
// step again, so joins keep avoiding Redis instead of each waiting
// readyWait for a copy that never comes.
func TestRewatchUnderTrafficGetsACopy(t *testing.T) {
	a := admin(t)
	e := newEngine(t, Config{})
	pub := newEngine(t, Config{Prefix: e.prefix})
	for _, h := range []string{"h", "o"} {
		if _, err := e.Create(ctx, state.Spec{ID: h, Width: 2, Height: 2}); err != nil {
			t.Fatal(err)
		}
		watchAndWait(t, a, e, h, 1) // "o" keeps the connection open when "h" is unwatched
	}
	if !e.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	defer publishLoop(t, pub, "h")()
	rewatchRounds(t, e, "h")
}

// TestRewatchKeepsConnection: the SUNSUBSCRIBE confirmation of a hunt that
// was unwatched and watched again before the reader got to it is the
// engine's own, not Redis dropping the channel (a slot that moved), so the
// pub/sub connection that every hunt of the node shares is kept rather
// than closed, with every hunt on it subscribed and read from the history
// again.
func TestRewatchKeepsConnection(t *testing.T) {
	a := admin(t)
	e := newEngine(t, Config{})
	pub := newEngine(t, Config{Prefix: e.prefix})
	for _, h := range []string{"h", "o", "z"} {
		if _, err := e.Create(ctx, state.Spec{ID: h, Width: 2, Height: 2}); err != nil {
			t.Fatal(err)
		}
	}
	// The sink holds the reader on an update of "o" until released, so
	// that the confirmations of "h" wait behind it.
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.Subscribe(func(u state.Update) {
		if u.Hunt == "o" && u.Kind == state.KindEvent {
			once.Do(func() {
				close(held)
				<-release
			})
		}
	})
	for _, h := range []string{"h", "o"} {
		watchAndWait(t, a, e, h, 1)
	}
	if !e.AwaitLocal(ctx, "h") || !e.AwaitLocal(ctx, "o") {
		t.Fatal("no copies")
	}
	conn := func() *subConn {
		e.subs.mu.Lock()
		defer e.subs.mu.Unlock()
		return e.subs.conns[0]
	}
	before := conn()
	if _, err := pub.Publish(ctx, "o", []byte(`"hold"`)); err != nil {
		t.Fatal(err)
	}
	<-held
	ch := e.keysOf("h").ch
	e.Unwatch("h")
	eventually(t, "h unsubscribed", func() bool { return numSub(t, a, ch) == 0 })
	e.Watch("h")
	eventually(t, "h subscribed again", func() bool { return numSub(t, a, ch) == 1 })
	close(release)
	// A barrier: the confirmation of "z" comes after those of "h" on the
	// shared connection, and the reader marks a connection broken as it
	// reads a confirmation.
	e.Watch("z")
	if !e.AwaitLocal(ctx, "z") || !e.AwaitLocal(ctx, "h") {
		t.Fatal("no copies after the rewatch")
	}
	e.subs.mu.Lock()
	broken := len(e.subs.broken)
	e.subs.mu.Unlock()
	if after := conn(); after != before || broken != 0 {
		t.Fatalf("the shared pub/sub connection was replaced (%p -> %p, %d marked broken)", before, after, broken)
	}
}

// TestJoinLocalHuntGone: a hunt that Redis no longer has (it lost its data)
// is not joined from the node's copy: once the node's next count refresh
// finds it gone, joins are answered by Redis (unknown hunt) without waiting
// for a copy, and a hunt created again under the id gets a copy again.
func TestJoinLocalHuntGone(t *testing.T) {
	e, a := watchedHunt(t)
	if _, _, _, ok := e.JoinLocal("h", "p", false, 0, 0); !ok {
		t.Fatal("not joined from the copy")
	}
	k := e.keysOf("h")
	if err := a.Del(ctx, k.meta, k.treasures, k.lb, k.members, k.hist, k.claims, k.nodes, k.live).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "joins no longer answered from the copy", func() bool {
		_, _, _, ok := e.JoinLocal("h", "q", false, 0, 0)
		return !ok
	})
	c, cancel := context.WithTimeout(ctx, time.Second) // below readyWait: no wait for a copy that cannot come
	defer cancel()
	if e.AwaitLocal(c, "h") {
		t.Fatal("a copy of a hunt that is gone")
	}
	if c.Err() != nil {
		t.Fatal("AwaitLocal waited for a copy of a hunt that is gone")
	}
	if _, err := e.Join(ctx, "h", "q"); !errors.Is(err, state.ErrUnknownHunt) {
		t.Fatalf("join of a hunt that is gone: %v", err)
	}
	// Created again: its first update brings a copy of the new hunt.
	st, err := e.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Publish(ctx, "h", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a copy of the new hunt", func() bool {
		got, _, _, ok := e.JoinLocal("h", "r", false, 0, 0)
		return ok && got.Epoch == st.Epoch && got.Seq == 1
	})
}
