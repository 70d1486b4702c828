package conn

import (
	"reflect"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestSlotSize(t *testing.T) {
	if sz := unsafe.Sizeof(slot{}); sz > 104 {
		t.Fatalf("slot is %d bytes, want <= 104", sz)
	}
	t.Logf("slot: %d bytes", unsafe.Sizeof(slot{}))
}

func TestSlotReuseStaleHandle(t *testing.T) {
	var tb slots
	a := tb.alloc()
	tb.at(a).state = stOpen
	ha := makeHandle(3, tb.at(a).gen, a)
	if ha.Loop() != 3 || ha.Index() != a {
		t.Fatalf("handle fields: loop %d index %d", ha.Loop(), ha.Index())
	}
	if tb.lookup(ha) == nil {
		t.Fatal("live handle rejected")
	}
	tb.release(a)
	if tb.lookup(ha) != nil {
		t.Fatal("handle of a freed slot accepted")
	}
	b := tb.alloc()
	tb.at(b).state = stOpen
	if b != a {
		t.Fatalf("free slot not reused: got %d want %d", b, a)
	}
	hb := makeHandle(3, tb.at(b).gen, b)
	if hb == ha {
		t.Fatal("reused slot has the same handle")
	}
	if tb.lookup(ha) != nil {
		t.Fatal("stale handle accepted after reuse")
	}
	if tb.lookup(hb) == nil {
		t.Fatal("new handle rejected")
	}
}

func TestSlotGenerationWraps(t *testing.T) {
	var tb slots
	i := tb.alloc()
	tb.at(i).gen = genMask
	tb.release(i)
	j := tb.alloc()
	if j != i || tb.at(j).gen == 0 || tb.at(j).gen > genMask {
		t.Fatalf("after wrap: idx %d gen %d", j, tb.at(j).gen)
	}
	if makeHandle(0, tb.at(j).gen, j) == 0 {
		t.Fatal("zero handle produced")
	}
}

func TestWheelFiresInOrderNeverEarly(t *testing.T) {
	var w wheel
	w.init(0)
	delays := []time.Duration{0, time.Millisecond, 7 * time.Millisecond, 40 * time.Millisecond,
		3 * time.Second, 6 * time.Second, 11 * time.Second, 90 * time.Second}
	for i, d := range delays {
		w.add(timerEntry{when: int64(d), idx: uint32(i)})
	}
	fired := map[uint32]int64{}
	var order []uint32
	for now := int64(0); now <= int64(100*time.Second); now += int64(3 * time.Millisecond) {
		w.advance(now, func(e timerEntry) {
			if now < e.when {
				t.Fatalf("entry %d fired at %d, due %d", e.idx, now, e.when)
			}
			if now-e.when > 2*wheelTick {
				t.Fatalf("entry %d fired %v late", e.idx, time.Duration(now-e.when))
			}
			fired[e.idx] = now
			order = append(order, e.idx)
		})
	}
	if len(fired) != len(delays) || w.count != 0 {
		t.Fatalf("fired %d of %d, %d left", len(fired), len(delays), w.count)
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			t.Fatalf("out of order: %v", order)
		}
	}
}

func TestWheelLongSleepAndTimeout(t *testing.T) {
	var w wheel
	w.init(0)
	if got := w.timeout(0); got != -1 {
		t.Fatalf("empty wheel timeout %d, want -1", got)
	}
	w.add(timerEntry{when: int64(50 * time.Millisecond), idx: 1})
	if got := w.timeout(0); got < 49 || got > 51 {
		t.Fatalf("timeout %d ms, want ~50", got)
	}
	w.add(timerEntry{when: int64(20 * time.Second), idx: 2})
	n := 0
	// The loop slept far past both: one advance must fire both.
	w.advance(int64(30*time.Second), func(timerEntry) { n++ })
	if n != 2 || w.count != 0 {
		t.Fatalf("fired %d, %d left", n, w.count)
	}
	// An entry added from a callback for the past fires on the next tick.
	w.add(timerEntry{when: 0, idx: 3})
	w.advance(int64(30*time.Second)+wheelTick, func(timerEntry) { n++ })
	if n != 3 {
		t.Fatalf("past entry not fired")
	}
}

