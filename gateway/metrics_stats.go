package gateway

import (
	"context"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// statsCollector exports the series derived from a Stats snapshot: the
// counters conn and the gateway keep for /v1/stats, per loop and per hunt.
// Their names, types and help texts are those /metrics had before it moved
// to client_golang, so dashboards built on them keep working. It describes
// nothing up front (an unchecked collector): the loop and hunt label values
// change at run time.
type statsCollector struct{ g *Gateway }

// scrapeTimeout bounds the engine calls (hunt list and statuses) of one
// scrape.
const scrapeTimeout = 5 * time.Second

func (statsCollector) Describe(chan<- *prometheus.Desc) {}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(c.g.ctx, scrapeTimeout)
	defer cancel()
	st := c.g.snapshot(ctx, false)
	e := emitter{ch: ch}
	e.one("huntgate_connections", "Open WebSocket connections.", prometheus.GaugeValue, float64(st.Connections.Total))
	loops := make([]string, len(st.Loops))
	for i := range loops {
		loops[i] = strconv.Itoa(i)
	}
	for i, c := range st.Connections.Loops {
		e.labelled("huntgate_loop_connections", "Open connections per event loop.", prometheus.GaugeValue, float64(c), "loop", loops[i])
	}
	for i, l := range st.Loops {
		e.labelled("huntgate_loop_passes_total", "Event loop passes (one epoll_wait each).", prometheus.CounterValue, float64(l.Passes), "loop", loops[i])
		e.labelled("huntgate_loop_busy_seconds_total", "Time event loops spent working, outside epoll_wait.", prometheus.CounterValue, l.BusySec, "loop", loops[i])
		e.labelled("huntgate_loop_pass_max_seconds", "Longest event loop pass in the last 10-20 seconds.", prometheus.GaugeValue, l.PassMaxSec, "loop", loops[i])
		if l.QueueBytes >= 0 {
			e.labelled("huntgate_queue_bytes", "Output bytes queued on the loop's connections and not written yet.", prometheus.GaugeValue, float64(l.QueueBytes), "loop", loops[i])
		}
	}
	counter := prometheus.CounterValue
	e.one("huntgate_tcp_accepted_total", "TCP connections accepted.", counter, float64(st.Connections.TCP))
	e.one("huntgate_closed_total", "Connections closed.", counter, float64(st.Connections.Closed))
	e.one("huntgate_messages_in_total", "Data messages received.", counter, float64(st.Messages.In))
	e.one("huntgate_messages_out_total", "Data frames queued for sending.", counter, float64(st.Messages.Out))
	e.one("huntgate_bytes_in_total", "Payload bytes received.", counter, float64(st.Messages.BytesIn))
	e.one("huntgate_bytes_out_total", "Bytes written to sockets.", counter, float64(st.Messages.BytesOut))
	e.one("huntgate_slow_closes_total", "Connections closed with 1008 slow.", counter, float64(st.SlowCloses))
	e.one("huntgate_rate_limit_closes_total", "Connections closed for sustained rate excess.", counter, float64(st.RateCloses))
	e.one("huntgate_auth_refused_total", "Upgrades refused with 401.", counter, float64(st.AuthRefused))
	e.one("huntgate_updates_total", "Hunt updates received from the engine.", counter, float64(st.Updates))
	e.one("huntgate_deliveries_total", "Update frames queued by fan-out.", counter, float64(st.Deliveries))
	e.one("huntgate_replayed_total", "Updates replayed on resume.", counter, float64(st.Replayed))
	e.one("huntgate_digs_local_total", "Digs answered on the node without the store: misses its copy of the hunt vouches for.", counter, float64(st.DigsLocal))
	draining := 0.0
	if st.Draining {
		draining = 1
	}
	e.one("huntgate_draining", "1 while the gateway drains.", prometheus.GaugeValue, draining)
	engineUp := 1.0
	if st.Engine.Error != "" {
		engineUp = 0
	}
	e.one("huntgate_engine_ready", "1 while the engine can serve (Redis answers its probe); the reason is in /v1/stats engine.error and /readyz.", prometheus.GaugeValue, engineUp)
	for _, op := range sortedKeys(st.Ops) {
		e.labelled("huntgate_requests_total", "Protocol requests by op.", counter, float64(st.Ops[op]), "op", op)
	}
	for _, code := range sortedKeys(st.Errors) {
		e.labelled("huntgate_errors_total", "Protocol error replies by code.", counter, float64(st.Errors[code]), "code", code)
	}
	for _, h := range sortedKeys(st.Hunts) {
		e.labelled("huntgate_hunt_players", "Connected players per hunt (cluster-wide).", prometheus.GaugeValue, float64(st.Hunts[h].Players), "hunt", h)
		e.labelled("huntgate_hunt_seq", "Last reliable seq per hunt.", prometheus.GaugeValue, float64(st.Hunts[h].Seq), "hunt", h)
	}
	e.one("huntgate_feed_long_polls", "Long polls of the updates feed waiting now.", prometheus.GaugeValue, float64(c.g.feed.waiting.Load()))
	if wh := c.g.wh; wh != nil {
		e.one("huntgate_webhook_outbox", "Updates waiting for webhook delivery.", prometheus.GaugeValue, float64(wh.outbox()))
		e.one("huntgate_webhook_delivered_total", "Updates delivered to the webhook (2xx).", counter, float64(wh.delivered.Load()))
		e.one("huntgate_webhook_attempts_total", "Webhook requests made.", counter, float64(wh.attempts.Load()))
		e.one("huntgate_webhook_failures_total", "Webhook requests without a 2xx (error, timeout, other status), retried.", counter, float64(wh.failures.Load()))
		e.labelled("huntgate_webhook_dropped_total", "Updates not delivered to the webhook, by reason.", counter, float64(wh.overflow.Load()), "reason", "overflow")
		e.labelled("huntgate_webhook_dropped_total", "Updates not delivered to the webhook, by reason.", counter, float64(wh.expired.Load()), "reason", "age")
		e.one("huntgate_webhook_gap_total", "Updates reported missing to the webhook receiver (X-Huntgate-Gap) with a delivery of this node.", counter, float64(wh.gapped.Load()))
		e.one("huntgate_webhook_claims_total", "Claims of a shared webhook backlog (Redis round trips: lease, acknowledgement, next updates).", counter, float64(wh.claims.Load()))
		e.one("huntgate_webhook_leases", "Hunts whose webhook delivery this node holds (shared backlog).", prometheus.GaugeValue, float64(wh.held.Load()))
	}
	e.one("huntgate_feed_refused_total", "Long polls refused over --max-long-polls.", counter, float64(c.g.m.feedRefused.Load()))
}

// emitter sends const metrics, with one Desc per family and label set.
type emitter struct {
	ch    chan<- prometheus.Metric
	descs map[string]*prometheus.Desc
}

func (e *emitter) desc(name, help string, labels ...string) *prometheus.Desc {
	if d, ok := e.descs[name]; ok {
		return d
	}
	if e.descs == nil {
		e.descs = map[string]*prometheus.Desc{}
	}
	d := prometheus.NewDesc(name, help, labels, nil)
	e.descs[name] = d
	return d
}

func (e *emitter) one(name, help string, t prometheus.ValueType, v float64) {
	e.ch <- prometheus.MustNewConstMetric(e.desc(name, help), t, v)
}

func (e *emitter) labelled(name, help string, t prometheus.ValueType, v float64, label, value string) {
	e.ch <- prometheus.MustNewConstMetric(e.desc(name, help, label), t, v, value)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
