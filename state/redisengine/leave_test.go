package redisengine

import (
	"context"
	"testing"
	"time"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// TestLeaveNeverWaitsOnRedis: the gateway calls Leave on its event loops,
// so Leave must answer without a round trip even when this node counts
// nobody in the hunt (a second Leave, or a hunt never joined here) and
// Redis does not answer at all (its process stopped with SIGSTOP).
func TestLeaveNeverWaitsOnRedis(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	e := newEngine(t, Config{URL: srv.URL()})
	for _, id := range []string{"h", "other"} {
		if _, err := e.Create(ctx, state.Spec{ID: id, Width: 2, Height: 2}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.Join(ctx, "h", "p"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Resume() })
	done := make(chan error, 1)
	go func() {
		// No deadline of its own: only a Leave that never waits on Redis
		// returns while Redis is stopped.
		for _, c := range []struct{ hunt, player string }{{"h", "p"}, {"h", "p"}, {"other", "p"}, {"nope", "p"}} {
			if err := e.Leave(context.Background(), c.hunt, c.player); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// The bound only detects a Leave that waits: a round trip to a stopped
	// Redis never comes back before the client's own 3 s read timeout.
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Leave waited on a stopped Redis")
	}
}
