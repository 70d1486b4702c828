package measure

import (
	"encoding/json"
	"os"
	"testing"
	"time"
)

func TestHistSnapshotMergeAcrossProcesses(t *testing.T) {
	a, b, direct := NewHist(), NewHist(), NewHist()
	for i := 1; i <= 1000; i++ {
		d := time.Duration(i) * time.Millisecond
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
		direct.Record(d)
	}
	merged := NewHist()
	for _, h := range []*Hist{a, b} {
		// Through JSON, as between a worker and the parent.
		buf, err := json.Marshal(h.Export())
		if err != nil {
			t.Fatal(err)
		}
		var s Snapshot
		if err := json.Unmarshal(buf, &s); err != nil {
			t.Fatal(err)
		}
		if err := merged.MergeSnapshot(s); err != nil {
			t.Fatal(err)
		}
	}
	if merged.Count() != 1000 {
		t.Fatalf("count %d, want 1000", merged.Count())
	}
	for _, q := range []float64{50, 90, 99, 99.9, 100} {
		if got, want := merged.QuantileMs(q), direct.QuantileMs(q); got != want {
			t.Errorf("p%v: merged %v, direct %v", q, got, want)
		}
	}
	if p50 := merged.QuantileMs(50); p50 < 499 || p50 > 501 {
		t.Errorf("p50 %v ms, want about 500", p50)
	}
	if merged.MaxMs() < 999 || merged.MaxMs() > 1001 {
		t.Errorf("max %v", merged.MaxMs())
	}
}

func TestHistClampsAndRejectsBadSnapshots(t *testing.T) {
	h := NewHist()
	h.Record(0)
	h.Record(time.Hour)
	if h.Count() != 2 {
		t.Fatalf("out-of-range values lost: count %d", h.Count())
	}
	if _, err := Import(Snapshot{Sig: 2, High: histHigh}); err != ErrSnapshot {
		t.Errorf("wrong geometry: err %v", err)
	}
	if _, err := Import(Snapshot{Sig: histSig, High: histHigh, Counts: [][2]int64{{1 << 40, 1}}}); err != ErrSnapshot {
		t.Errorf("index out of range: err %v", err)
	}
	empty := NewHist()
	if empty.QuantileMs(99) != 0 || empty.MaxMs() != 0 {
		t.Error("empty histogram must report zeros")
	}
}

func TestRecorderShardsIntervalAndTotals(t *testing.T) {
	r := NewRecorder(2)
	a, b := r.Shard(0).Op("rtt"), r.Shard(1).Op("rtt")
	a.Record(time.Millisecond)
	b.Record(3 * time.Millisecond)
	b.Error()
	r.Shard(0).Add("msgs", 2)
	*r.Shard(1).Counter("msgs") += 3
	iv := r.Interval()
	h, err := Import(iv["rtt"])
	if err != nil || h.Count() != 2 {
		t.Fatalf("interval count %v err %v", h, err)
	}
	if h2, _ := Import(r.Interval()["rtt"]); h2.Count() != 0 {
		t.Fatalf("interval not reset: %d", h2.Count())
	}
	ops, counters := r.Totals()
	if ops["rtt"].Count != 2 || ops["rtt"].Errors != 1 {
		t.Fatalf("totals %+v", ops["rtt"])
	}
	if counters["msgs"] != 5 {
		t.Fatalf("counters %v", counters)
	}
}

