package gateway

import (
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/huntgate/huntgate/framing"
)

// # Metrics
//
// /metrics is served by prometheus/client_golang from a registry of the
// Gateway's own (tests run many gateways in one process, and the default
// registry is global). We chose it over VictoriaMetrics/metrics after
// measuring both on the observation hot path (see docs/metrics.md): both
// observe and count with 0 allocations, VictoriaMetrics in about half the
// time (50 vs 90-130 ns per histogram observation), but its histograms take
// a mutex that every loop and the scraper share (the scraper holds it while
// it formats the buckets), while client_golang's are lock-free atomics, so a
// loop never waits on another loop or on a scrape. It also keeps HELP texts,
// serves OpenMetrics and gzip by negotiation, and brings the Go and process
// collectors a Grafana user expects.
//
// The series come in two kinds:
//
//   - Instruments updated where things happen (histograms, counters by
//     label) are fields of metrics, created in newMetrics. A labelled one is
//     resolved to its children once, at start, into an array indexed the way
//     the hot path knows the label (an error code index, a close code), so
//     an observation on a loop is one atomic add: no label lookup, no lock,
//     no allocation. BenchmarkMetricsHotPath checks it.
//   - Series derived from counters the gateway or conn already keep (and
//     /v1/stats serves) are built at scrape time from one snapshot by
//     statsCollector, so /metrics and /v1/stats always agree.
//
// To add a series: for an event counted on the hot path, add a field here,
// create it in newMetrics with the factory f (promauto registers it), and
// pre-resolve its label values if it has any; for a figure already in Stats,
// add one line to statsCollector.Collect. Every name starts with huntgate_,
// counters end in _total and durations are in seconds (_seconds). A test
// (TestMetricsFormatAndStats) parses the whole output with the exposition
// library, and TestGrafanaDashboardSeries checks that every series the
// Grafana dashboard queries exists.

// errorCodes are the wire error codes, in the order of metrics.errors.
var errorCodes = [...]string{
	"bad_request", "unknown_op", "unknown_hunt", "forbidden", "rate_limited", "too_large",
	"not_joined", "too_many_hunts", "ended", "out_of_grid", "internal", "overloaded", "not_ranked", "not_started",
}

var opNames = [...]string{
	opNone: "", opUnknown: "", opJoin: "join", opLeave: "leave", opDig: "dig", opStatus: "status", opPing: "ping", opRank: "rank",
}

// latencyBuckets are the upper bounds (seconds) of the latency histograms:
// six per decade from 10 µs to 10 s, so that a p99 interpolated inside a
// bucket (as Grafana's histogram_quantile and /v1/stats do) is off by at
// most the bucket's width, under 1.7x.
var latencyBuckets = func() []float64 {
	var b []float64
	for scale := 1e-5; scale < 10; scale *= 10 {
		for _, m := range []float64{1, 1.5, 2, 3, 5, 7} {
			b = append(b, m*scale)
		}
	}
	return append(b, 10)
}()

// Close codes get one counter each from 1000 to 1000+closeCodeSlots-2; any
// other code goes to the last slot, labelled "other".
const closeCodeSlots = 17

// metrics are the gateway's counters and instruments. The atomics are read
// by /v1/stats and exported by statsCollector; the prometheus instruments
// are exported directly. All of them are safe from any goroutine: loops
// write them, the admin listener reads them.
type metrics struct {
	conns        atomic.Int64 // open protocol and test connections
	authFailures atomic.Int64 // upgrades refused with 401
	rateCloses   atomic.Int64 // connections closed for sustained rate excess
	updates      atomic.Int64 // updates received from the engine
	deliveries   atomic.Int64 // frames queued by fan-out walks
	replayed     atomic.Int64 // updates replayed on resume
	joins        atomic.Int64 // successful joins
	joinsRefused atomic.Int64 // join requests answered with an error
	found        atomic.Int64 // digs that found a treasure
	digsLocal    atomic.Int64 // digs answered without the store (state.LocalDigger)
	feedRefused  atomic.Int64 // long polls refused over Config.MaxLongPolls
	ops          [len(opNames)]atomic.Int64
	errors       [len(errorCodes)]atomic.Int64

	reg *prometheus.Registry
	// dig is the time from a dig request read on its loop to its dug reply
	// (or error) queued there.
	dig prometheus.Histogram
	// handshake is the time from a TCP accept to the answer of its upgrade
	// request (101 or a refusal).
	handshake prometheus.Histogram
	// fanout is the time from an update's arrival at the node (the engine's
	// sink) to its last frame written on every loop.
	fanout prometheus.Histogram
	// handshakes counts server handshakes by outcome (handshakeOutcomes).
	handshakes [len(handshakeOutcomes)]prometheus.Counter
	// closes counts closed connections by close code (index code-1000).
	closes [closeCodeSlots]prometheus.Counter
	// refusedBy counts join requests answered with an error, by code.
	refusedBy [len(errorCodes)]prometheus.Counter

	// recent keeps windowed copies of the latency histograms for the p99s
	// of /v1/stats.
	recent *latencyWindow
}

