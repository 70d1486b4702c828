package state

import "time"

// Op is what a Command asks of a hunt.
type Op uint8

// The commands a hunt understands.
const (
	OpJoin    Op = iota + 1 // count one more player
	OpLeave                 // count one player less (never below zero)
	OpDig                   // Player digs (X, Y)
	OpPublish               // emit an event carrying Data
	OpEnd                   // end the hunt
	OpStart                 // start a scheduled hunt (no-op otherwise)
)

// Command is one input to Hunt.Apply. At is the time of the command (the
// caller's clock, so the rules never read one); it stamps the updates.
type Command struct {
	Op     Op
	Player string // OpDig; kept by the leaderboard, so never a reused buffer
	X, Y   int    // OpDig
	Data   []byte // OpPublish; kept as is, so the caller must not modify it
	At     time.Time
}

// Result is what Apply returns besides the updates.
type Result struct {
	Dig DigResult // OpDig
	Seq uint64    // the hunt's seq after the command
}

// smallGrid is the largest grid always indexed by a dense cell table (4 bytes
// per cell, 256 KiB); a larger grid uses one only if it is crowded.
const smallGrid = 1 << 16

// Hunt is the state of one hunt and its rules. Apply is the only way to
// change it: a pure step from (state, command) to (new state, updates), with
// no I/O, no clock and no locks, so it runs the same inside the memory
// engine, in tests, or anywhere else. The state is updated in place rather
// than copied because a hunt carries a leaderboard of up to millions of
// players; a caller that needs the old state must not apply the command.
//
// The policy for the last treasure: the claim that takes it also ends the
// hunt, emitting claimed, leaderboard and then ended (seq + 1) with the final
// top. A hunt created without treasures stays open until OpEnd.
//
// A Hunt is not safe for concurrent use.
type Hunt struct {
	id     string
	epoch  uint64
	width  int
	height int

	treasures []Treasure
	claimed   []bool
	left      int
	dense     []int32         // small grids: cell -> treasure index + 1
	sparse    map[int64]int32 // large grids: cell -> treasure index

	seq     uint64
	ended   bool
	waiting bool // scheduled and not started yet

	startsAt, endsAt time.Time // the schedule; zero when not set
	players          int
	lb               *Leaderboard
	top              []Entry // current top; replaced, never modified, when it changes
}

// NewHunt validates s, lays out its treasures and returns the open hunt with
// seq 0 in the given epoch.
func NewHunt(s Spec, epoch uint64) (*Hunt, error) {
	ts, err := s.Layout()
	if err != nil {
		return nil, err
	}
	h := &Hunt{
		id:        s.ID,
		epoch:     epoch,
		width:     s.Width,
		height:    s.Height,
		treasures: ts,
		claimed:   make([]bool, len(ts)),
		left:      len(ts),
		lb:        NewLeaderboard(),
		top:       []Entry{},
	}
	if s.StartsAt != nil {
		h.startsAt, h.waiting = *s.StartsAt, true
	}
	if s.EndsAt != nil {
		h.endsAt = *s.EndsAt
	}
	cells := int64(s.Width) * int64(s.Height)
	// A dense table costs 4 bytes a cell, a map some 16 bytes a treasure and
	// a slower lookup: dense when it is small or the grid is crowded.
	if cells <= smallGrid || cells <= 4*int64(len(ts)) {
		h.dense = make([]int32, cells)
		for i, t := range ts {
			h.dense[h.cell(t.X, t.Y)] = int32(i) + 1
		}
	} else {
		h.sparse = make(map[int64]int32, len(ts))
		for i, t := range ts {
			h.sparse[h.cell(t.X, t.Y)] = int32(i)
		}
	}
	return h, nil
}

func (h *Hunt) cell(x, y int) int64 { return int64(x)*int64(h.height) + int64(y) }

// ID returns the hunt's id.
func (h *Hunt) ID() string { return h.id }

// Seq returns the seq of the last reliable update.
func (h *Hunt) Seq() uint64 { return h.seq }

// Epoch returns the epoch the hunt was created in.
func (h *Hunt) Epoch() uint64 { return h.epoch }

// Ended reports whether the hunt has ended.
func (h *Hunt) Ended() bool { return h.ended }

// Treasures returns the hunt's layout; the slice must not be modified.
func (h *Hunt) Treasures() []Treasure { return h.treasures }

