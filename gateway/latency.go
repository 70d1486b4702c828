package gateway

import (
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// latencyWindow keeps, once a second, a copy of the cumulative bucket counts
// of some histograms, so that /v1/stats can serve their p99 over the last
// latencyWindowLen (10 s, or since start when younger) without a second
// recorder on the hot path: the p99 is read from the difference between the
// live counts and the copy from 10 s ago, interpolated inside its bucket as
// Prometheus's histogram_quantile does.
type latencyWindow struct {
	hs []prometheus.Histogram

	mu   sync.Mutex
	ring [latencyWindowLen + 1][][]uint64 // per tick, per histogram: cumulative bucket counts, then the total
	head int                              // next slot to write
	full bool
}

// latencyWindowLen is the window of the p99s in seconds (one slot a second).
const latencyWindowLen = 10

func newLatencyWindow(hs ...prometheus.Histogram) *latencyWindow {
	w := &latencyWindow{hs: hs}
	w.tick()
	return w
}

// counts reads h's cumulative bucket counts and its total into dst.
func histCounts(dst []uint64, h prometheus.Histogram) []uint64 {
	var m dto.Metric
	if err := h.Write(&m); err != nil || m.Histogram == nil {
		return dst[:0]
	}
	dst = dst[:0]
	for _, b := range m.Histogram.Bucket {
		dst = append(dst, b.GetCumulativeCount())
	}
	return append(dst, m.Histogram.GetSampleCount())
}

// tick records the current counts; run once a second.
func (w *latencyWindow) tick() {
	snap := make([][]uint64, len(w.hs))
	for i, h := range w.hs {
		snap[i] = histCounts(nil, h)
	}
	w.mu.Lock()
	w.ring[w.head] = snap
	w.head = (w.head + 1) % len(w.ring)
	if w.head == 0 {
		w.full = true
	}
	w.mu.Unlock()
}

// run ticks every second until done is closed.
func (w *latencyWindow) run(done <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			w.tick()
		case <-done:
			return
		}
	}
}

// p99ms returns the p99 of each histogram over the window, in milliseconds;
// 0 for one that observed nothing in it.
func (w *latencyWindow) p99ms() []float64 {
	w.mu.Lock()
	oldest := 0
	if w.full {
		oldest = w.head // the slot written longest ago, latencyWindowLen s back
	}
	base := w.ring[oldest]
	w.mu.Unlock()
	out := make([]float64, len(w.hs))
	for i, h := range w.hs {
		now := histCounts(nil, h)
		var old []uint64
		if i < len(base) {
			old = base[i]
		}
		out[i] = quantile(0.99, latencyBuckets, now, old) * 1000
	}
	return out
}

// quantile interpolates the q-quantile of the observations counted in now
// and not in old (cumulative counts per bucket of bounds, then the total).
// Past the last bound it answers the last bound.
func quantile(q float64, bounds []float64, now, old []uint64) float64 {
	if len(now) != len(bounds)+1 {
		return 0
	}
	at := func(k int) float64 {
		if k < len(old) && len(old) == len(now) {
			return float64(now[k] - old[k])
		}
		return float64(now[k])
	}
	total := at(len(bounds))
	if total == 0 {
		return 0
	}
	rank := q * total
	prevCount, prevBound := 0.0, 0.0
	for k, ub := range bounds {
		c := at(k)
		if c >= rank {
			if c == prevCount {
				return ub
			}
			return prevBound + (ub-prevBound)*(rank-prevCount)/(c-prevCount)
		}
		prevCount, prevBound = c, ub
	}
	return bounds[len(bounds)-1]
}

// roundMs keeps three decimals (microseconds) of a figure in milliseconds.
func roundMs(v float64) float64 { return math.Round(v*1000) / 1000 }