func TestSeqAccounting(t *testing.T) {
	var g GapStats
	var s SeqState
	s.Joined(7, 10, true, 0, &g) // first join: a fresh start, not a reset
	for _, seq := range []int64{11, 12, 14, 14, 15} {
		s.Update(7, seq, &g)
	}
	if want := (GapStats{Updates: 5, Gaps: 1, Dups: 1}); g != want {
		t.Fatalf("after stream: %+v, want %+v", g, want)
	}
	// Rejoin with since=15 answered by a replay: position kept, replays fill it.
	s.Joined(7, 18, false, 3, &g)
	for _, seq := range []int64{16, 17, 18} {
		s.Update(7, seq, &g)
	}
	// Replays that follow on from 15 are neither gaps nor duplicates.
	if want := (GapStats{Updates: 8, Gaps: 1, Dups: 1, Replayed: 3}); g != want {
		t.Fatalf("after replay: %+v, want %+v", g, want)
	}
	// Rejoin answered by a reset: counted as a reset, the jump is no gap.
	s.Joined(7, 40, true, 0, &g)
	s.Update(7, 41, &g)
	if want := (GapStats{Updates: 9, Gaps: 1, Dups: 1, Replayed: 3, Resets: 1}); g != want {
		t.Fatalf("after reset: %+v, want %+v", g, want)
	}
	// A new epoch restarts the count without a gap.
	s.Update(8, 1, &g)
	s.Update(8, 2, &g)
	if want := (GapStats{Updates: 11, Gaps: 1, Dups: 1, Replayed: 3, Resets: 1, EpochChanges: 1}); g != want {
		t.Fatalf("after epoch change: %+v, want %+v", g, want)
	}
	// Within the new epoch a jump is a gap again.
	s.Update(8, 5, &g)
	if g.Gaps != 3 {
		t.Fatalf("gap in new epoch: %+v", g)
	}
	var sum GapStats
	sum.Add(g)
	sum.Add(g)
	if want := (GapStats{Updates: 24, Gaps: 6, Dups: 2, Replayed: 6, Resets: 2, EpochChanges: 2}); sum != want {
		t.Fatalf("Add: %+v, want %+v", sum, want)
	}
}

func TestPacerSchedulesByIntendedTime(t *testing.T) {
	start := time.Unix(1000, 0)
	p := NewPacer(start, 1000, -1) // one per ms
	if f, to := p.Due(start.Add(-time.Millisecond)); to != f {
		t.Fatalf("ops due before start: %d..%d", f, to)
	}
	if f, to := p.Due(start.Add(10 * time.Millisecond)); f != 0 || to != 11 {
		t.Fatalf("due at +10ms: %d..%d, want 0..11", f, to)
	}
	// A late caller gets everything it missed, each with its own intended time.
	if f, to := p.Due(start.Add(100 * time.Millisecond)); f != 11 || to != 101 {
		t.Fatalf("due at +100ms: %d..%d, want 11..101", f, to)
	}
	// Asking again (or with an earlier clock) hands out nothing twice.
	if f, to := p.Due(start.Add(50 * time.Millisecond)); f != 101 || to != 101 {
		t.Fatalf("due again at +50ms: %d..%d, want 101..101", f, to)
	}
	if got := p.Intended(50); !got.Equal(start.Add(50 * time.Millisecond)) {
		t.Fatalf("intended(50) = %v", got)
	}
	if !p.NextAt().Equal(start.Add(101 * time.Millisecond)) {
		t.Fatalf("next at %v", p.NextAt())
	}
	lim := NewPacer(start, 1000, 5)
	if _, to := lim.Due(start.Add(time.Second)); to != 5 || !lim.NextAt().IsZero() {
		t.Fatalf("limit: to %d next %v", to, lim.NextAt())
	}
	if _, to := NewPacer(start, 0, -1).Due(start.Add(time.Second)); to != 0 {
		t.Fatal("zero rate handed out ops")
	}
}

func TestDriveHandsOutExactlyTheScheduledOps(t *testing.T) {
	start := time.Now()
	p := NewPacer(start, 2000, -1)
	var next int64
	calls := 0
	Drive(p, start.Add(50*time.Millisecond), make(chan struct{}), func(from, to int64) {
		if from != next {
			t.Fatalf("batch starts at %d, want %d", from, next)
		}
		next = to
		calls++
	})
	if next != 100 {
		t.Fatalf("handed out %d ops over 50ms at 2000/s, want 100", next)
	}
	if calls < 2 {
		t.Fatalf("all ops in %d batch(es): pacing did not spread them", calls)
	}
	stop := make(chan struct{})
	close(stop)
	n := 0
	// A Drive that ignored stop would hand out many batches before its end.
	Drive(NewPacer(time.Now(), 1e6, -1), time.Now().Add(2*time.Second), stop, func(from, to int64) { n++ })
	if n > 1 {
		t.Fatalf("drive kept going after stop: %d batches", n)
	}
}

