package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/huntgate/huntgate/state"
)

// A known path with the wrong method is a 405 with Allow, in the JSON error
// shape; an unknown path stays a 404.
func TestAdminMethodNotAllowed(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	for _, tc := range []struct{ method, path, allow string }{
		{"PUT", "/v1/hunts", "GET, HEAD, POST"},
		{"PATCH", "/v1/hunts/h", "DELETE, GET, HEAD"},
		{"GET", "/v1/hunts/h/events", "POST"},
		{"POST", "/metrics", "GET, HEAD"},
		{"DELETE", "/v1/stats", "GET, HEAD"},
		{"POST", "/readyz", "GET, HEAD"},
	} {
		req, err := http.NewRequest(tc.method, tg.admin+tc.path, strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", testAPIKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e struct {
			Error struct{ Code string } `json:"error"`
		}
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != tc.allow || resp.Header.Get("Content-Type") != "application/json" ||
			json.Unmarshal(body, &e) != nil || e.Error.Code != "method_not_allowed" {
			t.Errorf("%s %s: %d Allow %q %q %s", tc.method, tc.path, resp.StatusCode, resp.Header.Get("Allow"), resp.Header.Get("Content-Type"), body)
		}
	}
	if code, body := tg.adminDo(t, "PUT", "/v1/nothing", testAPIKey, "{}"); code != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
		t.Errorf("unknown path: %d %s", code, body)
	}
}

// lowerAdminLimits shortens the admin listener's read and idle timeouts for
// the gateways the test starts next.
func lowerAdminLimits(t *testing.T) {
	saved := adminLimits
	t.Cleanup(func() { adminLimits = saved })
	adminLimits.read = 300 * time.Millisecond
	adminLimits.idle = 300 * time.Millisecond
}

// readToEOF reads conn until the server closes it. The deadline only keeps a
// failing test from hanging: a server that never closes the connection fails.
func readToEOF(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("the server kept the connection open: %v (read %q)", err, b)
	}
	return string(b)
}

// A peer that stops sending in the middle of a body, or holds a keep-alive
// connection open, is cut off rather than pinning a goroutine for ever.
func TestAdminSlowPeersCut(t *testing.T) {
	lowerAdminLimits(t)
	tg := startGateway(t, nil)
	addr := strings.TrimPrefix(tg.admin, "http://")

	t.Run("body", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "POST /v1/hunts HTTP/1.1\r\nHost: x\r\nX-API-Key: "+testAPIKey+"\r\nContent-Length: 100\r\n\r\n{")
		readToEOF(t, c)
	})
	t.Run("idle", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Close {
			t.Fatalf("healthz: %d, close %v", resp.StatusCode, resp.Close)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if b, err := io.ReadAll(br); err != nil || len(b) != 0 {
			t.Fatalf("idle keep-alive connection not closed: %v %q", err, b)
		}
	})
}

