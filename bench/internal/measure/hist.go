package measure

import (
	"errors"
	"time"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram range: 1 µs to 120 s at 3 significant digits (0.1 % error).
const (
	histLow  = 1
	histHigh = 120_000_000
	histSig  = 3
)

// ErrSnapshot is returned for a snapshot that does not describe a histogram.
var ErrSnapshot = errors.New("measure: bad histogram snapshot")

// Hist is a latency histogram in microseconds. It is not safe for concurrent
// use; Shard adds the locking.
type Hist struct {
	h *hdr.Histogram
}

// NewHist returns an empty histogram.
func NewHist() *Hist { return &Hist{h: hdr.New(histLow, histHigh, histSig)} }

// Record adds one latency; values outside the range are clamped so that a
// pathological sample still counts (as the range's end) instead of vanishing.
func (h *Hist) Record(d time.Duration) {
	us := d.Microseconds()
	if us < histLow {
		us = histLow
	}
	if us > histHigh {
		us = histHigh
	}
	_ = h.h.RecordValue(us)
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 { return h.h.TotalCount() }

// Merge adds all of o's values to h.
func (h *Hist) Merge(o *Hist) { h.h.Merge(o.h) }

// Reset empties h.
func (h *Hist) Reset() { h.h.Reset() }

// QuantileMs returns the value at quantile q (0..100) in milliseconds.
func (h *Hist) QuantileMs(q float64) float64 {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return float64(h.h.ValueAtQuantile(q)) / 1000
}

// MaxMs is the largest recorded value in milliseconds.
func (h *Hist) MaxMs() float64 {
	if h.h.TotalCount() == 0 {
		return 0
	}
	return float64(h.h.Max()) / 1000
}

// Snapshot is the JSON form of a Hist: only non-empty buckets, as pairs of
// bucket index and count, so an idle histogram costs a few bytes on the wire.
type Snapshot struct {
	Sig    int64      `json:"sig"`
	High   int64      `json:"high"`
	Counts [][2]int64 `json:"c,omitempty"`
}

// Export returns h as a Snapshot.
func (h *Hist) Export() Snapshot {
	e := h.h.Export()
	s := Snapshot{Sig: e.SignificantFigures, High: e.HighestTrackableValue}
	for i, n := range e.Counts {
		if n != 0 {
			s.Counts = append(s.Counts, [2]int64{int64(i), n})
		}
	}
	return s
}

// Import rebuilds a Hist from a Snapshot produced by Export in any process.
func Import(s Snapshot) (*Hist, error) {
	if s.Sig != histSig || s.High != histHigh {
		return nil, ErrSnapshot
	}
	h := NewHist()
	full := h.h.Export()
	for _, p := range s.Counts {
		if p[0] < 0 || p[0] >= int64(len(full.Counts)) || p[1] < 0 {
			return nil, ErrSnapshot
		}
		full.Counts[p[0]] = p[1]
	}
	return &Hist{h: hdr.Import(full)}, nil
}

// MergeSnapshot adds a snapshot's values to h.
func (h *Hist) MergeSnapshot(s Snapshot) error {
	o, err := Import(s)
	if err != nil {
		return err
	}
	h.Merge(o)
	return nil
}