func TestBroadcastMergeAndSteps(t *testing.T) {
	// Two processes with 2 and 1 receivers; message 1 was missed by one.
	w1 := []BcastRec{{ID: 0, Step: 0, Sent: 100, Count: 2, Last: 150}, {ID: 1, Step: 1, Sent: 200, Count: 1, Last: 260}}
	w2 := []BcastRec{{ID: 0, Step: 0, Sent: 100, Count: 1, Last: 190}, {ID: 1, Step: 1, Sent: 200, Count: 1, Last: 230}}
	m := MergeBcast(w1, w2)
	if len(m) != 2 || m[0].Count != 3 || m[0].Last != 190 || m[1].Count != 2 || m[1].Last != 260 {
		t.Fatalf("merged %+v", m)
	}
	st := Steps(m, 3, []int64{1, 2}, []float64{10, 20}, time.Second)
	if st[0].Complete != 1 || st[0].Lost != 0 || st[0].TTE.Count() != 1 {
		t.Fatalf("step 0 %+v", st[0])
	}
	// Step 1 sent 2 messages to 3 receivers, 2 receipts arrived.
	if st[1].Complete != 0 || st[1].Expected != 6 || st[1].Lost != 4 || st[1].DeliveryPS != 2 {
		t.Fatalf("step 1 %+v", st[1])
	}

	r := NewRecorder(2)
	op := r.Shard(0).Op("oneway")
	now := time.Unix(0, 5_000_000)
	r.Shard(0).Deliver(9, 0, 1_000_000, now, op)
	r.Shard(1).Deliver(9, 0, 1_000_000, now.Add(time.Millisecond), nil)
	b := r.Bcast()
	if len(b) != 1 || b[0].Count != 2 || b[0].Last != 6_000_000 {
		t.Fatalf("recorder bcast %+v", b)
	}
	ops, _ := r.Totals()
	if ops["oneway"].Count != 1 {
		t.Fatalf("one-way not recorded: %+v", ops["oneway"])
	}
}

func TestSampleProcSelf(t *testing.T) {
	s, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes <= 0 || s.CPUSeconds < 0 {
		t.Fatalf("sample %+v", s)
	}
	if _, err := SampleProc(-1); err == nil {
		t.Fatal("no error for a missing pid")
	}
	if SelfCPU() <= 0 {
		t.Fatal("own CPU time is zero")
	}
}

func TestProcParsingUnits(t *testing.T) {
	// A command name with spaces and parentheses; utime 250 and stime 150
	// ticks of USER_HZ (100/s) are 4 CPU seconds.
	stat := []byte("4242 (huntgate (x) y) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 8 0 12345 123456789 5000 18446744073709551615\n")
	if cpu, err := parseStatCPU(stat); err != nil || cpu != 4 {
		t.Fatalf("cpu %v s, err %v; want 4 s", cpu, err)
	}
	if _, err := parseStatCPU([]byte("4242 (x) S 1 2")); err != ErrProcStat {
		t.Fatalf("short stat: err %v", err)
	}
	// statm: size resident shared ... in pages.
	if rss, err := parseStatmRSS([]byte("30000 5000 1200 300 0 9000 0\n"), 4096); err != nil || rss != 5000*4096 {
		t.Fatalf("rss %d err %v, want %d", rss, err, 5000*4096)
	}
	// The live reading agrees with statm's own page count.
	s, err := SampleProc(os.Getpid())
	if err != nil || s.RSSBytes%int64(os.Getpagesize()) != 0 {
		t.Fatalf("sample %+v err %v", s, err)
	}
}

func TestParseMeminfo(t *testing.T) {
	b := []byte("MemTotal:       24603644 kB\nSlab:             181352 kB\nSUnreclaim:        33088 kB\nHugePages_Total:       0\n")
	if n, err := parseMeminfo(b, "Slab"); err != nil || n != 181352<<10 {
		t.Fatalf("Slab %d %v", n, err)
	}
	if n, err := parseMeminfo(b, "HugePages_Total"); err != nil || n != 0 {
		t.Fatalf("HugePages_Total %d %v", n, err)
	}
	if _, err := parseMeminfo(b, "Sla"); err == nil {
		t.Fatal("a prefix of a key matched")
	}
	if n, err := KernelSlab(); err != nil || n <= 0 {
		t.Fatalf("KernelSlab %d %v", n, err)
	}
	// VmHWM of /proc/PID/status is read the same way, and is never below
	// the current RSS.
	st := []byte("Name:\thuntgate\nVmPeak:\t 1262324 kB\nVmHWM:\t   23584 kB\nVmRSS:\t   23100 kB\n")
	if n, err := parseMeminfo(st, "VmHWM"); err != nil || n != 23584<<10 {
		t.Fatalf("VmHWM %d %v", n, err)
	}
	s, err := SampleProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p, err := PeakRSS(os.Getpid()); err != nil || p < s.RSSBytes {
		t.Fatalf("PeakRSS %d %v, RSS %d", p, err, s.RSSBytes)
	}
}