func TestWheelAdvanceAllocs(t *testing.T) {
	var w wheel
	w.init(0)
	now := int64(0)
	fire := func(e timerEntry) { w.add(timerEntry{when: e.when + int64(time.Second), idx: e.idx}) }
	for i := 0; i < 1000; i++ {
		w.add(timerEntry{when: int64(i) * int64(time.Millisecond), idx: uint32(i)})
	}
	for i := 0; i < 2000; i++ { // warm the buckets up
		now += wheelTick
		w.advance(now, fire)
	}
	allocs := testing.AllocsPerRun(100, func() {
		now += wheelTick
		w.advance(now, fire)
	})
	if allocs != 0 {
		t.Fatalf("advance allocates %v per run", allocs)
	}
}

func TestInboxCoalescesWakeups(t *testing.T) {
	var wakes int
	var b inbox
	b.wake = func() { wakes++ } // called under b.mu
	const producers, each = 8, 500
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b.push(func(*Loop) {})
			}
		}()
	}
	wg.Wait()
	if wakes != 1 || b.wakes.Load() != 1 {
		t.Fatalf("%d posts caused %d wake-ups, want 1", producers*each, wakes)
	}
	q := b.take()
	if len(q) != producers*each {
		t.Fatalf("took %d, want %d", len(q), producers*each)
	}
	clear(q)
	b.push(func(*Loop) {})
	b.push(func(*Loop) {})
	if wakes != 2 {
		t.Fatalf("after a drain, the next post must wake again: %d", wakes)
	}
	b.close()
	if b.push(func(*Loop) {}) {
		t.Fatal("push after close accepted")
	}
}

func TestArenaReuse(t *testing.T) {
	var a arena[[]byte]
	a.reset = func(b *[]byte) { *b = (*b)[:0] }
	i := a.alloc()
	if i == 0 {
		t.Fatal("index 0 handed out")
	}
	*a.at(i) = append(*a.at(i), "abc"...)
	a.release(i)
	j := a.alloc()
	if j != i || len(*a.at(j)) != 0 || cap(*a.at(j)) < 3 {
		t.Fatalf("arena reuse: idx %d len %d cap %d", j, len(*a.at(j)), cap(*a.at(j)))
	}
	if a.inUse() != 1 {
		t.Fatalf("inUse %d", a.inUse())
	}
}

