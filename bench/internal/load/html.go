package load

import (
	"fmt"
	"html"
	"math"
	"os"
	"strings"

	"github.com/huntgate/huntgate/bench/internal/measure"
)

// WriteHTML writes a self-contained page (inline SVG, no external
// resources): latency percentiles of the main operation per second, the
// connection ramp and message rate, the op table and the rate steps.
func (r *Report) WriteHTML(path string) error {
	return os.WriteFile(path, []byte(r.HTML()), 0o644)
}

// HTML renders the page.
func (r *Report) HTML() string {
	var b strings.Builder
	title := fmt.Sprintf("huntload %s against %s", r.Scenario, r.Target)
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>%s</title>", html.EscapeString(title))
	b.WriteString(`<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}` +
		`td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}svg{background:#fff;border:1px solid #ddd}` +
		`.k span{display:inline-block;width:12px;height:3px;margin:0 4px 3px 12px}</style></head><body>`)
	fmt.Fprintf(&b, "<h1>%s</h1><p>%s, %d players, measured %s, started %s</p>", html.EscapeString(title),
		html.EscapeString(r.Scenario), r.Config.Players, r.Config.Duration, r.Started.Format("2006-01-02 15:04:05 MST"))

	var ts, p50, p90, p99, mx, conn, rate []float64
	for _, p := range r.Timeline {
		ts = append(ts, p.T)
		p50 = append(p50, p.P50)
		p90 = append(p90, p.P90)
		p99 = append(p99, p.P99)
		mx = append(mx, p.Max)
		conn = append(conn, float64(p.Connected))
		rate = append(rate, p.MsgsPerS)
	}
	fmt.Fprintf(&b, "<h2>%s latency per second (ms)</h2>", html.EscapeString(r.MainOp))
	b.WriteString(chart(ts, []series{{"p50", "#2a7", p50}, {"p90", "#27c", p90}, {"p99", "#e80", p99}, {"max", "#c33", mx}}, "ms"))
	b.WriteString("<h2>Connections</h2>")
	b.WriteString(chart(ts, []series{{"connected", "#27c", conn}}, ""))
	b.WriteString("<h2>Messages received per second</h2>")
	b.WriteString(chart(ts, []series{{"msgs/s", "#2a7", rate}}, ""))

	b.WriteString("<h2>Operations</h2><table><tr><th>op</th><th>count</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>")
	for _, name := range measure.SortedKeys(r.Ops) {
		o := r.Ops[name]
		fmt.Fprintf(&b, "<tr><td>%s</td><td>%d</td><td>%d</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.2f</td></tr>",
			html.EscapeString(name), o.Count, o.Errors, o.P50, o.P90, o.P99, o.P999, o.Max)
	}
	b.WriteString("</table>")
	if len(r.Steps) > 0 {
		b.WriteString("<h2>Rate steps</h2><table><tr><th>rate/s</th><th>sent</th><th>delivered</th><th>lost</th><th>deliveries/s</th><th>one-way p99 ms</th><th>time to everyone p99 ms</th><th>ok</th></tr>")
		for _, s := range r.Steps {
			fmt.Fprintf(&b, "<tr><td>%.0f</td><td>%d</td><td>%d</td><td>%d</td><td>%.0f</td><td>%.2f</td><td>%.2f</td><td>%v</td></tr>",
				s.Rate, s.Sent, s.Delivered, s.Lost, s.DeliveryPS, s.OneWay.P99, s.TTE.P99, s.OK)
		}
		b.WriteString("</table>")
	}
	f := r.Facts
	fmt.Fprintf(&b, "<h2>Facts</h2><table><tr><th>connections</th><td>%d</td></tr><tr><th>failed dials</th><td>%d</td></tr>"+
		"<tr><th>msgs in/s</th><td>%.0f</td></tr><tr><th>load generator CPU</th><td>%.2f cores (%.0f%% of machine)</td></tr>",
		f.Connections, f.Failed, f.MsgsInPerS, f.OwnCPUCores, 100*f.OwnCPUShare)
	if r.Config.PID != 0 {
		fmt.Fprintf(&b, "<tr><th>server RSS</th><td>%.1f MiB (%.0f B/conn)</td></tr><tr><th>server CPU</th><td>%.2f cores; %.0f µs per accepted connection</td></tr>",
			float64(f.ServerRSS)/(1<<20), f.ServerRSSPerConn, f.ServerCPUCores, f.ServerCPUPerConnUS)
	}
	if g := f.Gaps; g.Updates > 0 {
		fmt.Fprintf(&b, "<tr><th>seq</th><td>%d updates, %d gaps, %d resets, %d replayed</td></tr>", g.Updates, g.Gaps, g.Resets, g.Replayed)
	}
	b.WriteString("</table></body></html>\n")
	return b.String()
}

type series struct {
	name, color string
	ys          []float64
}

// chart draws line series over x (seconds) as an inline SVG with axes and a
// key.
func chart(xs []float64, ss []series, unit string) string { return chartX(xs, ss, unit, "") }

// chartX is chart with x labelled xlabel+value (seconds when xlabel is "").
func chartX(xs []float64, ss []series, unit, xlabel string) string {
	const w, h, l, rgt, top, bot = 760.0, 240.0, 60.0, 20.0, 10.0, 30.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f">`, w, h, w, h)
	if len(xs) == 0 {
		b.WriteString(`<text x="20" y="40">no samples</text></svg>`)
		return b.String()
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	if x1 <= x0 {
		x1 = x0 + 1
	}
	ymax := 0.0
	for _, s := range ss {
		for _, y := range s.ys {
			ymax = math.Max(ymax, y)
		}
	}
	if ymax <= 0 {
		ymax = 1
	}
	ymax = niceCeil(ymax)
	px := func(x float64) float64 { return l + (x-x0)/(x1-x0)*(w-l-rgt) }
	py := func(y float64) float64 { return h - bot - y/ymax*(h-top-bot) }
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, l, py(y), w-rgt, py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="end">%s</text>`, l-4, py(y)+4, tickLabel(y, unit))
	}
	for i := 0; i <= 5; i++ {
		x := x0 + (x1-x0)*float64(i)/5
		if xlabel == "" {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%.0fs</text>`, px(x), h-bot+16, x)
		} else {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="11" text-anchor="middle">%s%.1f</text>`, px(x), h-bot+16, html.EscapeString(xlabel), x)
		}
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#888"/>`, l, h-bot, w-rgt, h-bot)
	for i, s := range ss {
		var pts []string
		for j, y := range s.ys {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[j]), py(y)))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, s.color, strings.Join(pts, " "))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="3" fill="%s"/><text x="%.1f" y="%.1f" font-size="11">%s</text>`,
			l+10+float64(i)*80, top+4, s.color, l+26+float64(i)*80, top+8, html.EscapeString(s.name))
	}
	b.WriteString("</svg>")
	return b.String()
}

func niceCeil(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel writes an axis value with its unit; milliseconds of a second or
// more read better as seconds ("2.5 s", not "2.5kms").
func tickLabel(v float64, unit string) string {
	if unit == "ms" && v >= 1e3 {
		return short(v/1e3) + " s"
	}
	if unit != "" && v != 0 {
		return short(v) + " " + unit
	}
	return short(v)
}

func short(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.2g", v)
}
