package load

import (
	"testing"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
	"github.com/huntgate/huntgate/framing"
)

func snap(ds ...time.Duration) measure.Snapshot {
	h := measure.NewHist()
	for _, d := range ds {
		h.Record(d)
	}
	return h.Export()
}

// The timeline shows the main operation only: dig records dug.wire beside
// dug for every reply, which must not double the count or pull the
// percentiles towards the wire time. Fanout and event do merge their
// per-step one-way ops.
func TestTimelineMainOpOnly(t *testing.T) {
	agg := newAggregator(Config{Scenario: Dig}, 1, nil, newSampler(nil))
	at := agg.t0.UnixMilli() + 500
	agg.tick(Msg{Type: "tick", Tick: &Tick{At: at, Ops: map[string]measure.Snapshot{
		"dug":         snap(100 * time.Millisecond),
		"dug.wire":    snap(time.Millisecond),
		"dig.sendlag": snap(time.Millisecond),
	}}})
	tl := agg.timelineLocked()
	if len(tl) != 1 || tl[0].Count != 1 || tl[0].P50 < 99 || tl[0].P50 > 101 {
		t.Fatalf("dig timeline %+v, want one dug sample of 100 ms", tl)
	}

	agg = newAggregator(Config{Scenario: Fanout}, 1, nil, newSampler(nil))
	agg.tick(Msg{Type: "tick", Tick: &Tick{At: agg.t0.UnixMilli() + 500, Ops: map[string]measure.Snapshot{
		"oneway.s00": snap(time.Millisecond),
		"oneway.s01": snap(3 * time.Millisecond),
		"handshake":  snap(time.Second),
	}}})
	if tl := agg.timelineLocked(); len(tl) != 1 || tl[0].Count != 2 || tl[0].Max > 3.01 {
		t.Fatalf("fanout timeline %+v, want the two one-way samples", tl)
	}
}

// The idle RSS of a hold is the lowest sample inside the settle window (the
// second half of the hold): samples taken once the connections close, which
// the sampler keeps taking until the run ends, are not an idle footprint.
func TestSettledRSSOnlyInsideTheHold(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var next measure.ProcSample
	// Without newSampler's ticker: every sample here is taken by the test.
	s := &sampler{pids: []int{1, 2}, read: func(pid int) (measure.ProcSample, error) { return next, nil }}
	s.settle(t0, t0.Add(5*time.Second))
	for _, x := range []struct {
		at  time.Duration
		rss int64
	}{
		{-time.Second, 100},    // before the window: handshake garbage
		{time.Second, 600},     // inside
		{4 * time.Second, 500}, // inside: the settled minimum
		{7 * time.Second, 50},  // after the hold, connections closed
	} {
		next = measure.ProcSample{At: t0.Add(x.at), RSSBytes: x.rss}
		s.sample()
	}
	// Two pids, each read as next: the sum is twice the value.
	if got := s.settledRSS(); got != 1000 {
		t.Fatalf("settled RSS %d, want 1000 (2 x 500)", got)
	}
}

// Message rates are the measured phase's messages over its length: the
// connect phase (joins) and the drain are in the raw counters but not in
// the rate.
func TestMessageRatesOnlyOverTheWindow(t *testing.T) {
	cfg := Config{Scenario: Echo, URL: "ws://127.0.0.1:1", Players: 2, Duration: 2 * time.Second, Pipeline: 8}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	res := []*Result{
		{Counters: map[string]int64{cMsgsIn: 700, cMsgsOut: 650, cReplies: 300}, Window: map[string]int64{cMsgsIn: 300, cMsgsOut: 350, cReplies: 300}},
		{Counters: map[string]int64{cMsgsIn: 500, cMsgsOut: 450, cReplies: 100}, Window: map[string]int64{cMsgsIn: 100, cMsgsOut: 50, cReplies: 100}},
	}
	rep := buildReport(cfg, res, nil, 0, newAggregator(cfg, 2, nil, newSampler(nil)), nil, nil)
	f := rep.Facts
	if f.MsgsInPerS != 200 || f.MsgsOutPerS != 200 || f.ThroughputPerS != 200 {
		t.Fatalf("in %v out %v throughput %v msg/s, want 200 each", f.MsgsInPerS, f.MsgsOutPerS, f.ThroughputPerS)
	}
	if f.Counters[cMsgsIn] != 1200 {
		t.Fatalf("raw counters are whole-run totals: %v", f.Counters)
	}
}

// An event received twice by one player is one receipt: otherwise it would
// stand in for a player that missed the event, and the event would count
// as delivered to everyone, with a time to everyone.
func TestDuplicateEventIsNoReceipt(t *testing.T) {
	w, ls, p, g := recvFixture(Event)
	g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(1, 7, 1000))
	g.onMessage(w, ls, nil, p, framing.OpText, eventMsg(1, 7, 1000))
	recs := w.rec.Bcast()
	if len(recs) != 1 || recs[0].Count != 1 {
		t.Fatalf("receipts %+v, want one receipt of event 7", recs)
	}
	if gs := w.rec.GapTotals(); gs.Dups != 1 {
		t.Fatalf("seq %+v, want the duplicate counted", gs)
	}
	// With a second player that missed it, event 7 is lost, not complete.
	st := measure.Steps(measure.MergeBcast(recs), 2, []int64{1}, []float64{1}, time.Second)
	if st[0].Complete != 0 || st[0].Lost != 1 || st[0].TTE.Count() != 0 {
		t.Fatalf("step %+v", st[0])
	}
}
