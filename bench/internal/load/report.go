package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
)

// OpReport is one measured operation in the report.
type OpReport struct {
	Count  int64   `json:"count"`
	Errors int64   `json:"errors"`
	P50    float64 `json:"p50_ms"`
	P90    float64 `json:"p90_ms"`
	P99    float64 `json:"p99_ms"`
	P999   float64 `json:"p999_ms"`
	Max    float64 `json:"max_ms"`
}

func opReport(h *measure.Hist, errors int64) OpReport {
	return OpReport{Count: h.Count(), Errors: errors, P50: h.QuantileMs(50), P90: h.QuantileMs(90),
		P99: h.QuantileMs(99), P999: h.QuantileMs(99.9), Max: h.MaxMs()}
}

// Facts are the scenario-level numbers of a run.
type Facts struct {
	Connections          int64            `json:"connections"`              // open when the measured phase began
	Failed               int64            `json:"failed_dials"`             // dials or handshakes that failed in the connect phase
	ConnectS             float64          `json:"connect_s"`                // wall time of the connect phase
	MsgsInPerS           float64          `json:"msgs_in_per_s"`            // messages received per second (measured phase)
	MsgsOutPerS          float64          `json:"msgs_out_per_s"`           // messages sent per second (measured phase)
	ThroughputPerS       float64          `json:"throughput_per_s"`         // echo: replies per second inside the window
	DeliveriesPerS       float64          `json:"deliveries_per_s"`         // fanout/event: receipts per second, best passing step
	Lost                 int64            `json:"lost"`                     // expected receipts or replies that never came
	MaxRateOK            float64          `json:"max_rate_ok"`              // fanout/event: highest rate with all delivered and p99 < 250 ms
	Gaps                 measure.GapStats `json:"seq"`                      // seq accounting (game protocol)
	CloseCodes           map[string]int64 `json:"close_codes"`              // close codes seen before the end of the run
	Counters             map[string]int64 `json:"counters"`                 // every raw counter, summed over workers
	ServerRSSBefore      int64            `json:"server_rss_before"`        // bytes, before connecting (hold: after the warm-up)
	ServerRSSCold        int64            `json:"server_rss_cold"`          // bytes, before anything connected
	ServerRSS            int64            `json:"server_rss"`               // bytes, see server_rss_how
	ServerRSSPerConn     float64          `json:"server_rss_per_conn"`      // bytes, (server_rss - before) / connections
	ServerRSSPerConnCold float64          `json:"server_rss_per_conn_cold"` // bytes, (server_rss - cold) / connections
	ServerRSSHow         string           `json:"server_rss_how"`           // when server_rss was taken
	ServerRSSPeak        int64            `json:"server_rss_peak"`          // bytes, the highest RSS since the server started (VmHWM), read after the drain
	ServerCPUPerConnUS   float64          `json:"server_cpu_per_conn_us"`   // CPU µs per accepted+upgraded connection (connect phase)
	ServerCPUS           float64          `json:"server_cpu_s"`             // CPU seconds in the measured phase
	ServerCPUCores       float64          `json:"server_cpu_cores"`         // server_cpu_s / duration
	ServerCPUPerOpUS     float64          `json:"server_cpu_per_op_us"`     // echo: CPU µs per echoed message; fanout: per delivery (measured phase)
	ServerSyscalls       int64            `json:"server_syscalls"`          // --syscalls: system calls of the server in the measured phase
	ServerSyscallsBy     map[string]int64 `json:"server_syscalls_by"`       // --syscalls: the counted ones by name
	ServerSyscallsPerOp  float64          `json:"server_syscalls_per_op"`   // --syscalls: per echoed message (echo) or delivery (fanout)
	OwnCPUS              float64          `json:"own_cpu_s"`                // load generator CPU seconds, all processes, whole run
	OwnCPUMeasuredS      float64          `json:"own_cpu_measured_s"`       // load generator CPU seconds in the measured phase, all processes
	OwnCPUCores          float64          `json:"own_cpu_cores"`            // own_cpu_measured_s / duration
	OwnCPUShare          float64          `json:"own_cpu_share"`            // own_cpu_cores / CPUs of the machine
	Unanswered           int64            `json:"unanswered"`               // dig: digs sent without a dug or error reply by the end of the drain
	PublishIntended      int64            `json:"publish_intended"`         // event: events due by the requested rates
	PublishBehind        bool             `json:"publish_behind"`           // event: the publisher did not keep up (failed publishes or start lag p99 over budget)
	Joins                JoinFacts        `json:"joins"`                    // dig, event, game: how joins were answered
	ConnectedEnd         int64            `json:"connected_end"`            // open when the measured phase ended
	KilledAtS            float64          `json:"killed_at_s,omitempty"`    // crowd: when --kill-pid was killed, seconds into the measured phase (-1: the kill failed)
	LoadRSS              int64            `json:"load_rss"`                 // bytes, all load generator processes once connected
	LoadRSSPerPlayer     float64          `json:"load_rss_per_player"`      // bytes, (load_rss - their RSS before making players) / connections
	KernelSlabPerSocket  float64          `json:"kernel_slab_per_socket"`   // bytes, machine-wide Slab growth over the connect phase / (2 x connections): loopback puts both ends here
}

