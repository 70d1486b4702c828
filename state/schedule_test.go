package state

import (
	"context"
	"errors"
	"testing"
	"time"
)

// set moves the clock to t.
func (c *fakeClock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func TestMemorySchedule(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	m := NewMemory(MemoryConfig{Now: clock.Now})
	defer m.Close()
	rec := newRecorder()
	m.Subscribe(rec.sink)
	start, end := t0.Add(time.Hour), t0.Add(2*time.Hour)
	spec := Spec{ID: "s", Width: 4, Height: 4, Treasures: []Treasure{{ID: "a", X: 1, Y: 1, Points: 3}, {ID: "b", X: 2, Y: 2, Points: 1}},
		StartsAt: &start, EndsAt: &end}
	st, err := m.Create(ctx, spec)
	if err != nil || st.State != StateScheduled || st.Seq != 0 {
		t.Fatalf("create: %+v %v", st, err)
	}
	if st, err := m.Join(ctx, "s", "p"); err != nil || st.State != StateScheduled {
		t.Fatalf("join before the start: %+v %v", st, err)
	}
	if _, err := m.Dig(ctx, "s", "p", 1, 1); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("dig before the start: %v", err)
	}
	clock.set(start.Add(-time.Millisecond))
	if next := m.Tick(); !next.Equal(start) {
		t.Fatalf("next due %v, want %v", next, start)
	}
	if st, _ := m.Status(ctx, "s"); st.State != StateScheduled {
		t.Fatalf("started a millisecond early: %+v", st)
	}
	clock.set(start)
	if next := m.Tick(); !next.Equal(end) {
		t.Fatalf("next due %v, want %v", next, end)
	}
	m.Tick() // a second tick (another caller) changes nothing
	st, _ = m.Status(ctx, "s")
	if st.State != StateOpen || st.Seq != 1 {
		t.Fatalf("after the start: %+v", st)
	}
	if res, err := m.Dig(ctx, "s", "p", 1, 1); err != nil || !res.Found || res.Seq != 2 {
		t.Fatalf("dig after the start: %+v %v", res, err)
	}
	clock.set(end.Add(time.Second))
	if next := m.Tick(); !next.IsZero() {
		t.Fatalf("nothing should be due after the end: %v", next)
	}
	st, _ = m.Status(ctx, "s")
	if st.State != StateEnded || st.Seq != 3 || len(st.Top) != 1 {
		t.Fatalf("after the end: %+v", st)
	}
	rec.check(t)
	var kinds []string
	var ats []time.Time
	for _, u := range rec.ups {
		if u.Kind.Reliable() {
			kinds = append(kinds, u.Kind.String())
			ats = append(ats, u.At)
		}
	}
	if len(kinds) != 3 || kinds[0] != "started" || kinds[1] != "claimed" || kinds[2] != "ended" {
		t.Fatalf("updates %v", kinds)
	}
	if !ats[0].Equal(start) || !ats[2].Equal(end.Add(time.Second)) {
		t.Fatalf("stamped %v", ats)
	}
}

func TestMemoryScheduleEdges(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 7, 18, 0, 0, 0, time.UTC)
	clock := &fakeClock{t: t0}
	m := NewMemory(MemoryConfig{Now: clock.Now})
	defer m.Close()
	past, later := t0.Add(-time.Minute), t0.Add(time.Minute)
	// A start already past starts the hunt at creation, with started seq 1.
	st, err := m.Create(ctx, Spec{ID: "past", Width: 2, Height: 2, StartsAt: &past})
	if err != nil || st.State != StateOpen || st.Seq != 1 {
		t.Fatalf("past start: %+v %v", st, err)
	}
	// Ending a scheduled hunt cancels it: no started afterwards.
	if _, err := m.Create(ctx, Spec{ID: "cancel", Width: 2, Height: 2, StartsAt: &later}); err != nil {
		t.Fatal(err)
	}
	if st, err := m.End(ctx, "cancel"); err != nil || st.State != StateEnded || st.Seq != 1 {
		t.Fatalf("end scheduled: %+v %v", st, err)
	}
	clock.set(later)
	m.Tick()
	if st, _ := m.Status(ctx, "cancel"); st.Seq != 1 || st.State != StateEnded {
		t.Fatalf("a cancelled hunt started: %+v", st)
	}
	// ends_at alone: open at once, ended when due.
	end := later.Add(time.Minute)
	if st, err := m.Create(ctx, Spec{ID: "e", Width: 2, Height: 2, EndsAt: &end}); err != nil || st.State != StateOpen || st.Seq != 0 {
		t.Fatalf("ends_at only: %+v %v", st, err)
	}
	if _, err := m.Publish(ctx, "e", []byte(`1`)); err != nil {
		t.Fatal(err)
	}
	clock.set(end)
	m.Tick()
	if st, _ := m.Status(ctx, "e"); st.State != StateEnded || st.Seq != 2 {
		t.Fatalf("ends_at reached: %+v", st)
	}
	if _, err := m.Create(ctx, Spec{ID: "bad", Width: 2, Height: 2, StartsAt: &end, EndsAt: &later}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("ends before it starts: %v", err)
	}
}

// TestMemoryScheduleRealClock lets the engine's own goroutine start and end
// a hunt on the real clock.
func TestMemoryScheduleRealClock(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	defer m.Close()
	got := make(chan Update, 4)
	m.Subscribe(func(u Update) { got <- u })
	start := time.Now().Add(50 * time.Millisecond)
	end := start.Add(50 * time.Millisecond)
	if _, err := m.Create(ctx, Spec{ID: "r", Width: 2, Height: 2, StartsAt: &start, EndsAt: &end}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []Kind{KindStarted, KindEnded} {
		select {
		case u := <-got:
			if u.Kind != want {
				t.Fatalf("got %v, want %v", u.Kind, want)
			}
			due := start
			if want == KindEnded {
				due = end
			}
			if u.At.Before(due) {
				t.Fatalf("%v stamped %v, before its time %v", u.Kind, u.At, due)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %v", want)
		}
	}
}