func TestWrongLoopHandle(t *testing.T) {
	l := manualLoop(t, Config{}, &nopHandler{})
	fd, _ := socketpair(t)
	h := l.adopt(t, fd, false)
	other := makeHandle(l.id+1, h.gen(), h.Index())
	if err := l.Write(other, 1, nil); err != ErrWrongLoop {
		t.Fatalf("Write with another loop's handle: %v", err)
	}
	if err := l.Write(h, 1, nil); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

// The slot table is never scanned by the garbage collector only as long as
// slot (the decoder inside it included) holds no pointers.
func TestSlotHoldsNoPointers(t *testing.T) {
	var walk func(path string, ty reflect.Type)
	walk = func(path string, ty reflect.Type) {
		switch ty.Kind() {
		case reflect.Struct:
			for i := 0; i < ty.NumField(); i++ {
				f := ty.Field(i)
				walk(path+"."+f.Name, f.Type)
			}
		case reflect.Array:
			walk(path+"[]", ty.Elem())
		case reflect.Pointer, reflect.UnsafePointer, reflect.Slice, reflect.Map, reflect.String,
			reflect.Interface, reflect.Func, reflect.Chan:
			t.Errorf("%s is a %s: slots must hold no pointers", path, ty.Kind())
		}
	}
	walk("slot", reflect.TypeFor[slot]())
}

// TestWheelBurstReleasesCapacity: a connection storm arms thousands of
// handshake deadlines in a few buckets; once they have fired and the
// connections' next deadlines lie elsewhere, the emptied buckets must not
// keep their burst-sized arrays.
func TestWheelBurstReleasesCapacity(t *testing.T) {
	var w wheel
	w.init(0)
	const n = 10000
	for i := 0; i < n; i++ { // accepted over 0.5 s, handshake deadline 5 s later
		at := int64(i) * int64(500*time.Millisecond) / n
		w.add(timerEntry{when: at + int64(5*time.Second), idx: uint32(i)})
	}
	rearm := func(e timerEntry) { w.add(timerEntry{when: e.when + int64(30*time.Second), idx: e.idx}) }
	for now := int64(0); now <= int64(8*time.Second); now += wheelTick {
		w.advance(now, rearm)
	}
	total := cap(w.spare)
	for _, b := range w.buckets {
		total += cap(b)
	}
	if w.count != n {
		t.Fatalf("%d entries, want %d", w.count, n)
	}
	if total > 2*n {
		t.Fatalf("bucket arrays hold %d entries of capacity for %d entries", total, n)
	}
}

// TestTimerEntrySize: every connection has an entry in the wheel, so the
// entry's size is part of each idle connection's memory.
func TestTimerEntrySize(t *testing.T) {
	if n := unsafe.Sizeof(timerEntry{}); n != 16 {
		t.Fatalf("timerEntry is %d bytes, want 16", n)
	}
}

// TestAfterFiresInOrder: After callbacks run on the loop once each, in
// deadline order, and a freed callback index is reused.
func TestAfterFiresInOrder(t *testing.T) {
	n := startNode(t, testConfig(), &nopHandler{})
	got := make(chan int, 8)
	for round := 0; round < 2; round++ {
		onLoop(n, 0, func(l *Loop) {
			for _, k := range []int{3, 1, 2} {
				l.After(time.Duration(k)*20*time.Millisecond, func(*Loop) { got <- k })
			}
		})
		for want := 1; want <= 3; want++ {
			select {
			case k := <-got:
				if k != want {
					t.Fatalf("round %d: callback %d fired, want %d", round, k, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("round %d: callback %d never fired", round, want)
			}
		}
	}
	onLoop(n, 0, func(l *Loop) {
		if len(l.fns) != 3 {
			t.Errorf("%d callback slots after two rounds of 3, want 3 (reused)", len(l.fns))
		}
	})
}

// A loop with only far deadlines (idle connections pinged minutes apart)
// sleeps until the first of them instead of waking every tick at each
// non-empty bucket: 5,000 entries 5-10 minutes ahead fill every bucket.
func TestWheelSleepsUntilDue(t *testing.T) {
	var w wheel
	w.init(0)
	for i := 0; i < 5000; i++ {
		w.add(timerEntry{when: int64(5*time.Minute) + int64(i)*int64(60*time.Millisecond), idx: uint32(i)})
	}
	if got := w.timeout(0); got != 300000 {
		t.Fatalf("timeout %d ms, want 300000 (the first deadline)", got)
	}
	// Waking early (an event) and advancing fires nothing and keeps the
	// sleep aimed at the first deadline.
	fired := 0
	now := int64(0)
	wakes := 0
	for now < int64(6*time.Minute) {
		d := w.timeout(now)
		now += int64(d) * int64(time.Millisecond)
		w.advance(now, func(e timerEntry) {
			fired++
			if now < e.when {
				t.Fatalf("entry %d due at %d fired at %d", e.idx, e.when, now)
			}
		})
		wakes++
	}
	// 1,000 entries fall due in the 60 s after the first: the loop wakes
	// once per 5 ms tick with something due (at most 12,000), never for
	// nothing before the first deadline.
	if fired != 1001 || wakes > 12001 {
		t.Fatalf("fired %d in %d wake-ups", fired, wakes)
	}
	// An entry added for now is due on the next tick, not at once.
	w.add(timerEntry{when: now, idx: 9999})
	if got := w.timeout(now); got <= 0 || got > 5 {
		t.Fatalf("timeout for a due entry %d ms, want 1-5", got)
	}
}

// TestArenaChunks: indexes start at 1, are reused after release, and an
// item's address does not move when the arena grows (chunks, no copy).
func TestArenaChunks(t *testing.T) {
	var a arena[outQueue]
	first := a.alloc()
	p := a.at(first)
	p.bytes = 7
	seen := map[uint32]bool{first: true}
	for range 3 * arenaChunk {
		i := a.alloc()
		if i == 0 || seen[i] {
			t.Fatalf("index %d handed out twice or zero", i)
		}
		seen[i] = true
	}
	if a.at(first) != p || p.bytes != 7 {
		t.Fatal("an item moved when the arena grew")
	}
	if a.inUse() != 3*arenaChunk+1 || len(a.chunks) != 4 {
		t.Fatalf("%d in use in %d chunks", a.inUse(), len(a.chunks))
	}
	a.release(first)
	if i := a.alloc(); i != first {
		t.Fatalf("released index %d not reused (got %d)", first, i)
	}
}
