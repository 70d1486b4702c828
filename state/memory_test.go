package state

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
)

// recorder is a sink that keeps every update, checking per hunt that
// reliable seqs grow by exactly one and leaderboard updates carry the last
// reliable seq.
type recorder struct {
	mu   sync.Mutex
	ups  []Update
	last map[string]uint64
	errs []string
}

func newRecorder() *recorder { return &recorder{last: map[string]uint64{}} }

func (r *recorder) sink(u Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, u)
	last := r.last[u.Hunt]
	if u.Kind.Reliable() {
		if u.Seq != last+1 {
			r.errs = append(r.errs, fmt.Sprintf("%s: %s seq %d after %d", u.Hunt, u.Kind, u.Seq, last))
		}
		r.last[u.Hunt] = u.Seq
	} else if u.Seq != last {
		r.errs = append(r.errs, fmt.Sprintf("%s: leaderboard seq %d, last reliable %d", u.Hunt, u.Seq, last))
	}
}

func (r *recorder) check(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
}

func TestMemoryErrors(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	spec := Spec{ID: "h", Width: 3, Height: 3, Treasures: []Treasure{{ID: "t", X: 2, Y: 2, Points: 1}}}
	if _, err := m.Create(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Create(ctx, spec); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := m.Create(ctx, Spec{ID: "bad"}); !errors.Is(err, ErrBadSpec) {
		t.Fatalf("bad spec: %v", err)
	}
	for name, err := range map[string]error{
		"join":    func() error { _, err := m.Join(ctx, "x", "p"); return err }(),
		"leave":   m.Leave(ctx, "x", "p"),
		"dig":     func() error { _, err := m.Dig(ctx, "x", "p", 0, 0); return err }(),
		"status":  func() error { _, err := m.Status(ctx, "x"); return err }(),
		"publish": func() error { _, err := m.Publish(ctx, "x", nil); return err }(),
		"end":     func() error { _, err := m.End(ctx, "x"); return err }(),
	} {
		if !errors.Is(err, ErrUnknownHunt) {
			t.Errorf("%s on an unknown hunt: %v", name, err)
		}
	}
	if _, err := m.Dig(ctx, "h", "p", 3, 0); !errors.Is(err, ErrOutOfGrid) {
		t.Fatalf("dig off the grid: %v", err)
	}
	if _, err := m.End(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Dig(ctx, "h", "p", 2, 2); !errors.Is(err, ErrEnded) {
		t.Fatalf("dig after end: %v", err)
	}
	if _, err := m.End(ctx, "h"); !errors.Is(err, ErrEnded) {
		t.Fatalf("second end: %v", err)
	}
	if _, err := m.Publish(ctx, "h", []byte("1")); !errors.Is(err, ErrEnded) {
		t.Fatalf("publish after end: %v", err)
	}
	if !m.Inline() {
		t.Fatal("memory engine is not inline")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Status(ctx, "h"); !errors.Is(err, ErrClosed) {
		t.Fatalf("status after close: %v", err)
	}
	if _, err := m.Create(ctx, Spec{ID: "h2", Width: 1, Height: 1}); !errors.Is(err, ErrClosed) {
		t.Fatalf("create after close: %v", err)
	}
	if _, err := m.Hunts(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("hunts after close: %v", err)
	}
}

func TestMemoryFlow(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	rec := newRecorder()
	m.Subscribe(rec.sink)
	for _, id := range []string{"b", "a", "c"} {
		if _, err := m.Create(ctx, Spec{ID: id, Width: 4, Height: 4, Treasures: []Treasure{{ID: "x", X: 0, Y: 0, Points: 3}, {ID: "y", X: 1, Y: 0, Points: 4}}}); err != nil {
			t.Fatal(err)
		}
	}
	if ids, _ := m.Hunts(ctx); !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("hunts %v", ids)
	}
	st, err := m.Join(ctx, "a", "ann")
	if err != nil || st.Players != 1 || st.Epoch != m.Epoch() || st.State != StateOpen || st.TreasuresLeft != 2 || st.Seq != 0 {
		t.Fatalf("join: %+v %v", st, err)
	}
	m.Join(ctx, "a", "bob")
	m.Leave(ctx, "a", "bob")
	m.Leave(ctx, "a", "bob")
	m.Leave(ctx, "a", "bob") // clamped at zero
	if st, _ := m.Status(ctx, "a"); st.Players != 0 {
		t.Fatalf("players %d after more leaves than joins", st.Players)
	}

	data := []byte(`{"boss":"up"}`)
	seq, err := m.Publish(ctx, "a", data)
	if err != nil || seq != 1 {
		t.Fatalf("publish: %d %v", seq, err)
	}
	data[0] = 'X' // the engine kept its own copy
	r, err := m.Dig(ctx, "a", "ann", 0, 0)
	if err != nil || r != (DigResult{Found: true, Treasure: "x", Points: 3, Score: 3, Rank: 1, Seq: 2}) {
		t.Fatalf("dig: %+v %v", r, err)
	}
	if r, _ := m.Dig(ctx, "a", "bob", 0, 0); r.Found {
		t.Fatal("a treasure was claimed twice")
	}
	r, _ = m.Dig(ctx, "a", "bob", 1, 0)
	if r != (DigResult{Found: true, Treasure: "y", Points: 4, Score: 4, Rank: 1, Seq: 3}) {
		t.Fatalf("dig: %+v", r)
	}
	st, _ = m.Status(ctx, "a")
	if st.State != StateEnded || st.Seq != 4 || fmt.Sprint(st.Top) != "[{bob 4} {ann 3}]" || st.TreasuresLeft != 0 {
		t.Fatalf("status after the last treasure: %+v", st)
	}
	m.Publish(ctx, "b", []byte("2"))
	m.End(ctx, "b")

	rec.check(t)
	var got []string
	for _, u := range rec.ups {
		got = append(got, fmt.Sprintf("%s/%d/%s", u.Hunt, u.Seq, u.Kind))
	}
	want := []string{"a/1/event", "a/2/claimed", "a/2/leaderboard", "a/3/claimed", "a/3/leaderboard", "a/4/ended", "b/1/event", "b/2/ended"}
	if !slices.Equal(got, want) {
		t.Fatalf("updates %v\nwant %v", got, want)
	}
	if string(rec.ups[0].Data) != `{"boss":"up"}` {
		t.Fatalf("event data %q", rec.ups[0].Data)
	}
	ups, ok, _ := m.History(ctx, "a", m.Epoch(), 0)
	if !ok || seqs(ups) != "1,2,3,4," || ups[1].Player != "ann" {
		t.Fatalf("history %q %v", seqs(ups), ok)
	}
}

func TestMemoryEpoch(t *testing.T) {
	a, b := NewMemory(MemoryConfig{}), NewMemory(MemoryConfig{})
	if a.Epoch() == 0 || a.Epoch() == b.Epoch() {
		t.Fatalf("epochs %d %d", a.Epoch(), b.Epoch())
	}
	if NewMemory(MemoryConfig{Epoch: 9}).Epoch() != 9 {
		t.Fatal("configured epoch ignored")
	}
}

func TestMemoryWatch(t *testing.T) {
	m := NewMemory(MemoryConfig{})
	m.Unwatch("h") // without a Watch: ignored
	m.Watch("h")
	m.Watch("h")
	m.Unwatch("h")
	if !m.Watched("h") {
		t.Fatal("unwatched after 2 watches and 1 unwatch")
	}
	m.Unwatch("h")
	if m.Watched("h") {
		t.Fatal("still watched")
	}
}

// TestMemoryConcurrentDigs has many goroutines dig every cell of several
// hunts at once: each treasure is found by exactly one dig, scores add up,
// and the sink sees every hunt's seqs in order. Run with -race.
func TestMemoryConcurrentDigs(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{})
	rec := newRecorder()
	m.Subscribe(rec.sink)
	const hunts, side, diggers = 3, 16, 16
	for i := 0; i < hunts; i++ {
		if _, err := m.Create(ctx, Spec{ID: fmt.Sprint("h", i), Width: side, Height: side, Random: &RandomSpec{Count: 100, Seed: int64(i), MaxPoints: 5}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu    sync.Mutex
		found = map[string]int{} // hunt/treasure -> finds
		score = map[string]int64{}
		wg    sync.WaitGroup
	)
	// Readers and joiners run alongside the diggers, for the race detector.
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() {
		defer readers.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			hunt := fmt.Sprint("h", i%hunts)
			m.Join(ctx, hunt, "r")
			if st, err := m.Status(ctx, hunt); err != nil || len(st.Top) > TopSize {
				t.Errorf("status %+v %v", st, err)
			}
			if ups, ok, _ := m.History(ctx, hunt, m.Epoch(), 0); ok && len(ups) > 0 && ups[0].Seq != 1 {
				t.Errorf("history starts at %d", ups[0].Seq)
			}
			m.Hunts(ctx)
			m.Leave(ctx, hunt, "r")
		}
	}()
	for g := 0; g < diggers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(g)))
			player := fmt.Sprint("p", g%5) // several goroutines per player
			cells := rng.Perm(side * side)
			for _, c := range cells {
				for i := 0; i < hunts; i++ {
					hunt := fmt.Sprint("h", i)
					r, err := m.Dig(ctx, hunt, player, c/side, c%side)
					if errors.Is(err, ErrEnded) {
						continue
					}
					if err != nil {
						t.Error(err)
						return
					}
					if r.Found {
						mu.Lock()
						found[hunt+"/"+r.Treasure]++
						score[hunt+"/"+player] += r.Points
						mu.Unlock()
					}
				}
				if g == 0 {
					m.Publish(ctx, "h0", []byte("1"))
				}
			}
		}(g)
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	rec.check(t)
	if len(found) != hunts*100 {
		t.Fatalf("%d treasures found, want %d", len(found), hunts*100)
	}
	for k, n := range found {
		if n != 1 {
			t.Fatalf("%s found %d times", k, n)
		}
	}
	for i := 0; i < hunts; i++ {
		hunt := fmt.Sprint("h", i)
		st, _ := m.Status(ctx, hunt)
		if st.State != StateEnded || st.TreasuresLeft != 0 || st.Players != 0 {
			t.Fatalf("%s: %+v", hunt, st)
		}
		for _, e := range st.Top {
			if score[hunt+"/"+e.Player] != e.Score {
				t.Fatalf("%s: top says %s has %d, digs gave %d", hunt, e.Player, e.Score, score[hunt+"/"+e.Player])
			}
		}
		ups, ok, _ := m.History(ctx, hunt, m.Epoch(), 0)
		if !ok || uint64(len(ups)) != st.Seq {
			t.Fatalf("%s: history of %d updates, seq %d, ok %v", hunt, len(ups), st.Seq, ok)
		}
	}
}

