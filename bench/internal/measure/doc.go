// Package measure holds huntload's measurement core, free of any network
// code: HDR latency histograms that travel between processes as JSON
// snapshots, per-loop recorders, seq-gap accounting, open-loop pacing and
// process CPU/RSS sampling.
//
// Latencies are recorded in microseconds. Everything a worker process
// measures is exported as a Result and merged by the parent, so percentiles
// are computed over the union of all samples, never averaged.
package measure