// newMetrics creates the instruments on a fresh registry, with the Go and
// process collectors and c, which exports the snapshot-derived series.
func newMetrics(m *metrics, c prometheus.Collector) {
	reg := prometheus.NewRegistry()
	m.reg = reg
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), c)
	hist := func(name, help string) prometheus.Histogram {
		h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: latencyBuckets})
		reg.MustRegister(h)
		return h
	}
	m.dig = hist("huntgate_dig_seconds", "Time from a dig request read to its reply queued, on the connection's loop (engine call included).")
	m.handshake = hist("huntgate_handshake_seconds", "Time from a TCP accept to the answer of its upgrade request (101 or a refusal).")
	m.fanout = hist("huntgate_fanout_seconds", "Time from a hunt update's arrival at the node to its last frame written on every loop.")

	// byLabel registers a counter with one label, code, and returns its
	// children for values, in order.
	byLabel := func(name, help string, values []string) []prometheus.Counter {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{"code"})
		reg.MustRegister(v)
		out := make([]prometheus.Counter, len(values))
		for i, val := range values {
			out[i] = v.WithLabelValues(val)
		}
		return out
	}
	copy(m.handshakes[:], byLabel("huntgate_handshakes_total",
		"Upgrade requests by HTTP status answered (101 upgraded); none: the connection ended unanswered (timeout or the peer left).",
		handshakeOutcomes[:]))
	codes := make([]string, closeCodeSlots)
	for i := range closeCodeSlots - 1 {
		codes[i] = strconv.Itoa(1000 + i)
	}
	codes[closeCodeSlots-1] = "other"
	copy(m.closes[:], byLabel("huntgate_closes_total",
		"Connections closed after the upgrade, by WebSocket close code (sent, received, or 1006 for a cut).", codes))
	copy(m.refusedBy[:], byLabel("huntgate_joins_refused_total",
		"Join requests answered with an error, by error code.", errorCodes[:]))
	m.recent = newLatencyWindow(m.dig, m.fanout, m.handshake)
}

// handshakeOutcomes are the label values of huntgate_handshakes_total: the
// statuses conn and the gateway answer, then "other" and "none" (no answer).
var handshakeOutcomes = [...]string{"101", "400", "401", "404", "405", "426", "431", "503", "505", "other", "none"}

func (m *metrics) countHandshake(status int, d time.Duration) {
	i := len(handshakeOutcomes) - 2 // other
	switch status {
	case 0:
		i = len(handshakeOutcomes) - 1
	case 101:
		i = 0
	case 400:
		i = 1
	case 401:
		i = 2
	case 404:
		i = 3
	case 405:
		i = 4
	case 426:
		i = 5
	case 431:
		i = 6
	case 503:
		i = 7
	case 505:
		i = 8
	}
	m.handshakes[i].Inc()
	if status != 0 {
		m.handshake.Observe(d.Seconds())
	}
}

// errorIndex is e's index in errorCodes, or -1.
func errorIndex(e *protoError) int {
	for i, c := range errorCodes {
		if c == e.code {
			return i
		}
	}
	return -1
}

func (m *metrics) countError(e *protoError) {
	if i := errorIndex(e); i >= 0 {
		m.errors[i].Add(1)
	}
}

func (m *metrics) countJoinRefused(e *protoError) {
	m.joinsRefused.Add(1)
	if i := errorIndex(e); i >= 0 {
		m.refusedBy[i].Inc()
	}
}

func (m *metrics) countClose(code framing.StatusCode) {
	i := int(code) - 1000
	if i < 0 || i >= closeCodeSlots-1 {
		i = closeCodeSlots - 1
	}
	m.closes[i].Inc()
}

// observeSince observes the time since start, in seconds, into h.
func observeSince(h prometheus.Histogram, start time.Time) {
	h.Observe(time.Since(start).Seconds())
}
