package redisengine

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/state"
)

// TestScheduleOnceAcrossNodes: three nodes tick the same scheduled hunt on
// Redis's clock; the start and the end happen once each (seq 1 and 2),
// also after the node that created the hunt is gone.
func TestScheduleOnceAcrossNodes(t *testing.T) {
	a := newEngine(t, Config{ScheduleTick: 5 * time.Millisecond})
	cfg := Config{Prefix: a.prefix, ScheduleTick: 5 * time.Millisecond}
	b, c := newEngine(t, cfg), newEngine(t, cfg)
	col := newCollector()
	c.Subscribe(col.sink)
	watchAndWait(t, admin(t), c, "s", 1)
	now := time.Now()
	start, end := now.Add(1500*time.Millisecond), now.Add(2000*time.Millisecond) // margin for a loaded machine
	st, err := a.Create(ctx, state.Spec{ID: "s", Width: 3, Height: 3,
		Treasures: []state.Treasure{{ID: "t", X: 1, Y: 1, Points: 2}, {ID: "u", X: 2, Y: 2, Points: 2}},
		StartsAt:  &start, EndsAt: &end})
	if err != nil || st.State != state.StateScheduled {
		t.Fatalf("create: %+v %v", st, err)
	}
	if st, err := b.Join(ctx, "s", "p"); err != nil || st.State != state.StateScheduled {
		t.Fatalf("join: %+v %v", st, err)
	}
	if _, err := b.Dig(ctx, "s", "p", 1, 1); !errors.Is(err, state.ErrNotStarted) {
		t.Fatalf("dig before the start: %v", err)
	}
	if _, err := b.Publish(ctx, "s", []byte(`"soon"`)); err != nil {
		t.Fatalf("publish before the start: %v", err)
	}
	_ = a.Close() // the creator goes away; b and c carry on
	ups := col.waitFor(t, "started", func(ups []state.Update) bool {
		for _, u := range ups {
			if u.Kind == state.KindStarted {
				return true
			}
		}
		return false
	})
	if res, err := c.Dig(ctx, "s", "p", 1, 1); err != nil || !res.Found {
		t.Fatalf("dig after the start: %+v %v", res, err)
	}
	ups = col.waitFor(t, "ended", func(ups []state.Update) bool {
		return len(ups) > 0 && ups[len(ups)-1].Kind == state.KindEnded
	})
	var kinds []state.Kind
	for _, u := range ups {
		if u.Kind.Reliable() {
			kinds = append(kinds, u.Kind)
			if u.Seq != uint64(len(kinds)) {
				t.Fatalf("%v has seq %d, want %d", u.Kind, u.Seq, len(kinds))
			}
		}
	}
	want := []state.Kind{state.KindEvent, state.KindStarted, state.KindClaimed, state.KindEnded}
	if len(kinds) != len(want) {
		t.Fatalf("updates %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("updates %v, want %v", kinds, want)
		}
	}
	if at := ups[1].At; ups[1].Kind == state.KindStarted && at.Before(start.Truncate(time.Millisecond)) {
		t.Fatalf("started at %v, before %v", at, start)
	}
	// Nothing left in the schedule index.
	eventually(t, "the schedule index to empty", func() bool {
		n, err := admin(t).ZCard(ctx, b.prefix+"schedule").Result()
		return err == nil && n == 0
	})
	st, _ = b.Status(ctx, "s")
	if st.State != state.StateEnded || st.Seq != 4 {
		t.Fatalf("final status %+v", st)
	}
}

// TestScheduleConcurrentTicks runs Tick from several goroutines of two
// nodes at once after the start: one started update.
func TestScheduleConcurrentTicks(t *testing.T) {
	a := newEngine(t, Config{ScheduleTick: time.Hour})
	b := newEngine(t, Config{Prefix: a.prefix, ScheduleTick: time.Hour})
	start := time.Now().Add(100 * time.Millisecond)
	if _, err := a.Create(ctx, state.Spec{ID: "c", Width: 2, Height: 2, StartsAt: &start}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "Redis's clock to pass the start", func() bool {
		tm, err := a.rdb.Time(ctx).Result()
		return err == nil && !tm.Before(start.Add(time.Millisecond))
	})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		e := a
		if i%2 == 1 {
			e = b
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.Tick(ctx); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	st, err := b.Status(ctx, "c")
	if err != nil || st.State != state.StateOpen || st.Seq != 1 {
		t.Fatalf("after concurrent ticks: %+v %v", st, err)
	}
	// A start already past at creation starts the hunt there.
	past := time.Now().Add(-time.Second)
	if st, err := a.Create(ctx, state.Spec{ID: "p", Width: 2, Height: 2, StartsAt: &past}); err != nil || st.State != state.StateOpen || st.Seq != 1 {
		t.Fatalf("past start: %+v %v", st, err)
	}
}
