package redisengine

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	a := admin(t)
	e := newEngine(t, Config{})
	if _, err := e.Create(ctx, state.Spec{ID: "h", Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	watchAndWait(t, a, e, "h", 1)
	if !e.AwaitLocal(ctx, "h") {
		t.Fatal("no copy of a watched hunt")
	}
	for i := range 20 {
		e.Unwatch("h")
		e.Watch("h")
		c, cancel := context.WithTimeout(ctx, time.Second) // below readyWait: a copy that never comes fails here
		ok := e.AwaitLocal(c, "h")
		cancel()
		if !ok {
			t.Fatalf("round %d: no copy after the hunt was watched again", i)
		}
	}
}
