package load

import (
	"fmt"
	"html"
	"os"
	"sort"
	"strings"
)

// WriteHTML writes the compare run as one self-contained page: the medians
// and ratios B/A, each metric round by round for both sides (to show how
// much of a difference is noise), and the main operation's latency per
// second of every run.
func (c *CompareReport) WriteHTML(path string) error {
	return os.WriteFile(path, []byte(c.HTML()), 0o644)
}

// HTML renders the compare page.
func (c *CompareReport) HTML() string {
	var b strings.Builder
	title := fmt.Sprintf("huntload compare %s: A %s vs B %s", c.Scenario, c.A, c.B)
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title>", html.EscapeString(title))
	b.WriteString(`<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}` +
		`td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}svg{background:#fff;border:1px solid #ddd}` +
		`.better{color:#172}.worse{color:#b22}</style></head><body>`)
	fmt.Fprintf(&b, "<h1>%s</h1><p>%d rounds, A then B in each round; medians over the rounds.</p>", html.EscapeString(title), c.Rounds)

	keys := make([]string, 0, len(c.MedianA))
	for k := range c.MedianA {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("<h2>Medians</h2><table><tr><th>metric</th><th>A</th><th>B</th><th>B/A</th><th>A per round</th><th>B per round</th></tr>")
	for _, k := range keys {
		ratio := "-"
		cls := ""
		if r, ok := c.Ratio[k]; ok {
			ratio = fmt.Sprintf("%.2f", r)
			if lowerIsBetter(k) == (r < 1) && r != 1 {
				cls = "better"
			} else if r != 1 {
				cls = "worse"
			}
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%.2f</td><td>%.2f</td><td class=\"%s\">%s</td><td>%s</td><td>%s</td></tr>",
			html.EscapeString(k), c.MedianA[k], c.MedianB[k], cls, ratio, perRound(c.RunsA, k), perRound(c.RunsB, k))
	}
	b.WriteString("</table><p>Green: B better than A for that metric (lower latency, CPU and memory; higher rates); red: worse.</p>")

	for _, k := range keys {
		if !strings.HasSuffix(k, "_p99_ms") && k != "throughput_per_s" && k != "deliveries_per_s" {
			continue
		}
		var xs, ya, yb []float64
		for i := 0; i < len(c.RunsA) && i < len(c.RunsB); i++ {
			xs = append(xs, float64(i+1))
			ya = append(ya, Metrics(c.RunsA[i])[k])
			yb = append(yb, Metrics(c.RunsB[i])[k])
		}
		if len(xs) < 2 {
			continue
		}
		fmt.Fprintf(&b, "<h2>%s by round</h2>", html.EscapeString(k))
		b.WriteString(chartX(xs, []series{{"A", "#27c", ya}, {"B", "#e80", yb}}, "", "round "))
	}
	for i, side := range [][]*Report{c.RunsA, c.RunsB} {
		name := []string{"A", "B"}[i]
		for j, r := range side {
			var ts, p50, p99 []float64
			for _, p := range r.Timeline {
				ts = append(ts, p.T)
				p50 = append(p50, p.P50)
				p99 = append(p99, p.P99)
			}
			fmt.Fprintf(&b, "<h2>%s round %d: %s latency per second (ms)</h2>", name, j+1, html.EscapeString(r.MainOp))
			b.WriteString(chart(ts, []series{{"p50", "#2a7", p50}, {"p99", "#e80", p99}}, "ms"))
		}
	}
	b.WriteString("</body></html>\n")
	return b.String()
}

// lowerIsBetter says which way a metric of Metrics improves.
func lowerIsBetter(k string) bool {
	switch k {
	case "msgs_in_per_s", "throughput_per_s", "max_rate_ok", "deliveries_per_s":
		return false
	}
	return true
}

func perRound(rs []*Report, k string) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.2f", Metrics(r)[k]))
	}
	return strings.Join(parts, " ")
}
