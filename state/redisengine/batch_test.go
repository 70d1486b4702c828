package redisengine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state"
)

// holdSlots takes every pipeline slot of e, so that calls queue for the
// batcher; the returned function frees them.
func holdSlots(e *Engine) func() {
	for range batchSlots {
		e.slots <- struct{}{}
	}
	return func() {
		for range batchSlots {
			<-e.slots
		}
	}
}

// awaitQueued polls until n calls wait for the batcher: counted, and
// handed over (queued counts a call just before its handoff; with every
// slot held the batcher holds one call and the channel the others), so that
// a release sends them all in one pipeline.
func awaitQueued(t *testing.T, e *Engine, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for e.queued.Load() < int64(n) || len(e.calls) < n-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", e.queued.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

type digOut struct {
	res state.DigResult
	err error
}

// digAll digs cells (i, 0) of hunt for i < n, one goroutine each, once the
// slots are held, and returns the results after freeing the slots.
func digAll(t *testing.T, e *Engine, hunts func(i int) string, n int, ctxOf func(i int) context.Context, queued func()) []digOut {
	t.Helper()
	release := holdSlots(e)
	out := make([]digOut, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].res, out[i].err = e.Dig(ctxOf(i), hunts(i), fmt.Sprintf("p%d", i), i, 0)
		}()
	}
	awaitQueued(t, e, n)
	if queued != nil {
		queued()
	}
	release()
	wg.Wait()
	return out
}

func bg(int) context.Context { return ctx }

// TestDigsShareRoundTrips: 100 digs waiting together reach Redis as one
// pipeline, one round trip instead of 100, and each caller gets the answer
// of its own cell.
func TestDigsShareRoundTrips(t *testing.T) {
	e := newEngine(t, Config{})
	const n = 100
	spec := state.Spec{ID: "h", Width: n, Height: 2}
	for i := range n {
		spec.Treasures = append(spec.Treasures, state.Treasure{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: int64(i + 1)})
	}
	spec.Treasures = append(spec.Treasures, state.Treasure{ID: "last", X: 1, Y: 1, Points: 1})
	if _, err := e.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	// Load the script first: the NOSCRIPT fallback is its own test.
	if _, err := e.Dig(ctx, "h", "p", 0, 1); err != nil {
		t.Fatal(err)
	}
	var rt roundTrips
	e.rdb.AddHook(&rt)
	before := e.Batches()
	out := digAll(t, e, func(int) string { return "h" }, n, bg, nil)
	for i, o := range out {
		if o.err != nil || !o.res.Found || o.res.Treasure != fmt.Sprintf("t%d", i) || o.res.Points != int64(i+1) || o.res.Score != int64(i+1) {
			t.Fatalf("dig %d: %+v %v", i, o.res, o.err)
		}
	}
	if rt := rt.n.Load(); rt != 1 || e.Batches()-before != 1 {
		t.Fatalf("%d digs took %d round trips in %d pipelines, want 1", n, rt, e.Batches()-before)
	}
	// A lone dig goes at once, alone.
	if r, err := e.Dig(ctx, "h", "p", 1, 1); err != nil || r.Treasure != "last" {
		t.Fatal(r, err)
	}
	if n := rt.n.Load(); n != 2 {
		t.Fatalf("a lone dig took %d round trips, want 1", n-1)
	}
}

// TestBatchErrorsStayWithTheirCaller: in one pipeline, a dig that Redis
// fails (a hunt key of the wrong type), one on an unknown hunt and one whose
// caller gave up while it waited for the batch each get their own answer, and the
// others theirs; the abandoned dig is not made.
func TestBatchErrorsStayWithTheirCaller(t *testing.T) {
	e := newEngine(t, Config{})
	spec := state.Spec{ID: "h", Width: 10, Height: 1}
	for i := range 10 {
		spec.Treasures = append(spec.Treasures, state.Treasure{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: 1})
	}
	if _, err := e.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := admin(t).Set(ctx, e.keysOf("bad").meta, "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(ctx)
	defer cancel()
	hunts := func(i int) string {
		switch i {
		case 3:
			return "bad"
		case 5:
			return "nope"
		}
		return "h"
	}
	out := digAll(t, e, hunts, 10, func(i int) context.Context {
		if i == 7 {
			return gone
		}
		return ctx
	}, cancel)
	for i, o := range out {
		switch i {
		case 3:
			if o.err == nil || !strings.Contains(o.err.Error(), "WRONGTYPE") {
				t.Fatalf("dig on a bad key: %+v %v", o.res, o.err)
			}
		case 5:
			if !errors.Is(o.err, state.ErrUnknownHunt) {
				t.Fatalf("dig on an unknown hunt: %+v %v", o.res, o.err)
			}
		case 7:
			if !errors.Is(o.err, context.Canceled) {
				t.Fatalf("abandoned dig: %+v %v", o.res, o.err)
			}
		default:
			if o.err != nil || !o.res.Found || o.res.Treasure != fmt.Sprintf("t%d", i) {
				t.Fatalf("dig %d: %+v %v", i, o.res, o.err)
			}
		}
	}
	if r, err := e.Dig(ctx, "h", "q", 7, 0); err != nil || !r.Found || r.Treasure != "t7" {
		t.Fatalf("the abandoned dig was made: %+v %v", r, err)
	}
}

// TestBatchReloadsScripts: after Redis lost its scripts, every dig of a
// batch is answered (the script reloaded by EVAL).
func TestBatchReloadsScripts(t *testing.T) {
	srv := redistest.Standalone(t, redistest.Options{})
	e := newEngine(t, Config{URL: srv.URL()})
	spec := state.Spec{ID: "h", Width: 20, Height: 1}
	for i := range 20 {
		spec.Treasures = append(spec.Treasures, state.Treasure{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: 2})
	}
	if _, err := e.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client().ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	out := digAll(t, e, func(int) string { return "h" }, 20, bg, nil)
	for i, o := range out {
		if o.err != nil || !o.res.Found || o.res.Treasure != fmt.Sprintf("t%d", i) {
			t.Fatalf("dig %d after SCRIPT FLUSH: %+v %v", i, o.res, o.err)
		}
	}
}

// TestClusterBatchAcrossShards: one batch of digs on hunts of every shard
// is split by go-redis per node, and each caller gets its own answer.
func TestClusterBatchAcrossShards(t *testing.T) {
	c := clusterOf(t)
	e := newClusterEngine(t, c, Config{})
	const n = 30
	for i := range n {
		if _, err := e.Create(ctx, state.Spec{ID: fmt.Sprintf("h%d", i), Width: n, Height: 1,
			Treasures: []state.Treasure{{ID: fmt.Sprintf("t%d", i), X: i, Y: 0, Points: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	shards := map[string]bool{}
	for i := range n {
		s, err := c.Owner(ctx, e.keysOf(fmt.Sprintf("h%d", i)).meta)
		if err != nil {
			t.Fatal(err)
		}
		shards[s.Addr()] = true
	}
	if len(shards) < 2 {
		t.Fatalf("hunts on %d shards, want several", len(shards))
	}
	before := e.Batches()
	out := digAll(t, e, func(i int) string { return fmt.Sprintf("h%d", i) }, n, bg, nil)
	for i, o := range out {
		if o.err != nil || !o.res.Found || o.res.Treasure != fmt.Sprintf("t%d", i) {
			t.Fatalf("dig %d: %+v %v", i, o.res, o.err)
		}
	}
	if b := e.Batches() - before; b != 1 {
		t.Fatalf("%d digs on %d shards in %d pipelines, want 1", n, len(shards), b)
	}
}