// Due returns the command the schedule asks for at now: OpStart for a
// scheduled hunt whose start has come, OpEnd for a hunt whose end has come,
// 0 for none. next is the next time of the schedule still ahead (zero when
// nothing is ahead).
func (h *Hunt) Due(now time.Time) (op Op, next time.Time) {
	switch {
	case h.ended:
		return 0, time.Time{}
	case h.waiting && !now.Before(h.startsAt):
		return OpStart, h.startsAt
	case h.waiting:
		return 0, h.startsAt
	case !h.endsAt.IsZero() && !now.Before(h.endsAt):
		return OpEnd, h.endsAt
	}
	return 0, h.endsAt
}

// Scheduled reports whether the hunt has a start or an end to come.
func (h *Hunt) Scheduled() bool { return !h.ended && (h.waiting || !h.endsAt.IsZero()) }

// Leaderboard returns the hunt's leaderboard, for reading only.
func (h *Hunt) Leaderboard() *Leaderboard { return h.lb }

// Status returns a snapshot; its Top is shared and read-only.
func (h *Hunt) Status() Status {
	st := StateOpen
	if h.ended {
		st = StateEnded
	} else if h.waiting {
		st = StateScheduled
	}
	return Status{
		Hunt:          h.id,
		Epoch:         h.epoch,
		Seq:           h.seq,
		Players:       h.players,
		TreasuresLeft: h.left,
		State:         st,
		Top:           h.top,
		StartsAt:      h.startsAt,
		EndsAt:        h.endsAt,
	}
}

// Apply runs cmd against the hunt, appends the updates it causes to out (in
// seq order) and returns them. On error the hunt is unchanged and nothing is
// appended. With an out of spare capacity 3, a dig that misses, and a claim
// that leaves the top unchanged, allocate nothing.
func (h *Hunt) Apply(cmd Command, out []Update) ([]Update, Result, error) {
	var res Result
	var err error
	switch cmd.Op {
	case OpJoin:
		h.players++
	case OpLeave:
		if h.players > 0 {
			h.players--
		}
	case OpDig:
		out, res.Dig, err = h.dig(cmd, out)
	case OpPublish:
		if h.ended {
			err = ErrEnded
			break
		}
		out = append(out, h.reliable(KindEvent, cmd.At))
		out[len(out)-1].Data = cmd.Data
	case OpEnd:
		if h.ended {
			err = ErrEnded
			break
		}
		h.waiting = false
		out = h.end(cmd.At, out)
	case OpStart:
		if h.waiting && !h.ended {
			h.waiting = false
			out = append(out, h.reliable(KindStarted, cmd.At))
		}
	default:
		err = errUnknownOp
	}
	res.Seq = h.seq
	return out, res, err
}

// reliable takes the next seq for an update of kind k.
func (h *Hunt) reliable(k Kind, at time.Time) Update {
	h.seq++
	return Update{Hunt: h.id, Epoch: h.epoch, Seq: h.seq, Kind: k, At: at}
}

func (h *Hunt) end(at time.Time, out []Update) []Update {
	h.ended = true
	u := h.reliable(KindEnded, at)
	u.Top = h.top
	return append(out, u)
}

func (h *Hunt) dig(cmd Command, out []Update) ([]Update, DigResult, error) {
	if h.ended {
		return out, DigResult{}, ErrEnded
	}
	if h.waiting {
		return out, DigResult{}, ErrNotStarted
	}
	if cmd.X < 0 || cmd.Y < 0 || cmd.X >= h.width || cmd.Y >= h.height {
		return out, DigResult{}, ErrOutOfGrid
	}
	c := h.cell(cmd.X, cmd.Y)
	ti := int32(-1)
	if h.dense != nil {
		ti = h.dense[c] - 1
	} else if i, ok := h.sparse[c]; ok {
		ti = i
	}
	if ti < 0 || h.claimed[ti] {
		return out, DigResult{}, nil
	}
	h.claimed[ti] = true
	h.left--
	t := &h.treasures[ti]

	score, rank, oldRank := h.lb.add(cmd.Player, t.Points)
	// The top changes only if the digger was or now is in it; otherwise the
	// current top slice is still right and is shared, not rebuilt.
	if rank <= TopSize || (oldRank > 0 && oldRank <= TopSize) {
		h.top = h.lb.Top(make([]Entry, 0, TopSize), TopSize)
	}

	u := h.reliable(KindClaimed, cmd.At)
	u.Treasure, u.Player, u.Points = t.ID, cmd.Player, t.Points
	out = append(out, u)
	out = append(out, Update{Hunt: h.id, Epoch: h.epoch, Seq: h.seq, Kind: KindLeaderboard, Top: h.top, At: cmd.At})
	res := DigResult{Found: true, Treasure: t.ID, Points: t.Points, Score: score, Rank: rank, Seq: h.seq}
	if h.left == 0 {
		out = h.end(cmd.At, out)
	}
	return out, res, nil
}
