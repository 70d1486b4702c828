package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
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
	{"echo-tput", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"echo-rtt", "echo RTT p50 (ms)", false, func(r *Report) float64 { return r.Ops["rtt"].P50 }},
	{"echo-rtt", "echo RTT p99 (ms)", false, func(r *Report) float64 { return r.Ops["rtt"].P99 }},
	{"echo-rtt", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
	{"fanout", "fanout max rate, 100% delivered, p99<250ms (msg/s)", true, func(r *Report) float64 { return r.Facts.MaxRateOK }},
	{"fanout", "fanout deliveries/s at that rate", true, func(r *Report) float64 { return r.Facts.DeliveriesPerS }},
	{"fanout", "fanout peak deliveries/s (any step)", true, func(r *Report) float64 {
		best := 0.0
		for _, s := range r.Steps {
			if s.DeliveryPS > best {
				best = s.DeliveryPS
			}
		}
		return best
	}},
	{"fanout", "  load generator CPU (cores)", false, func(r *Report) float64 { return r.Facts.OwnCPUCores }},
}

// SuiteSummary reads DIR/SERVER-TEST.json for every server and prints each
// metric per server with its ratio to the baseline server.
func SuiteSummary(dir, baseline string, servers []string, w io.Writer) (map[string]map[string]float64, error) {
	out := map[string]map[string]float64{}
	cache := map[string]*Report{}
	load := func(server, test string) *Report {
		key := server + "-" + test
		if r, ok := cache[key]; ok {
			return r
		}
		b, err := os.ReadFile(filepath.Join(dir, key+".json"))
		var r *Report
		if err == nil {
			r = &Report{}
			if json.Unmarshal(b, r) != nil {
				r = nil
			}
		}
		cache[key] = r
		return r
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
		fmt.Fprint(tw, m.Name)
		base := load(baseline, m.Test)
		for _, s := range servers {
			r := load(s, m.Test)
			if r == nil {
				fmt.Fprint(tw, "\t-")
				if s != baseline {
					fmt.Fprint(tw, "\t-")
				}
				continue
			}
			v := m.Get(r)
			if out[s] == nil {
				out[s] = map[string]float64{}
			}
			out[s][m.Name] = v
			fmt.Fprintf(tw, "\t%.2f", v)
			if s != baseline {
				if base != nil && m.Get(base) != 0 {
					fmt.Fprintf(tw, "\t%.2fx", v/m.Get(base))
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

// SortedServers returns the servers that have any result in dir.
func SortedServers(dir string) []string {
	seen := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(dir, "*-hold.json"))
	for _, f := range files {
		b := filepath.Base(f)
		seen[b[:len(b)-len("-hold.json")]] = true
	}
	var out []string
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}
