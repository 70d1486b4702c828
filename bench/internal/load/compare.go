package load

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"text/tabwriter"
)

// CompareReport holds both sides of a compare run and the ratios B/A of the
// per-metric medians over the rounds.
type CompareReport struct {
	Scenario string             `json:"scenario"`
	A        string             `json:"a"`
	B        string             `json:"b"`
	Rounds   int                `json:"rounds"`
	RunsA    []*Report          `json:"runs_a"`
	RunsB    []*Report          `json:"runs_b"`
	MedianA  map[string]float64 `json:"median_a"`
	MedianB  map[string]float64 `json:"median_b"`
	Ratio    map[string]float64 `json:"ratio_b_over_a"`
}

// Metrics picks the comparable numbers of a report.
func Metrics(r *Report) map[string]float64 {
	m := map[string]float64{}
	if o, ok := r.Ops[r.MainOp]; ok {
		m[r.MainOp+"_p50_ms"] = o.P50
		m[r.MainOp+"_p99_ms"] = o.P99
		m[r.MainOp+"_max_ms"] = o.Max
	}
	if o, ok := r.Ops["handshake"]; ok && r.MainOp != "handshake" {
		m["handshake_p99_ms"] = o.P99
	}
	f := r.Facts
	m["msgs_in_per_s"] = f.MsgsInPerS
	if r.Scenario == Echo {
		m["throughput_per_s"] = f.ThroughputPerS
	}
	if len(r.Steps) > 0 {
		m["max_rate_ok"] = f.MaxRateOK
		m["deliveries_per_s"] = f.DeliveriesPerS
	}
	if r.Config.PID != 0 {
		m["server_rss_per_conn"] = f.ServerRSSPerConn
		m["server_cpu_per_conn_us"] = f.ServerCPUPerConnUS
		m["server_cpu_cores"] = f.ServerCPUCores
		m["server_rss_peak"] = float64(f.ServerRSSPeak)
	}
	m["own_cpu_cores"] = f.OwnCPUCores
	return m
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Medians returns the per-metric median over reports.
func Medians(rs []*Report) map[string]float64 {
	all := map[string][]float64{}
	for _, r := range rs {
		for k, v := range Metrics(r) {
			all[k] = append(all[k], v)
		}
	}
	out := map[string]float64{}
	for k, v := range all {
		out[k] = median(v)
	}
	return out
}

// Ratios is b/a per metric present in both with a non-zero a.
func Ratios(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, av := range a {
		if bv, ok := b[k]; ok && av != 0 {
			out[k] = bv / av
		}
	}
	return out
}

// RunCompare runs cmd's scenario alternately against A and B.
func RunCompare(cmd *Command, opt Options, progress io.Writer) (*CompareReport, error) {
	cr := &CompareReport{Scenario: cmd.Inner, A: cmd.A, B: cmd.B, Rounds: cmd.Rounds}
	for i := 0; i < cmd.Rounds; i++ {
		for _, side := range []string{"A", "B"} {
			cfg := cmd.Config
			cfg.URL, cfg.PID = cmd.A, cmd.APID
			if side == "B" {
				cfg.URL, cfg.PID = cmd.B, cmd.BPID
			}
			if progress != nil {
				fmt.Fprintf(progress, "== round %d/%d: %s %s\n", i+1, cmd.Rounds, side, cfg.URL)
			}
			r, err := Run(cfg, opt)
			if err != nil {
				return nil, fmt.Errorf("load: compare round %d %s: %w", i+1, side, err)
			}
			if side == "A" {
				cr.RunsA = append(cr.RunsA, r)
			} else {
				cr.RunsB = append(cr.RunsB, r)
			}
		}
	}
	cr.MedianA, cr.MedianB = Medians(cr.RunsA), Medians(cr.RunsB)
	cr.Ratio = Ratios(cr.MedianA, cr.MedianB)
	return cr, nil
}

// WriteTable prints medians and ratios.
func (c *CompareReport) WriteTable(w io.Writer) {
	fmt.Fprintf(w, "compare %s over %d rounds: A %s  B %s\n", c.Scenario, c.Rounds, c.A, c.B)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tA (median)\tB (median)\tB/A\t")
	keys := make([]string, 0, len(c.MedianA))
	for k := range c.MedianA {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r, ok := c.Ratio[k]
		rs := "-"
		if ok {
			rs = fmt.Sprintf("%.2f", r)
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%s\t\n", k, c.MedianA[k], c.MedianB[k], rs)
	}
	_ = tw.Flush()
}

// WriteJSON writes the compare report to path.
func (c *CompareReport) WriteJSON(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
