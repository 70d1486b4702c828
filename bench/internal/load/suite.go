package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
)

// SuiteMetric is one number the standard suite (scripts/bench.sh) quotes:
// taken from the report of Test, compared across servers.
type SuiteMetric struct {
	Test   string
	Name   string
	Higher bool // higher is better
	Get    func(r *Report) float64
}

// SuiteMetrics are the transport comparisons.
var SuiteMetrics = []SuiteMetric{
	{"hold", "server RSS per idle conn (B)", false, func(r *Report) float64 { return r.Facts.ServerRSSPerConn }},
	{"hold", "server CPU per accepted+upgraded conn (µs)", false, func(r *Report) float64 { return r.Facts.ServerCPUPerConnUS }},
	{"hold", "handshake p99 (ms)", false, func(r *Report) float64 { return r.Ops["handshake"].P99 }},
	{"echo-tput", "echo throughput, pipelined (msg/s)", true, func(r *Report) float64 { return r.Facts.ThroughputPerS }},
	{"echo-tput", "server CPU per pipelined echoed message (µs)", false, func(r *Report) float64 { return r.Facts.ServerCPUPerOpUS }},
	{"echo-tput", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"echo-rtt", "echo RTT p50 (ms)", false, func(r *Report) float64 { return r.Ops["rtt"].P50 }},
	{"echo-rtt", "echo RTT p99 (ms)", false, func(r *Report) float64 { return r.Ops["rtt"].P99 }},
	{"echo-rtt", "echo RTT p99.9 (ms)", false, func(r *Report) float64 { return r.Ops["rtt"].P999 }},
	{"echo-rtt", "server CPU per echoed message (µs)", false, func(r *Report) float64 { return r.Facts.ServerCPUPerOpUS }},
	{"echo-sys", "system calls per echoed message", false, func(r *Report) float64 { return r.Facts.ServerSyscallsPerOp }},
	{"echo-rtt", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"fanout", "fanout max rate, 100% delivered, p99<250ms (msg/s)", true, func(r *Report) float64 { return r.Facts.MaxRateOK }},
	{"fanout", "fanout deliveries/s at that rate", true, func(r *Report) float64 { return r.Facts.DeliveriesPerS }},
	{"fanout", "fanout peak deliveries/s, nothing lost (any p99)", true, func(r *Report) float64 {
		best := 0.0
		for _, s := range r.Steps {
			if s.Lost == 0 && s.DeliveryPS > best {
				best = s.DeliveryPS
			}
		}
		return best
	}},
	{"fanout", "server CPU per delivery (µs)", false, func(r *Report) float64 { return r.Facts.ServerCPUPerOpUS }},
	{"fanout-sys", "system calls per delivery", false, func(r *Report) float64 { return r.Facts.ServerSyscallsPerOp }},
	{"fanout-4m", "fanout deliveries/s at 4,000,000/s offered, nothing lost", true, func(r *Report) float64 {
		if r.Facts.Lost != 0 || len(r.Steps) == 0 || r.Steps[0].Lost != 0 {
			return 0
		}
		return r.Steps[0].DeliveryPS
	}},
	{"fanout", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"dig", "dig: dug p50 (ms)", false, func(r *Report) float64 { return r.Ops["dug"].P50 }},
	{"dig", "dig: dug p99 (ms)", false, func(r *Report) float64 { return r.Ops["dug"].P99 }},
	{"dig", "dig: dug p99.9 (ms)", false, func(r *Report) float64 { return r.Ops["dug"].P999 }},
	{"dig", "  dug from the actual write p99 (ms)", false, func(r *Report) float64 { return r.Ops["dug.wire"].P99 }},
	{"dig", "  load generator send lag p99 (ms)", false, func(r *Report) float64 { return r.Ops["dig.sendlag"].P99 }},
	{"dig", "  digs unanswered by the end of the drain", false, func(r *Report) float64 { return float64(r.Facts.Unanswered) }},
	{"dig", "  seq gaps", false, func(r *Report) float64 { return float64(r.Facts.Gaps.Gaps) }},
	{"dig", "  server CPU (cores)", false, func(r *Report) float64 { return r.Facts.ServerCPUCores }},
	{"dig", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"event", "event: max rate, 100% delivered, p99<250ms (msg/s)", true, func(r *Report) float64 { return r.Facts.MaxRateOK }},
	{"event", "event: peak deliveries/s, nothing lost (any p99)", true, func(r *Report) float64 { return bestStep(r).DeliveryPS }},
	{"event", "  time to everyone p50 at that rate (ms)", false, func(r *Report) float64 { return bestStep(r).TTE.P50 }},
	{"event", "  time to everyone p99 at that rate (ms)", false, func(r *Report) float64 { return bestStep(r).TTE.P99 }},
	{"event", "  seq gaps (all rates)", false, func(r *Report) float64 { return float64(r.Facts.Gaps.Gaps) }},
	{"event", "  publisher start lag p99 (ms)", false, func(r *Report) float64 { return r.Ops["publish.lag"].P99 }},
	{"event", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
}

// bestStep is the rate step with the most deliveries per second of those
// that lost nothing (the zero step if none).
func bestStep(r *Report) StepReport {
	var best StepReport
	for _, s := range r.Steps {
		if s.Lost == 0 && s.Sent > 0 && s.DeliveryPS > best.DeliveryPS {
			best = s
		}
	}
	return best
}

// SuiteSummary reads DIR/SERVER-TEST.json (or DIR/SERVER-TEST-rN.json for
// several rounds, of which it takes the median) for every server and prints
// each metric per server with its ratio to the baseline server.
func SuiteSummary(dir, baseline string, servers []string, w io.Writer) (map[string]map[string]float64, error) {
	return SuiteSummaryOf(dir, baseline, servers, nil, w)
}

// SuiteSummaryOf is SuiteSummary restricted to the metrics of tests (nil =
// all).
func SuiteSummaryOf(dir, baseline string, servers, tests []string, w io.Writer) (map[string]map[string]float64, error) {
	want := map[string]bool{}
	for _, t := range tests {
		want[t] = true
	}
	out := map[string]map[string]float64{}
	cache := map[string][]*Report{}
	load := func(server, test string) []*Report {
		key := server + "-" + test
		if r, ok := cache[key]; ok {
			return r
		}
		files, _ := filepath.Glob(filepath.Join(dir, key+"-r*.json"))
		files = append(files, filepath.Join(dir, key+".json"))
		var rs []*Report
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue
			}
			r := &Report{}
			if json.Unmarshal(b, r) == nil {
				rs = append(rs, r)
			}
		}
		cache[key] = rs
		return rs
	}
	value := func(m SuiteMetric, rs []*Report) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, m.Get(r))
		}
		return median(xs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "metric")
	for _, s := range servers {
		fmt.Fprintf(tw, "\t%s", s)
		if s != baseline {
			fmt.Fprintf(tw, "\t%s/%s", s, baseline)
		}
	}
	fmt.Fprintln(tw, "\t")
	for _, m := range SuiteMetrics {
		if len(want) > 0 && !want[m.Test] {
			continue
		}
		fmt.Fprint(tw, m.Name)
		base := load(baseline, m.Test)
		for _, s := range servers {
			rs := load(s, m.Test)
			if len(rs) == 0 {
				fmt.Fprint(tw, "\t-")
				if s != baseline {
					fmt.Fprint(tw, "\t-")
				}
				continue
			}
			v := value(m, rs)
			if out[s] == nil {
				out[s] = map[string]float64{}
			}
			out[s][m.Name] = v
			fmt.Fprintf(tw, "\t%.2f", v)
			if s != baseline {
				if bv := value(m, base); len(base) > 0 && bv != 0 {
					fmt.Fprintf(tw, "\t%.2fx", v/bv)
				} else {
					fmt.Fprint(tw, "\t-")
				}
			}
		}
		fmt.Fprintln(tw, "\t")
	}
	if err := tw.Flush(); err != nil {
		return nil, err
	}
	return out, nil
}