// JoinFacts account for every join a run sent. Each refusal is also an error
// of the join op in the table.
type JoinFacts struct {
	Admitted   int64            `json:"admitted"`        // joins answered joined (rejoins included)
	Refused    map[string]int64 `json:"refused"`         // error answers by code (each attempt)
	Retries    int64            `json:"retries"`         // overloaded joins sent again after a backoff
	GaveUp     int64            `json:"gave_up"`         // joins refused for good (not overloaded, or out of tries)
	Unanswered int64            `json:"unanswered"`      // connections that closed with their join pending
	PerS       float64          `json:"admitted_per_s"`  // admitted before the measured phase / connect phase
	PeakPerS   float64          `json:"peak_admitted_s"` // most admitted in one second of the timeline
}

// StepReport is one rate step of fanout or event.
type StepReport struct {
	// Name says what a crowd step is (the event alone, its floor, the dig
	// phase's events); "" for a rate step.
	Name       string   `json:"name,omitempty"`
	Bytes      int      `json:"bytes,omitempty"` // crowd's event phase: the message's size as players get it
	Rate       float64  `json:"rate"`
	Sent       int64    `json:"sent"`
	Expected   int64    `json:"expected"`
	Delivered  int64    `json:"delivered"`
	Lost       int64    `json:"lost"`
	Complete   int64    `json:"complete"`
	DeliveryPS float64  `json:"deliveries_per_s"`
	OneWay     OpReport `json:"oneway"`
	TTE        OpReport `json:"time_to_everyone"`
	OK         bool     `json:"ok"` // all delivered and one-way p99 < 250 ms
}

// Point is one second of the timeline.
type Point struct {
	T         float64 `json:"t"` // seconds since the run started
	Connected int64   `json:"connected"`
	MsgsPerS  float64 `json:"msgs_per_s"`
	JoinsPerS float64 `json:"joins_per_s,omitempty"` // joins admitted in this second
	Count     int64   `json:"count"`                 // main-op samples in this second
	P50       float64 `json:"p50_ms"`
	P90       float64 `json:"p90_ms"`
	P99       float64 `json:"p99_ms"`
	Max       float64 `json:"max_ms"`
	ServerRSS int64   `json:"server_rss,omitempty"`
}

// Report is the result of one run.
type Report struct {
	Scenario  string              `json:"scenario"`
	Target    string              `json:"target"`
	Started   time.Time           `json:"started"`
	Config    Config              `json:"config"`
	MainOp    string              `json:"main_op"`
	Ops       map[string]OpReport `json:"ops"`
	Facts     Facts               `json:"facts"`
	Steps     []StepReport        `json:"steps,omitempty"`
	Timeline  []Point             `json:"timeline"`
	StartedAt float64             `json:"measure_start_s"` // measured phase start on the timeline
}

// mainOp is the operation a scenario is about; fanout/event merge their
// per-step one-way ops under "oneway".
func mainOp(s string) string {
	switch s {
	case Hold:
		return "handshake"
	case Echo:
		return "rtt"
	case Fanout, Event:
		return "oneway"
	}
	return "dug"
}