// Request headers are bounded well below net/http's 1 MiB default.
func TestAdminHeaderLimit(t *testing.T) {
	tg := startGateway(t, nil)
	req, _ := http.NewRequest("GET", tg.admin+"/healthz", nil)
	req.Header.Set("X-Pad", strings.Repeat("a", 200<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("200 KiB of headers: %d", resp.StatusCode)
	}
}

// Shutdown cuts the admin requests still running after its grace period, so
// that none outlives the gateway; a cancelled context (a second signal)
// cuts them at once.
func TestShutdownCutsAdminRequests(t *testing.T) {
	for _, how := range []string{"grace", "cancelled"} {
		t.Run(how, func(t *testing.T) {
			e := &statusGatedEngine{block: make(chan struct{}), entered: make(chan struct{}, 8), gate: make(chan struct{})}
			tg := startGated(t, nil, e)
			opener(t, e.gate)
			tg.createHunt(t, fixedHunt("h", 1))
			close(e.block)
			done := make(chan error, 1)
			go func() {
				resp, err := http.Get(tg.admin + "/v1/hunts/h")
				if err == nil {
					resp.Body.Close()
					err = errors.New(resp.Status)
				}
				done <- err
			}()
			await(t, e.entered, "the request did not reach the engine")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if how == "cancelled" {
				cancel()
			}
			// The request is held at the engine until the test ends, so only
			// the grace period (or its absence) ends the admin shutdown. How
			// long that took is not asserted: a timed assertion would flake on
			// a loaded machine.
			if err := tg.Shutdown(ctx); err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			select {
			case err := <-done:
				if err == nil || os.IsTimeout(err) || !strings.Contains(err.Error(), "EOF") {
					t.Fatalf("the request in flight ended with %v, want its connection closed", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the admin request outlived Shutdown")
			}
		})
	}
}

// /metrics is well-formed text exposition (parsed by the exposition
// library, which refuses a family twice, a sample before its TYPE or a bad
// value), keeps the series names it had before the move to client_golang,
// and agrees with /v1/stats on the connections, in total and per loop.
func TestMetricsFormatAndStats(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	for _, p := range []string{"alice", "bob", "carol"} {
		tg.player(t, p).join("h")
	}
	code, body := tg.adminDo(t, "GET", "/v1/stats", "", "")
	var st Stats
	if code != 200 || json.Unmarshal(body, &st) != nil {
		t.Fatalf("stats: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", tg.admin+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %q", resp.StatusCode, ct)
	}
	fams := parseMetrics(t, text)
	// Every family /metrics had before client_golang, with its type.
	old := map[string]dto.MetricType{
		"huntgate_connections": dto.MetricType_GAUGE, "huntgate_loop_connections": dto.MetricType_GAUGE,
		"huntgate_loop_passes_total": dto.MetricType_COUNTER, "huntgate_loop_busy_seconds_total": dto.MetricType_COUNTER,
		"huntgate_loop_pass_max_seconds": dto.MetricType_GAUGE, "huntgate_tcp_accepted_total": dto.MetricType_COUNTER,
		"huntgate_closed_total": dto.MetricType_COUNTER, "huntgate_messages_in_total": dto.MetricType_COUNTER,
		"huntgate_messages_out_total": dto.MetricType_COUNTER, "huntgate_bytes_in_total": dto.MetricType_COUNTER,
		"huntgate_bytes_out_total": dto.MetricType_COUNTER, "huntgate_slow_closes_total": dto.MetricType_COUNTER,
		"huntgate_rate_limit_closes_total": dto.MetricType_COUNTER, "huntgate_auth_refused_total": dto.MetricType_COUNTER,
		"huntgate_updates_total": dto.MetricType_COUNTER, "huntgate_deliveries_total": dto.MetricType_COUNTER,
		"huntgate_replayed_total": dto.MetricType_COUNTER, "huntgate_draining": dto.MetricType_GAUGE,
		"huntgate_requests_total": dto.MetricType_COUNTER, "huntgate_errors_total": dto.MetricType_COUNTER,
		"huntgate_hunt_players": dto.MetricType_GAUGE, "huntgate_hunt_seq": dto.MetricType_GAUGE,
	}
	for name, typ := range old {
		f, ok := fams[name]
		if !ok || f.GetType() != typ || f.GetHelp() == "" {
			t.Errorf("family %s: present %v, type %v, want %v with a HELP text", name, ok, f.GetType(), typ)
		}
	}
	series := flatSeries(fams)
	for name, f := range fams {
		if strings.HasPrefix(name, "huntgate_") && strings.HasSuffix(name, "_total") != (f.GetType() == dto.MetricType_COUNTER) {
			t.Errorf("%s is a %v", name, f.GetType())
		}
	}
	var sum int64
	for i, n := range st.Connections.Loops {
		sum += n
		if got := series[`huntgate_loop_connections{loop="`+strconv.Itoa(i)+`"}`]; got != float64(n) {
			t.Errorf("loop %d: metrics %v, stats %d", i, got, n)
		}
	}
	if st.Connections.Total != 3 || sum != 3 || series["huntgate_connections"] != 3 ||
		series[`huntgate_hunt_players{hunt="h"}`] != 3 || st.Hunts["h"].Players != 3 ||
		series[`huntgate_requests_total{op="join"}`] != 3 {
		t.Fatalf("stats %+v, metrics %v", st.Connections, series)
	}
}

// parseMetrics parses a text exposition with the exposition library.
func parseMetrics(t testing.TB, text []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(text))
	if err != nil {
		t.Fatalf("metrics do not parse: %v\n%s", err, text)
	}
	return fams
}

// flatSeries maps every sample to its value, keyed as name{l1="v1",...}
// with labels in the order the exposition has them; a histogram gives its
// _count and _sum.
func flatSeries(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.Metric {
			key := name
			if len(m.Label) > 0 {
				var b strings.Builder
				for i, l := range m.Label {
					if i > 0 {
						b.WriteByte(',')
					}
					fmt.Fprintf(&b, "%s=%q", l.GetName(), l.GetValue())
				}
				key += "{" + b.String() + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Untyped != nil:
				out[key] = m.Untyped.GetValue()
			case m.Histogram != nil:
				out[strings.Replace(key, name, name+"_count", 1)] = float64(m.Histogram.GetSampleCount())
				out[strings.Replace(key, name, name+"_sum", 1)] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// Readiness turns false before any player is told to reconnect, so that a
// load balancer stops sending players here before they start leaving.
func TestReadyzFalseBeforeReconnect(t *testing.T) {
	// A window far longer than the test, and no deadline to shorten it: on
	// the loop that got two of the three players (2 loops), one is told to
	// wait, so the gateway and its admin listener stay up until the test's
	// players leave by themselves.
	tg := startGateway(t, func(c *Config) { c.DrainWindow = time.Hour })
	tg.createHunt(t, fixedHunt("h", 1))
	var cs []*client
	for _, p := range []string{"alice", "bob", "carol"} {
		c := tg.player(t, p)
		c.join("h")
		cs = append(cs, c)
	}
	done := make(chan error, 1)
	go func() { done <- tg.Shutdown(context.Background()) }()
	later := 0
	for _, c := range cs {
		if c.expect("reconnect").num("after_ms") > 0 {
			later++
		}
	}
	if later == 0 {
		t.Fatal("no reconnect was staggered")
	}
	if code, body := tg.adminDo(t, "GET", "/readyz", "", ""); code != 503 || string(body) != "{\"ready\":false,\"reason\":\"draining\"}\n" {
		t.Fatalf("readyz during the drain: %d %s", code, body)
	}
	if code, _ := tg.adminDo(t, "GET", "/healthz", "", ""); code != 200 {
		t.Fatalf("healthz during the drain: %d", code)
	}
	for _, c := range cs {
		c.c.Close()
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("shutdown did not end once the players left")
	}
}

// An ended hunt still answers its status, and refuses events and a second
// end with 409 ended.
func TestAdminEndedHunt(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	if code, body := tg.adminDo(t, "DELETE", "/v1/hunts/h", testAPIKey, ""); code != 200 {
		t.Fatalf("end: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, `{"x":1}`); code != 409 || !strings.Contains(string(body), `"code":"ended"`) {
		t.Fatalf("event to an ended hunt: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "DELETE", "/v1/hunts/h", testAPIKey, ""); code != 409 || !strings.Contains(string(body), `"code":"ended"`) {
		t.Fatalf("end twice: %d %s", code, body)
	}
	if code, body := tg.adminDo(t, "GET", "/v1/hunts/h", "", ""); code != 200 || !strings.Contains(string(body), `"state":"ended"`) {
		t.Fatalf("status of an ended hunt: %d %s", code, body)
	}
}

// nodesEngine is the memory engine with a node list, counting its reads.
type nodesEngine struct {
	*state.Memory
	reads atomic.Int32
}

func (e *nodesEngine) Nodes(context.Context) ([]state.NodeInfo, error) {
	e.reads.Add(1)
	return []state.NodeInfo{{ID: "a", Self: true}, {ID: "b"}}, nil
}

// /v1/stats lists the nodes of an engine that has them; /metrics, which does
// not export them, does not ask the engine for them on every scrape.
func TestStatsNodesOnlyWhenServed(t *testing.T) {
	e := &nodesEngine{}
	tg := startGatewayWith(t, nil, func(m *state.Memory) state.Engine { e.Memory = m; return e })
	if code, body := tg.adminDo(t, "GET", "/metrics", "", ""); code != 200 || e.reads.Load() != 0 {
		t.Fatalf("/metrics: %d, %d node reads, want 0: %s", code, e.reads.Load(), body)
	}
	code, body := tg.adminDo(t, "GET", "/v1/stats", "", "")
	var st Stats
	if code != 200 || json.Unmarshal(body, &st) != nil || e.reads.Load() != 1 ||
		len(st.Nodes) != 2 || st.Nodes[0].ID != "a" || !st.Nodes[0].Self || st.Nodes[0].Connections == nil || *st.Nodes[0].Connections != 0 ||
		st.Nodes[1] != (NodeStats{ID: "b"}) {
		t.Fatalf("/v1/stats: %d, %d node reads: %s", code, e.reads.Load(), body)
	}
}
