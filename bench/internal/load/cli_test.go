package load

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
)

func TestParseArgsCommonAndScenarioFlags(t *testing.T) {
	var out bytes.Buffer
	c, err := ParseArgs([]string{"echo", "--url", "ws://127.0.0.1:9000", "--players", "20000", "--pipeline", "8", "--size", "64",
		"--src", "127.0.0.2-127.0.0.4,127.0.0.9", "--duration", "5s", "--json", "r.json", "--html", "r.html", "--pid", "42"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.Config
	if cfg.Scenario != Echo || cfg.Players != 20000 || cfg.Pipeline != 8 || cfg.Size != 64 || cfg.Duration != 5*time.Second || cfg.PID != 42 {
		t.Fatalf("parsed %+v", cfg)
	}
	if got := strings.Join(cfg.Src, ","); got != "127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.9" {
		t.Fatalf("src %s", got)
	}
	// 20,000 sockets need 3 processes of at most MaxPerProc each.
	if cfg.Procs != 3 || c.JSON != "r.json" || c.HTML != "r.html" {
		t.Fatalf("procs %d json %q html %q", cfg.Procs, c.JSON, c.HTML)
	}
	ws := cfg.Split()
	total := 0
	for i, w := range ws {
		total += w.Count
		if w.Count > MaxPerProc || len(w.Src) == 0 {
			t.Fatalf("worker %d: %d players, src %v", i, w.Count, w.Src)
		}
		if i > 0 && w.First != ws[i-1].First+ws[i-1].Count {
			t.Fatalf("worker %d starts at %d", i, w.First)
		}
	}
	if total != 20000 {
		t.Fatalf("split covers %d players", total)
	}
}

func TestParseArgsHelpAndErrors(t *testing.T) {
	var out bytes.Buffer
	if _, err := ParseArgs([]string{"--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"hold", "compare", "--url", "--jwt-secret", "--procs", "--src", "--html"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("top-level help lacks %q", want)
		}
	}
	out.Reset()
	if _, err := ParseArgs([]string{"fanout", "--help"}, &out); !errors.Is(err, ErrHelp) {
		t.Fatalf("fanout --help: %v", err)
	}
	if !strings.Contains(out.String(), "-rates") || !strings.Contains(out.String(), "default 1000") {
		t.Errorf("fanout help lacks its flags or defaults:\n%s", out.String())
	}
	bad := [][]string{
		{"nosuch"},
		{"dig", "--admin", "http://x"},           // no auth mode
		{"dig", "--dev"},                         // no admin
		{"echo", "--url", "http//nohost"},        // bad url
		{"echo", "--src", "127.0.0.9-127.0.1.2"}, // range over more than the last octet
		{"fanout", "--rates", "1,x"},             // bad rate
		{"compare", "--a", "ws://127.0.0.1:1"},   // no --b
		{"compare", "--a", "ws://a:1", "--b", "ws://b:1", "--scenario", "compare"},
		{"echo", "stray"},
		{"crowd", "--dev", "--admin", "http://x", "--duration", "60s", "--event-after", "-1s"}, // before the dig phase
		{"crowd", "--dev", "--admin", "http://x", "--duration", "60s", "--event-after", "60s"}, // at its end
		{"crowd", "--dev", "--admin", "http://x", "--duration", "60s", "--event-after", "90s"}, // past it
		{"dig", "--dev", "--admin", "http://x", "--ping-floor", "5s"},                          // crowd's only
	}
	for _, args := range bad {
		if _, err := ParseArgs(args, &out); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	// The steady window ends at the first of the events and the kill.
	cr, err := ParseArgs([]string{"crowd", "--dev", "--admin", "http://x", "--duration", "60s", "--event-after", "20s",
		"--event-rate", "0.05", "--kill-pid", "1", "--kill-after", "30s"}, &out)
	if err != nil || cr.Config.Steady() != 20*time.Second {
		t.Fatalf("crowd steady window: %v %v", cr.Config.Steady(), err)
	}
	if cr.Config.KillAfter = 10 * time.Second; cr.Config.Steady() != 10*time.Second {
		t.Fatalf("steady window with the kill first: %v", cr.Config.Steady())
	}
	if cr.Config.EventRate, cr.Config.KillPID = 0, 0; cr.Config.Steady() != 60*time.Second {
		t.Fatalf("steady window with neither: %v", cr.Config.Steady())
	}
	c, err := ParseArgs([]string{"compare", "--a", "ws://127.0.0.1:1", "--b", "ws://127.0.0.1:2", "--scenario", "fanout", "--rounds", "4"}, &out)
	if err != nil || c.Inner != Fanout || c.Config.Scenario != Fanout || c.Rounds != 4 {
		t.Fatalf("compare: %+v %v", c, err)
	}
}

// syntheticResults are two workers' results of a fanout run over two steps
// with 3 receivers in total.
func syntheticResults() []*Result {
	mk := func(ds ...time.Duration) measure.Snapshot {
		h := measure.NewHist()
		for _, d := range ds {
			h.Record(d)
		}
		return h.Export()
	}
	return []*Result{
		{
			Ops:       map[string]measure.OpResult{"oneway.s00": {Count: 2, Hist: mk(time.Millisecond, 2*time.Millisecond)}, "handshake": {Count: 2, Errors: 1, Hist: mk(time.Millisecond, time.Millisecond)}},
			Counters:  map[string]int64{cMsgsIn: 4, "close_1006": 1},
			Bcast:     []measure.BcastRec{{ID: 0, Step: 0, Sent: 1e9, Count: 2, Last: 1e9 + 2e6}, {ID: 1 << 20, Step: 1, Sent: 2e9, Count: 2, Last: 2e9 + 1e6}},
			Sent:      []int64{1, 1},
			Connected: 2,
		},
		{
			Ops:       map[string]measure.OpResult{"oneway.s00": {Count: 1, Hist: mk(3 * time.Millisecond)}},
			Counters:  map[string]int64{cMsgsIn: 1},
			Bcast:     []measure.BcastRec{{ID: 0, Step: 0, Sent: 1e9, Count: 1, Last: 1e9 + 3e6}},
			Connected: 1,
		},
	}
}

func TestReportJSONShape(t *testing.T) {
	cfg := Config{Scenario: Fanout, URL: "ws://127.0.0.1:1", Players: 3, Duration: 2 * time.Second}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	agg := newAggregator(cfg, 2, nil, newSampler(nil))
	rep := buildReport(cfg, syntheticResults(), []float64{10, 20}, time.Second, agg, nil, nil)
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	ops := m["ops"].(map[string]any)
	for _, name := range []string{"oneway", "handshake"} {
		o, ok := ops[name].(map[string]any)
		if !ok {
			t.Fatalf("ops lacks %s: %v", name, ops)
		}
		for _, k := range []string{"count", "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"} {
			if _, ok := o[k]; !ok {
				t.Errorf("ops.%s lacks %s", name, k)
			}
		}
	}
	if ops["oneway"].(map[string]any)["count"].(float64) != 3 || ops["handshake"].(map[string]any)["errors"].(float64) != 1 {
		t.Fatalf("merged counts wrong: %v", ops)
	}
	// The histograms themselves are merged across workers (1, 2 and 3 ms),
	// not only their counts.
	if ow := rep.Ops["oneway"]; ow.P50 < 1.99 || ow.P50 > 2.01 || ow.Max < 2.99 || ow.Max > 3.01 {
		t.Fatalf("merged oneway histogram: %+v", ow)
	}
	facts := m["facts"].(map[string]any)
	for _, k := range []string{"connections", "deliveries_per_s", "seq", "close_codes", "server_rss", "server_cpu_s", "own_cpu_s", "own_cpu_share", "lost", "max_rate_ok"} {
		if _, ok := facts[k]; !ok {
			t.Errorf("facts lacks %s", k)
		}
	}
	// Step 0: 1 message, all 3 receivers got it; step 1: 1 message, 2 of 3.
	if len(rep.Steps) != 2 || !rep.Steps[0].OK || rep.Steps[1].OK || rep.Steps[1].Lost != 1 {
		t.Fatalf("steps %+v", rep.Steps)
	}
	if rep.Facts.MaxRateOK != 10 || rep.Facts.Connections != 3 || rep.Facts.CloseCodes["1006"] != 1 {
		t.Fatalf("facts %+v", rep.Facts)
	}
	if rep.Steps[0].TTE.Max < 2.9 || rep.Steps[0].TTE.Max > 3.1 {
		t.Fatalf("time to everyone is the last receipt across workers: %v", rep.Steps[0].TTE.Max)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "oneway") || !strings.Contains(table.String(), "max rate with 100% delivered") {
		t.Fatalf("table:\n%s", table.String())
	}
	page := rep.HTML()
	if !strings.Contains(page, "<svg") || strings.Contains(page, "http://cdn") || strings.Contains(page, "<script src") {
		t.Fatal("html is not a self-contained page with inline svg")
	}
}

func TestCompareMediansAndRatios(t *testing.T) {
	mk := func(p99, tput float64) *Report {
		return &Report{Scenario: Echo, MainOp: "rtt", Ops: map[string]OpReport{"rtt": {P99: p99}}, Facts: Facts{ThroughputPerS: tput}}
	}
	a := Medians([]*Report{mk(10, 100), mk(30, 300), mk(20, 200)})
	b := Medians([]*Report{mk(5, 800), mk(5, 800)})
	r := Ratios(a, b)
	if a["rtt_p99_ms"] != 20 || r["rtt_p99_ms"] != 0.25 || r["throughput_per_s"] != 4 {
		t.Fatalf("a %v ratios %v", a, r)
	}
	cr := &CompareReport{Scenario: Echo, A: "ws://a:1", B: "ws://b:2", Rounds: 2,
		RunsA: []*Report{mk(10, 100), mk(30, 300)}, RunsB: []*Report{mk(5, 800), mk(5, 800)}}
	cr.MedianA, cr.MedianB = Medians(cr.RunsA), Medians(cr.RunsB)
	cr.Ratio = Ratios(cr.MedianA, cr.MedianB)
	page := cr.HTML()
	for _, want := range []string{"<svg", "rtt_p99_ms", "0.25", "10.00 30.00", `class="better">4.00`, "round 1"} {
		if !strings.Contains(page, want) {
			t.Fatalf("compare page lacks %q", want)
		}
	}
	if strings.Contains(page, "<script src") {
		t.Fatal("compare page is not self-contained")
	}
}

func TestSuiteSummaryMediansAndRatios(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, tput float64) {
		r := &Report{Scenario: Echo, MainOp: "rtt", Ops: map[string]OpReport{"rtt": {}}, Facts: Facts{ThroughputPerS: tput}}
		if err := r.WriteJSON(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	write("gorilla-echo-tput.json", 100)
	write("fast-echo-tput-r1.json", 300)
	write("fast-echo-tput-r2.json", 500)
	write("fast-echo-tput-r3.json", 9000)
	var out bytes.Buffer
	vals, err := SuiteSummary(dir, "gorilla", []string{"gorilla", "fast"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	name := "echo throughput, pipelined (msg/s)"
	if vals["fast"][name] != 500 || vals["gorilla"][name] != 100 {
		t.Fatalf("medians %v", vals)
	}
	if !strings.Contains(out.String(), "5.00x") {
		t.Fatalf("ratio missing:\n%s", out.String())
	}
	if strings.Contains(out.String(), "hold") {
		t.Fatalf("metric names leaked test ids:\n%s", out.String())
	}
}

func TestPIDList(t *testing.T) {
	var out bytes.Buffer
	c, err := ParseArgs([]string{"hold", "--pid", "12,34"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	if c.Config.PID != 12 || len(c.Config.ExtraPIDs) != 1 || c.Config.ExtraPIDs[0] != 34 || len(c.Config.PIDs()) != 2 {
		t.Fatalf("pids %d %v", c.Config.PID, c.Config.ExtraPIDs)
	}
	if _, err := ParseArgs([]string{"hold", "--pid", "12,x"}, &out); err == nil {
		t.Fatal("accepted a bad pid list")
	}
	// The settled RSS is the lowest sample from the settle time on, summed
	// over the processes (this one twice here).
	self := os.Getpid()
	s := newSampler([]int{self, self})
	defer s.stop()
	s.settle(time.Now().Add(-time.Second), time.Now().Add(time.Hour))
	one := s.sample()
	if one.RSSBytes <= 0 || s.settledRSS() != one.RSSBytes {
		t.Fatalf("sample %+v settled %d", one, s.settledRSS())
	}
	single, err := measure.SampleProc(self)
	if err != nil || one.RSSBytes < single.RSSBytes*3/2 {
		t.Fatalf("sum of two %d vs one %d (%v)", one.RSSBytes, single.RSSBytes, err)
	}
}

func TestTickLabelUnits(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{0, "ms", "0"},
		{250, "ms", "250 ms"},
		{2500, "ms", "2.5 s"},
		{5000, "", "5.0k"},
		{1.5e6, "", "1.5M"},
	} {
		if got := tickLabel(tc.v, tc.unit); got != tc.want {
			t.Errorf("tickLabel(%v, %q) = %q, want %q", tc.v, tc.unit, got, tc.want)
		}
	}
}

// TestDefaultLoopsShareCPUs: the default client loops of all workers
// together never exceed the CPUs, and each worker has at least one.
func TestDefaultLoopsShareCPUs(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, workers := range []int{0, 1, 2, 3, cpus, 4 * cpus} {
		n := defaultLoops(workers)
		if n < 1 {
			t.Fatalf("%d workers: %d loops each", workers, n)
		}
		if w := max(1, workers); n > 1 && n*w > cpus {
			t.Fatalf("%d workers x %d loops > %d CPUs", w, n, cpus)
		}
	}
	if n := defaultLoops(1); n != cpus {
		t.Fatalf("one worker: %d loops, want %d (one per CPU)", n, cpus)
	}
}
