package state

import "time"

// Kind is the kind of a hunt update. Its String form is the `kind` field of an
// `update` push in PROTOCOL.md.
type Kind uint8

// The update kinds. KindClaimed, KindEvent and KindEnded are reliable: each
// takes the next seq of its hunt. KindLeaderboard is latest-value and carries
// the seq of the last reliable update it reflects.
const (
	KindClaimed Kind = iota + 1
	KindLeaderboard
	KindEvent
	KindEnded
	// KindStarted is a scheduled hunt's start, at its starts_at.
	KindStarted
)

var kindNames = [...]string{
	KindClaimed:     "claimed",
	KindLeaderboard: "leaderboard",
	KindEvent:       "event",
	KindEnded:       "ended",
	KindStarted:     "started",
}

// String returns the wire name of k ("claimed", "leaderboard", "event",
// "ended"), or "unknown" for a value outside the set.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "unknown"
}

// Reliable reports whether updates of kind k take a seq of their own and must
// reach every joined player in order (claimed, event, ended, started).
func (k Kind) Reliable() bool {
	return k == KindClaimed || k == KindEvent || k == KindEnded || k == KindStarted
}

// Hunt states as they appear in Status.State.
const (
	StateOpen  = "open"
	StateEnded = "ended"
	// StateScheduled is a hunt created with a starts_at still to come:
	// join and status answer, dig gets ErrNotStarted.
	StateScheduled = "scheduled"
)

// TopSize is how many entries Status.Top and leaderboard/ended updates carry.
const TopSize = 10

// Entry is one line of a leaderboard.
type Entry struct {
	Player string `json:"player"`
	Score  int64  `json:"score"`
}

// Status is a snapshot of a hunt.
//
// Top is shared with the engine and with updates already emitted: it is never
// modified after it is returned, and callers must not modify it either.
type Status struct {
	Hunt          string
	Epoch         uint64
	Seq           uint64 // seq of the last reliable update (0 before the first)
	Players       int    // connected players (Join minus Leave, never below 0)
	TreasuresLeft int
	State         string // StateOpen, StateEnded or StateScheduled
	Top           []Entry
	// StartsAt and EndsAt are the hunt's schedule (Spec.StartsAt,
	// Spec.EndsAt); zero when unset.
	StartsAt, EndsAt time.Time
}

// Update is one hunt update, pushed to every player of the hunt. Reliable
// kinds get seq = previous reliable seq + 1; a leaderboard update carries the
// seq of the last reliable update it reflects.
//
// Updates are values; the slices they hold (Top, Data) are immutable once the
// update is emitted and may be shared between updates, history and Status.
type Update struct {
	Hunt  string
	Epoch uint64
	Seq   uint64
	Kind  Kind

	// KindClaimed.
	Treasure string
	Player   string
	Points   int64

	// KindLeaderboard and KindEnded: up to TopSize entries, best first.
	Top []Entry

	// KindEvent: the JSON published by the game backend, unchanged.
	Data []byte

	// At is when the engine produced the update; history ages out by it.
	At time.Time
}

// DigResult is the outcome of a dig.
type DigResult struct {
	Found    bool
	Treasure string // treasure id, when Found
	Points   int64  // the treasure's points, when Found
	Score    int64  // the digger's new total in the hunt, when Found
	Rank     int    // the digger's 1-based leaderboard place, when Found
	Seq      uint64 // seq of the claimed update, when Found; 0 otherwise
}