// partOfMain says whether op name holds samples of the main operation:
// fanout and event record one-way latency per rate step (oneway.s00, ...),
// while other names below the main one (dug.wire) measure something else and
// would double the count and skew the percentiles of the timeline.
func partOfMain(name, main string) bool {
	return name == main || (main == "oneway" && strings.HasPrefix(name, "oneway.s"))
}

// p99Budget is the fanout/event pass mark.
const p99Budget = 250.0

// aggregator turns worker ticks into progress lines and the timeline.
type aggregator struct {
	mu       sync.Mutex
	cfg      Config
	t0       time.Time
	workers  int
	main     string
	secs     map[int64]*bucket
	last     map[int]map[string]int64 // per worker, latest cumulative counters
	conn     map[int]int64
	progress io.Writer
	printed  int64
	smp      *sampler
}

type bucket struct {
	hist      *measure.Hist
	counters  map[int]map[string]int64
	connected map[int]int64
	rss       int64
}

func newAggregator(cfg Config, workers int, progress io.Writer, smp *sampler) *aggregator {
	return &aggregator{cfg: cfg, t0: time.Now(), workers: workers, main: mainOp(cfg.Scenario),
		secs: map[int64]*bucket{}, last: map[int]map[string]int64{}, conn: map[int]int64{}, progress: progress, printed: -1, smp: smp}
}

func (a *aggregator) tick(m Msg) {
	if m.Tick == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	sec := (m.Tick.At - a.t0.UnixMilli()) / 1000
	b, ok := a.secs[sec]
	if !ok {
		b = &bucket{hist: measure.NewHist(), counters: map[int]map[string]int64{}, connected: map[int]int64{}}
		a.secs[sec] = b
		b.rss = a.smp.latest().RSSBytes
	}
	for name, s := range m.Tick.Ops {
		if partOfMain(name, a.main) {
			_ = b.hist.MergeSnapshot(s)
		}
	}
	b.counters[m.Worker] = m.Tick.Counters
	b.connected[m.Worker] = m.Tick.Connected
	a.last[m.Worker] = m.Tick.Counters
	a.conn[m.Worker] = m.Tick.Connected
	// Print the previous second once a newer one starts: it is complete.
	if a.progress != nil && sec-1 > a.printed {
		if pb, ok := a.secs[sec-1]; ok {
			a.printed = sec - 1
			pts := a.timelineLocked()
			for _, p := range pts {
				if int64(p.T) == sec-1 {
					fmt.Fprintf(a.progress, "[%4ds] connected %7d  in %9.0f msg/s  %s p99 %8.2f ms (n=%d)\n",
						sec-1, p.Connected, p.MsgsPerS, a.main, p.P99, p.Count)
				}
			}
			_ = pb
		}
	}
}

// counterSum is the named counter summed over the workers' latest ticks.
func (a *aggregator) counterSum(name string) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var n int64
	for _, c := range a.last {
		n += c[name]
	}
	return n
}

