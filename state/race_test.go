//go:build race

package state

// raceEnabled shrinks tests whose size, not their concurrency, is the point.
const raceEnabled = true