// TestMemoryConcurrentCreateEnd races creates of the same ids, joins and
// leaves, digs, publishes and ends: exactly one create per id wins, every
// hunt's seqs stay contiguous through an end raced by digs and publishes
// (worker 0 ends each hunt midway, if its last claim did not), the player
// count comes back to exactly zero, and every hunt's last update is its
// ended. Run with -race.
func TestMemoryConcurrentCreateEnd(t *testing.T) {
	ctx := context.Background()
	m := NewMemory(MemoryConfig{HistoryMax: 64})
	rec := newRecorder()
	m.Subscribe(rec.sink)
	const hunts, workers, rounds = 3, 6, 60
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		created = map[string]int{}
	)
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < hunts; i++ {
				id := fmt.Sprint("h", i)
				_, err := m.Create(ctx, Spec{ID: id, Width: 8, Height: 8, Random: &RandomSpec{Count: 40, Seed: 1, MaxPoints: 3}})
				if err != nil && !errors.Is(err, ErrExists) {
					t.Error(err)
				}
				if err == nil {
					mu.Lock()
					created[id]++
					mu.Unlock()
				}
			}
			for i := 0; i < rounds; i++ {
				id := fmt.Sprint("h", i%hunts)
				if st, err := m.Join(ctx, id, "p"); err != nil || st.Players < 1 {
					t.Errorf("join: %+v %v", st, err)
				}
				if _, err := m.Dig(ctx, id, fmt.Sprint("p", g), (i*7+g)%8, (i*3+g)%8); err != nil && !errors.Is(err, ErrEnded) {
					t.Error(err)
				}
				if _, err := m.Publish(ctx, id, []byte("1")); err != nil && !errors.Is(err, ErrEnded) {
					t.Error(err)
				}
				if g == 0 && i >= rounds/2 && i < rounds/2+hunts {
					if _, err := m.End(ctx, id); err != nil && !errors.Is(err, ErrEnded) {
						t.Errorf("end %s: %v", id, err)
					}
				}
				if err := m.Leave(ctx, id, "p"); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	rec.check(t)
	for i := 0; i < hunts; i++ {
		id := fmt.Sprint("h", i)
		if created[id] != 1 {
			t.Fatalf("%s created %d times", id, created[id])
		}
		st, _ := m.Status(ctx, id)
		if st.Players != 0 {
			t.Fatalf("%s: %d players after as many leaves as joins", id, st.Players)
		}
	}
	ended := map[string]bool{}
	for _, u := range rec.ups {
		if ended[u.Hunt] {
			t.Fatalf("%s: %s update after ended", u.Hunt, u.Kind)
		}
		ended[u.Hunt] = u.Kind == KindEnded
	}
	for i := 0; i < hunts; i++ {
		if id := fmt.Sprint("h", i); !ended[id] {
			t.Fatalf("%s: its last update is not ended", id)
		}
	}
}