// timelineLocked builds one point per second, carrying each worker's last
// cumulative counters forward over seconds where it sent no tick.
func (a *aggregator) timelineLocked() []Point {
	var secs []int64
	for s := range a.secs {
		secs = append(secs, s)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	carry := map[int]map[string]int64{}
	carryConn := map[int]int64{}
	var prevIn, prevJoins int64 = -1, 0
	var out []Point
	for _, s := range secs {
		b := a.secs[s]
		for w, c := range b.counters {
			carry[w] = c
		}
		for w, c := range b.connected {
			carryConn[w] = c
		}
		var in, conn, joins int64
		for _, c := range carry {
			in += c[cMsgsIn]
			joins += c[cJoined]
		}
		for _, c := range carryConn {
			conn += c
		}
		p := Point{T: float64(s), Connected: conn, Count: b.hist.Count(), P50: b.hist.QuantileMs(50),
			P90: b.hist.QuantileMs(90), P99: b.hist.QuantileMs(99), Max: b.hist.MaxMs(), ServerRSS: b.rss}
		if prevIn >= 0 {
			p.MsgsPerS = float64(in - prevIn)
		}
		p.JoinsPerS = float64(joins - prevJoins)
		prevIn, prevJoins = in, joins
		out = append(out, p)
	}
	return out
}

func buildReport(cfg Config, results []*Result, rates []float64, stepDur time.Duration, agg *aggregator, pub *publisher, ph *crowdPhase) *Report {
	rep := &Report{Scenario: cfg.Scenario, Target: cfg.URL, Started: agg.t0, Config: cfg, MainOp: mainOp(cfg.Scenario), Ops: map[string]OpReport{}}
	hists := map[string]*measure.Hist{}
	errs := map[string]int64{}
	counters := map[string]int64{}
	window := map[string]int64{}
	var bc [][]measure.BcastRec
	sent := make([]int64, len(rates))
	f := &rep.Facts
	add := func(name string, r measure.OpResult) {
		h, ok := hists[name]
		if !ok {
			h = measure.NewHist()
			hists[name] = h
		}
		_ = h.MergeSnapshot(r.Hist)
		errs[name] += r.Errors
	}
	for _, r := range results {
		for name, o := range r.Ops {
			add(name, o)
			if strings.HasPrefix(name, "oneway.") {
				add("oneway", o)
			}
		}
		for k, v := range r.Counters {
			counters[k] += v
		}
		for k, v := range r.Window {
			window[k] += v
		}
		f.Gaps.Add(r.Gaps)
		f.Connections += r.Connected
		bc = append(bc, r.Bcast)
		for i, s := range r.Sent {
			if i < len(sent) {
				sent[i] += s
			}
		}
	}
	if pub != nil {
		for i := range sent {
			sent[i] = pub.sent[i].Load()
		}
		ops, _ := pub.lat.Totals()
		for _, name := range []string{"publish", "publish.lag", "publish.server"} {
			if o, ok := ops[name]; ok {
				add(name, o)
			}
		}
		for i := range pub.intended {
			f.PublishIntended += pub.intended[i].Load()
		}
	}
	pre := 0
	if ph != nil {
		pre = len(ph.sent)
		for i, n := range ph.sent {
			if i < len(sent) {
				sent[i] = n
			}
		}
	}
	for name, h := range hists {
		rep.Ops[name] = opReport(h, errs[name])
	}
	if pub != nil {
		var n int64
		for i := range sent {
			n += sent[i]
		}
		lag := rep.Ops["publish.lag"]
		f.PublishBehind = n < f.PublishIntended || lag.P50 > float64(lagBudget)/1e6 || lag.P99 > p99Budget
	}
	f.Counters = counters
	f.CloseCodes = prefixed(counters, "close_")
	f.Joins = JoinFacts{Admitted: counters[cJoined], Refused: prefixed(counters, cJoinErr), Retries: counters[cJoinRetries],
		GaveUp: counters[cJoinGaveUp], Unanswered: counters[cJoinLost]}
	dur := (cfg.PingFor + cfg.Duration).Seconds()
	agg.mu.Lock()
	rep.Timeline = agg.timelineLocked()
	agg.mu.Unlock()
	for _, p := range rep.Timeline {
		f.Joins.PeakPerS = max(f.Joins.PeakPerS, p.JoinsPerS)
	}
	// The whole-run counters also hold the connect phase (joins, a game's
	// first pushes) and the drain, which are not part of the measured rate.
	f.MsgsInPerS = float64(window[cMsgsIn]) / dur
	f.MsgsOutPerS = float64(window[cMsgsOut]) / dur
	for _, r := range results {
		f.ConnectedEnd += r.ConnectedEnd
	}
	if digging(cfg.Scenario) {
		if d := hists["dug"]; d != nil {
			f.Unanswered = counters[cDigsSent] - d.Count()
			for _, n := range prefixed(counters, "err_") {
				f.Unanswered -= n
			}
			f.Unanswered = max(f.Unanswered, 0)
		}
	}
	if cfg.Scenario == Echo {
		f.ThroughputPerS = float64(counters[cReplies]) / dur
		if cfg.Pipeline == 0 {
			f.Lost = counters[cMsgsOut] - hists["rtt"].Count()
		}
	}
	if len(rates) > 0 {
		recs := measure.MergeBcast(bc...)
		steps := measure.Steps(recs, f.Connections, sent, rates, stepDur)
		if pre > 0 {
			// The event phase's steps went to the players connected when it
			// began, not to those connected when the dig phase started.
			copy(steps, measure.Steps(recs, ph.receivers, sent[:pre], rates[:pre], stepDur))
		}
		// The event phase's steps are one message each: deliveries per
		// second over the time from its stamp to its last receipt.
		spans := make([]int64, pre)
		for _, r := range recs {
			if r.Step >= 0 && r.Step < pre {
				spans[r.Step] = max(spans[r.Step], r.Last-r.Sent)
			}
		}
		failed := false
		for i, s := range steps {
			if i < pre {
				s.DeliveryPS = 0
				if spans[i] > 0 {
					s.DeliveryPS = float64(s.Delivered) / (float64(spans[i]) / 1e9)
				}
			}
			ow := measure.NewHist()
			if h, ok := hists["oneway.s"+pad2(i)]; ok {
				ow = h
			}
			sr := StepReport{Rate: s.Rate, Sent: s.Sent, Expected: s.Expected, Delivered: s.Delivered, Lost: s.Lost,
				Complete: s.Complete, DeliveryPS: s.DeliveryPS, OneWay: opReport(ow, 0), TTE: opReport(s.TTE, 0)}
			sr.OK = s.Sent > 0 && s.Lost == 0 && sr.OneWay.P99 < p99Budget
			if ph != nil {
				sr.Name = crowdStepNames[min(i, len(crowdStepNames)-1)]
				if i < pre {
					sr.Bytes = ph.bytes[i]
				}
			}
			rep.Steps = append(rep.Steps, sr)
			f.Lost += s.Lost
			if !sr.OK {
				failed = true
			}
			if sr.OK && !failed {
				f.MaxRateOK = sr.Rate
				f.DeliveriesPerS = sr.DeliveryPS
			}
		}
	}
	return rep
}

// crowdStepNames name crowd's steps when it ran the event phase.
var crowdStepNames = []string{"event alone", "floor: plain broadcast", "events in the dig phase"}

// WriteTable prints the report as a table.
func (r *Report) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "scenario %s  target %s  players %d  duration %s\n", r.Scenario, r.Target, r.Config.Players, r.Config.Duration)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "op\tcount\terrors\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t")
	for _, name := range measure.SortedKeys(r.Ops) {
		if strings.HasPrefix(name, "oneway.") {
			continue
		}
		o := r.Ops[name]
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", name, o.Count, o.Errors, o.P50, o.P90, o.P99, o.P999, o.Max)
	}
	_ = tw.Flush()
	if len(r.Steps) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		named := r.Steps[0].Name != ""
		if named {
			fmt.Fprint(tw, "step\tbytes\t")
		}
		fmt.Fprintln(tw, "rate/s\tsent\tdelivered\tlost\tdeliv/s\toneway p50\tp99\ttte p50\ttte p99\tok\t")
		for _, s := range r.Steps {
			if named {
				fmt.Fprintf(tw, "%s\t%d\t", s.Name, s.Bytes)
			}
			fmt.Fprintf(tw, "%g\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%v\t\n", s.Rate, s.Sent, s.Delivered, s.Lost,
				s.DeliveryPS, s.OneWay.P50, s.OneWay.P99, s.TTE.P50, s.TTE.P99, s.OK)
		}
		_ = tw.Flush()
	}
	f := r.Facts
	fmt.Fprintf(w, "connections %d (failed %d, connect %.1fs)  in %.0f msg/s  out %.0f msg/s\n",
		f.Connections, f.Failed, f.ConnectS, f.MsgsInPerS, f.MsgsOutPerS)
	if j := f.Joins; gameProtocol(r.Scenario) {
		var refused int64
		for _, n := range j.Refused {
			refused += n
		}
		fmt.Fprintf(w, "joins: %d admitted (%.0f/s over the connect phase, peak %.0f/s), %d refused %v, %d retried, %d refused for good, %d unanswered at a close\n",
			j.Admitted, j.PerS, j.PeakPerS, refused, j.Refused, j.Retries, j.GaveUp, j.Unanswered)
	}
	if r.Scenario == Echo {
		fmt.Fprintf(w, "echo throughput %.0f msg/s  lost %d\n", f.ThroughputPerS, f.Lost)
	}
	if len(r.Steps) > 0 {
		fmt.Fprintf(w, "max rate with 100%% delivered and p99 < %.0f ms: %.0f msg/s (%.0f deliveries/s)\n", p99Budget, f.MaxRateOK, f.DeliveriesPerS)
	}
	if r.Scenario == Event || (r.Scenario == Crowd && len(r.Steps) > 0) {
		var n int64
		for _, s := range r.Steps {
			n += s.Sent
		}
		lag, srv := r.Ops["publish.lag"], r.Ops["publish.server"]
		fmt.Fprintf(w, "publisher: %d of %d events published; start lag (load generator) p50 %.2f p99 %.2f ms, server time p50 %.2f p99 %.2f ms\n",
			n, f.PublishIntended, lag.P50, lag.P99, srv.P50, srv.P99)
		if f.PublishBehind {
			fmt.Fprintf(w, "WARNING: the publisher did not keep up with the requested rate (budget: all published, start lag p50 < %s and p99 < %.0f ms); the rates above were not all offered on time\n", lagBudget, p99Budget)
		}
	}
	if digging(r.Scenario) {
		d := r.Ops["dug"]
		fmt.Fprintf(w, "digs: %d answered, %d errors, %d unanswered by the end of --drain; load generator's own share: send lag p50 %.2f p99 %.2f ms (of which in the loop's inbox, per batch: p50 %.2f p99 %.2f ms)\n",
			d.Count, d.Errors, f.Unanswered, r.Ops["dig.sendlag"].P50, r.Ops["dig.sendlag"].P99, r.Ops["dig.inbox"].P50, r.Ops["dig.inbox"].P99)
	}
	if r.Scenario == Crowd && len(r.Steps) >= 2 && r.Steps[1].Name == crowdStepNames[1] {
		e, fl := r.Steps[0], r.Steps[1]
		fmt.Fprintf(w, "event phase (players held, nothing else sent): event to everyone p50 %.0f p99 %.0f ms (%d of %d delivered, %.0f/s); floor, a plain broadcast of %d bytes from every node over the same sockets: p50 %.0f p99 %.0f ms (%d of %d, %.0f/s); event/floor p99 %.2fx\n",
			e.TTE.P50, e.TTE.P99, e.Delivered, e.Expected, e.DeliveryPS, fl.Bytes, fl.TTE.P50, fl.TTE.P99, fl.Delivered, fl.Expected, fl.DeliveryPS, ratio(e.TTE.P99, fl.TTE.P99))
	}
	if pg, ok := r.Ops["pong"]; ok && r.Scenario == Crowd {
		d := r.Ops["dug"]
		fmt.Fprintf(w, "dig floor (pings at --rate over the same sockets for %s, answered without Redis): %d answered (%.0f/s), p50 %.2f p99 %.2f p99.9 %.2f ms, %d errors; digs %d answered (%.0f/s) p50 %.2f p99 %.2f ms; dug/floor p99 %.2fx\n",
			r.Config.PingFor, pg.Count, float64(pg.Count)/r.Config.PingFor.Seconds(), pg.P50, pg.P99, pg.P999, pg.Errors,
			d.Count, float64(d.Count)/r.Config.Duration.Seconds(), d.P50, d.P99, ratio(d.P99, pg.P99))
		if s, ok := r.Ops["dug.steady"]; ok {
			fmt.Fprintf(w, "steady digs (the first %s of the dig phase, before its events and the kill): %d answered (%.0f/s) p50 %.2f p99 %.2f p99.9 %.2f ms; dug/floor p99 %.2fx\n",
				r.Config.Steady(), s.Count, float64(s.Count)/r.Config.Steady().Seconds(), s.P50, s.P99, s.P999, ratio(s.P99, pg.P99))
		}
	}
	if r.Scenario == Crowd && f.Counters[cShed] > 0 {
		fmt.Fprintf(w, "WARNING: the load generator shed %d pings and digs unsent, over %s behind their intended time (%d digs sent, %d pings sent): the rate above was not all offered\n",
			f.Counters[cShed], r.Config.ShedAfter, f.Counters[cDigsSent], f.Counters[cPingsSent])
	}
	if r.Scenario == Crowd {
		fmt.Fprintf(w, "crowd: %d connected at the start of the measured phase, %d at its end; %d reconnects", f.Connections, f.ConnectedEnd, f.Counters[cReconnects])
		if r.Config.KillPID != 0 {
			fmt.Fprintf(w, "; pid %d killed at %.1fs", r.Config.KillPID, f.KilledAtS)
		}
		fmt.Fprintln(w)
	}
	if c := f.Counters; digging(r.Scenario) || r.Scenario == Game {
		fmt.Fprintf(w, "digs found %d  claimed pushes %d  rejoins %d  slow readers: %d msgs, closes %v\n",
			c[cFound], c[cClaimed], c[cRejoins], c["slow_msgs"], prefixed(c, "slow_close_"))
	}
	if g := f.Gaps; g.Updates > 0 || g.Resets > 0 {
		fmt.Fprintf(w, "seq: updates %d gaps %d dups %d resets %d replayed %d epoch changes %d\n", g.Updates, g.Gaps, g.Dups, g.Resets, g.Replayed, g.EpochChanges)
	}
	if len(f.CloseCodes) > 0 {
		fmt.Fprintf(w, "close codes %v\n", f.CloseCodes)
	}
	if r.Config.PID != 0 {
		fmt.Fprintf(w, "server: rss %.1f MiB (%.0f B/conn)  cpu %.0f µs/conn accepted  cpu %.2f cores in the measured phase\n",
			float64(f.ServerRSS)/(1<<20), f.ServerRSSPerConn, f.ServerCPUPerConnUS, f.ServerCPUCores)
		fmt.Fprintf(w, "server rss taken: %s; peak rss since the server started %.1f MiB\n", f.ServerRSSHow, float64(f.ServerRSSPeak)/(1<<20))
		if f.ServerCPUPerOpUS > 0 {
			fmt.Fprintf(w, "server cpu per %s: %.3f µs\n", opNoun(r.Scenario), f.ServerCPUPerOpUS)
		}
		if f.ServerSyscalls > 0 {
			fmt.Fprintf(w, "server system calls in the measured phase: %d (%.3f per %s) %v\n", f.ServerSyscalls, f.ServerSyscallsPerOp, opNoun(r.Scenario), f.ServerSyscallsBy)
		}
		if f.ServerRSSCold != 0 && f.ServerRSSCold != f.ServerRSSBefore {
			fmt.Fprintf(w, "server rss per conn from after %d warm-up connections came and went; from the cold start: %.0f B/conn\n", warmUpConns, f.ServerRSSPerConnCold)
		}
	}
	fmt.Fprintf(w, "memory: load generator %.1f MiB in all its processes (%.0f B per player), kernel slab %.0f B per socket (machine-wide, 2 sockets per player on loopback)\n",
		float64(f.LoadRSS)/(1<<20), f.LoadRSSPerPlayer, f.KernelSlabPerSocket)
	fmt.Fprintf(w, "load generator: %.2f cores in the measured phase (%.0f%% of the machine); %.1f CPU s in the whole run\n", f.OwnCPUCores, 100*f.OwnCPUShare, f.OwnCPUS)
}

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ratio is a/b, 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// prefixed returns the counters whose name starts with prefix, keyed by the rest.
func prefixed(c map[string]int64, prefix string) map[string]int64 {
	out := map[string]int64{}
	for k, v := range c {
		if strings.HasPrefix(k, prefix) {
			out[strings.TrimPrefix(k, prefix)] = v
		}
	}
	return out
}

// opNoun names what server_cpu_per_op_us divides by.
func opNoun(scenario string) string {
	if scenario == Fanout {
		return "delivery"
	}
	return "echoed message"
}
