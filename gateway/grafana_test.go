package gateway

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// grafanaDashboard is the dashboard shipped in deploy/grafana.
const grafanaDashboard = "../deploy/grafana/huntgate.json"

// metricName matches the metric names a PromQL expression of ours can use.
var metricName = regexp.MustCompile(`\b(?:huntgate|process|go)_[a-z0-9_]+\b`)

// Every expression of the Grafana dashboard (panels and template variables)
// names series that /metrics serves, with the type its use needs: _bucket
// of a histogram, rate() of a counter.
func TestGrafanaDashboardSeries(t *testing.T) {
	raw, err := os.ReadFile(grafanaDashboard)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s is not valid JSON: %v", grafanaDashboard, err)
	}
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	tg.player(t, "alice").join("h")
	code, body := tg.adminDo(t, "GET", "/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	fams := parseMetrics(t, body)
	check := func(where, expr string) {
		names := metricName.FindAllString(expr, -1)
		if len(names) == 0 {
			t.Errorf("%s: no series in %q", where, expr)
		}
		for _, n := range names {
			if base, ok := strings.CutSuffix(n, "_bucket"); ok {
				if f := fams[base]; f == nil || f.GetType() != dto.MetricType_HISTOGRAM {
					t.Errorf("%s: %s is not a histogram's buckets", where, n)
				}
				continue
			}
			f := fams[n]
			if f == nil {
				t.Errorf("%s: no series %s in /metrics", where, n)
				continue
			}
			if strings.Contains(expr, "rate("+n) && f.GetType() != dto.MetricType_COUNTER {
				t.Errorf("%s: rate() of %s, a %v", where, n, f.GetType())
			}
		}
	}
	exprs := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tgt := range p.Targets {
			check("panel "+p.Title, tgt.Expr)
			exprs++
		}
	}
	for _, v := range dash.Templating.List {
		check("variable", v.Definition)
	}
	if exprs < 10 {
		t.Fatalf("only %d expressions", exprs)
	}
}
