package state

import (
	"context"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func seqs(ups []Update) string {
	s := ""
	for _, u := range ups {
		s += fmt.Sprintf("%d,", u.Seq)
	}
	return s
}

func TestHistoryBoundedByCount(t *testing.T) {
	h := NewHistory(5, time.Hour)
	for i := uint64(1); i <= 12; i++ {
		h.Append(Update{Seq: i, Kind: KindEvent, At: t0})
		if want := min(int(i), 5); h.Len() != want {
			t.Fatalf("after %d appends Len %d, want %d", i, h.Len(), want)
		}
	}
	tests := []struct {
		since uint64
		ok    bool
		want  string
	}{
		{12, true, ""},
		{11, true, "12,"},
		{7, true, "8,9,10,11,12,"},
		{6, false, ""}, // 7 was dropped
		{0, false, ""},
		{13, false, ""}, // ahead of the hunt
	}
	for _, tt := range tests {
		ups, ok := h.Since(nil, tt.since, 12, t0)
		if ok != tt.ok || seqs(ups) != tt.want {
			t.Errorf("Since(%d) = %q %v, want %q %v", tt.since, seqs(ups), ok, tt.want, tt.ok)
		}
	}
}

func TestHistoryGrowsAndWraps(t *testing.T) {
	h := NewHistory(100, time.Hour)
	for i := uint64(1); i <= 1000; i++ {
		h.Append(Update{Seq: i, At: t0})
		ups, ok := h.Since(nil, i-min(i, 100), i, t0)
		if !ok || len(ups) != int(min(i, 100)) || ups[0].Seq != i-min(i, 100)+1 || ups[len(ups)-1].Seq != i {
			t.Fatalf("after %d: ok %v, %d updates", i, ok, len(ups))
		}
	}
	if len(h.buf) != 100 {
		t.Fatalf("ring grew to %d, max 100", len(h.buf))
	}
}

func TestHistoryBoundedByAge(t *testing.T) {
	h := NewHistory(0, 0)
	if h.max != DefaultHistoryMax || h.age != DefaultHistoryAge {
		t.Fatalf("defaults %d %v", h.max, h.age)
	}
	at := t0
	for i := uint64(1); i <= 10; i++ {
		h.Append(Update{Seq: i, At: at})
		at = at.Add(30 * time.Second)
	}
	// Updates at t0 .. t0+270s; at t0+300s the ones older than t0+180s go.
	ups, ok := h.Since(nil, 6, 10, t0.Add(300*time.Second))
	if !ok || seqs(ups) != "7,8,9,10," {
		t.Fatalf("Since(6) = %q %v", seqs(ups), ok)
	}
	if _, ok := h.Since(nil, 5, 10, t0.Add(300*time.Second)); ok {
		t.Fatal("Since(5) ok though 6 aged out")
	}
	// Everything aged out: only a caller already at seq is fine.
	if _, ok := h.Since(nil, 9, 10, t0.Add(time.Hour)); ok {
		t.Fatal("Since(9) ok with an empty history")
	}
	if ups, ok := h.Since(nil, 10, 10, t0.Add(time.Hour)); !ok || len(ups) != 0 {
		t.Fatalf("Since(seq) = %v %v", ups, ok)
	}
	if h.Len() != 0 {
		t.Fatalf("Len %d after everything aged out", h.Len())
	}
}

// TestMemoryResume drives resume through the engine with an injected clock.
func TestMemoryResume(t *testing.T) {
	clk := &fakeClock{t: t0}
	m := NewMemory(MemoryConfig{HistoryMax: 8, HistoryAge: time.Minute, Now: clk.Now})
	ctx := context.Background()
	if _, err := m.Create(ctx, Spec{ID: "h", Width: 2, Height: 2}); err != nil {
		t.Fatal(err)
	}
	ep := m.Epoch()
	check := func(since uint64, wantOK bool, want string) {
		t.Helper()
		ups, ok, err := m.History(ctx, "h", ep, since)
		if err != nil || ok != wantOK || seqs(ups) != want {
			t.Fatalf("History(since %d) = %q %v %v, want %q %v", since, seqs(ups), ok, err, want, wantOK)
		}
	}
	check(0, true, "") // nothing happened yet
	check(1, false, "")
	for i := 0; i < 5; i++ {
		if _, err := m.Publish(ctx, "h", []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
		clk.Advance(20 * time.Second)
	}
	// Published at +0s .. +80s; now +100s: seqs 1-2 (at +0s, +20s) aged out.
	check(2, true, "3,4,5,")
	check(1, false, "")
	check(5, true, "")
	check(6, false, "")
	if _, ok, _ := m.History(ctx, "h", ep+1, 5); ok {
		t.Fatal("another epoch resumed")
	}
	for i := 0; i < 20; i++ {
		m.Publish(ctx, "h", []byte("1"))
	}
	check(17, true, "18,19,20,21,22,23,24,25,")
	check(16, false, "")
	if _, _, err := m.History(ctx, "nope", ep, 0); err != ErrUnknownHunt {
		t.Fatalf("unknown hunt: %v", err)
	}
	// Replayed updates are the ones pushed: same kind, seq, data.
	ups, _, _ := m.History(ctx, "h", ep, 24)
	if len(ups) != 1 || ups[0].Kind != KindEvent || string(ups[0].Data) != "1" || ups[0].Hunt != "h" || ups[0].Epoch != ep {
		t.Fatalf("replay %+v", ups)
	}
}

// TestHistoryMatchesModel appends at random times to rings of random bounds
// and checks every Since against the definition: the held updates are the
// last max ones no older than age; a since is ok when it is at most the seq
// and every update after it is held, and then exactly those are replayed.
// It covers what the tests above take one at a time: count and age bounds
// together, expiry moving head while the ring grows or wraps.
func TestHistoryMatchesModel(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		limit := 1 + rng.Intn(40)
		age := time.Duration(1+rng.Intn(50)) * time.Second
		h := NewHistory(limit, age)
		var all []Update // all[i].Seq == i+1
		now := t0
		for step := 0; step < 300; step++ {
			now = now.Add(time.Duration(rng.Intn(6)) * 500 * time.Millisecond) // coarse: updates exactly age old are common
			if rng.Intn(3) > 0 {
				u := Update{Seq: uint64(len(all)) + 1, At: now}
				all = append(all, u)
				h.Append(u)
			}
			seq := uint64(len(all))
			since := uint64(rng.Int63n(int64(seq) + 3))
			held := max(len(all)-limit, 0) // index of the oldest held
			for held < len(all) && all[held].At.Before(now.Add(-age)) {
				held++
			}
			want, wantOK := "", since <= seq && (since == seq || int(since) >= held)
			if wantOK {
				want = seqs(all[since:])
			}
			got, ok := h.Since(nil, since, seq, now)
			if ok != wantOK || seqs(got) != want {
				t.Fatalf("seed %d step %d (limit %d, age %v): Since(%d) at seq %d = %q %v, want %q %v", seed, step, limit, age, since, seq, seqs(got), ok, want, wantOK)
			}
		}
	}
}
