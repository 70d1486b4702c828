//go:build race

package framing

// raceEnabled is set when the race detector runs: it makes sync.Pool drop
// items at random, so allocation counts of pooled paths are not stable.
const raceEnabled = true
