package redisengine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// TestReadyMeansServing: calls made while Redis is down fill go-redis's
// count of failed dials, after which its pool refuses every call with the
// last dial error until a background dial succeeds, up to a second after
// Redis is back. The node must not report ready meanwhile: once Ready is nil
// again, a call reaches Redis (here, one that lost its data: ErrUnknownHunt,
// not a dial error).
func TestReadyMeansServing(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	e := newEngine(t, Config{URL: srv.URL(), PoolSize: 2})
	if _, err := e.Create(ctx, state.Spec{ID: "h", Width: 1, Height: 1}); err != nil {
		t.Fatal(err)
	}
	// Three rounds: the pool's background dial retries every second, so
	// in a round it may happen to succeed before the probe does.
	for round := range 3 {
		srv.Kill()
		eventually(t, "unready", func() bool { return e.Ready() != nil })
		// Fill the pool's count of failed dials (PoolSize of them).
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = e.Status(ctx, "h")
			}()
		}
		wg.Wait()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for e.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: not ready 10 s after Redis came back: %v", round, e.Ready())
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := e.Status(ctx, "h"); !errors.Is(err, state.ErrUnknownHunt) {
			t.Fatalf("round %d: ready, but a call fails: %v", round, err)
		}
	}
}

// TestProbeRun: one failed probe between successes leaves the node ready
// (a late probe under a CPU spike), probeFailures in a row make it
// unready, a success makes it ready at once, and while it is unready each
// failure keeps the reason current.
func TestProbeRun(t *testing.T) {
	if probeFailures != 2 {
		t.Fatalf("probeFailures %d: the steps below assume 2", probeFailures)
	}
	fail := errors.New("i/o timeout")
	var r probeRun
	unready := false
	steps := []struct {
		err  error
		want bool // recorded as the health
	}{
		{nil, true}, {fail, false}, {nil, true}, // one late probe: still ready
		{fail, false}, {fail, true}, // two in a row: unready
		{fail, true},               // unready: the reason is kept current
		{nil, true}, {fail, false}, // back, and one late probe again
	}
	for i, s := range steps {
		got := r.record(s.err, unready)
		if got != s.want {
			t.Fatalf("step %d (%v, unready %v): recorded %v, want %v", i, s.err, unready, got, s.want)
		}
		if got {
			unready = s.err != nil
		}
	}
}
