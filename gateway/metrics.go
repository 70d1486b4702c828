package gateway

import (
	"sort"
	"strconv"
	"sync/atomic"
)

// errorCodes are the wire error codes, in the order of metrics.errors.
var errorCodes = [...]string{
	"bad_request", "unknown_op", "unknown_hunt", "forbidden", "rate_limited", "too_large",
	"not_joined", "too_many_hunts", "ended", "out_of_grid", "internal", "overloaded", "not_ranked",
}

var opNames = [...]string{
	opNone: "", opUnknown: "", opJoin: "join", opLeave: "leave", opDig: "dig", opStatus: "status", opPing: "ping", opRank: "rank",
}

// metrics are the gateway's own counters (conn counts bytes and frames).
// All are atomics: loops write them, the admin listener reads them.
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
	feedRefused  atomic.Int64 // long polls refused over Config.MaxLongPolls
	ops          [len(opNames)]atomic.Int64
	errors       [len(errorCodes)]atomic.Int64
}

func (m *metrics) countError(e *protoError) {
	for i, c := range errorCodes {
		if c == e.code {
			m.errors[i].Add(1)
			return
		}
	}
}

// promWriter writes the Prometheus text exposition format by hand.
type promWriter struct{ b []byte }

func (w *promWriter) head(name, typ, help string) {
	w.b = append(w.b, "# HELP "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, help...)
	w.b = append(w.b, "\n# TYPE "...)
	w.b = append(w.b, name...)
	w.b = append(w.b, ' ')
	w.b = append(w.b, typ...)
	w.b = append(w.b, '\n')
}

// sample writes one line; labels alternate name, value.
func (w *promWriter) sample(name string, v float64, labels ...string) {
	w.b = append(w.b, name...)
	if len(labels) > 0 {
		w.b = append(w.b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.b = append(w.b, labels[i]...)
			w.b = append(w.b, '=')
			w.b = strconv.AppendQuote(w.b, labels[i+1])
		}
		w.b = append(w.b, '}')
	}
	w.b = append(w.b, ' ')
	w.b = strconv.AppendFloat(w.b, v, 'g', -1, 64)
	w.b = append(w.b, '\n')
}

func (w *promWriter) single(name, typ, help string, v float64) {
	w.head(name, typ, help)
	w.sample(name, v)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
