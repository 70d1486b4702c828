package state

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

// ErrBadSpec is returned (wrapped, with the reason) for a hunt spec that
// Validate refuses.
var ErrBadSpec = errors.New("state: bad hunt spec")

// Limits on a hunt spec. They keep one hunt's memory bounded: a grid cell
// index fits an int64 and a treasure index fits an int32.
const (
	MaxGridSide  = 1 << 20 // width and height are each at most this
	MaxTreasures = 1 << 20 // treasures per hunt
	MaxIDLen     = 64      // hunt and treasure ids
	// MaxPoints bounds a treasure's points, so that no score can overflow
	// (MaxTreasures * MaxPoints < 2^63).
	MaxPoints = 1_000_000_000
)

// Treasure is a treasure on a hunt's grid.
type Treasure struct {
	ID     string `json:"id"`
	X      int    `json:"x"`
	Y      int    `json:"y"`
	Points int64  `json:"points"`
}

// RandomSpec asks for Count treasures laid out from Seed, each worth 1 to
// MaxPoints points. The same spec always gives the same layout.
type RandomSpec struct {
	Count     int   `json:"count"`
	Seed      int64 `json:"seed"`
	MaxPoints int64 `json:"max_points"`
}

// Spec describes a hunt to create: a Width x Height grid (cells (0,0) to
// (Width-1, Height-1)) and either a fixed list of Treasures or a Random
// layout, not both. Neither means a hunt without treasures (events only);
// it never ends by itself.
type Spec struct {
	ID        string      `json:"id"`
	Width     int         `json:"width"`
	Height    int         `json:"height"`
	Treasures []Treasure  `json:"treasures,omitempty"`
	Random    *RandomSpec `json:"random,omitempty"`
	// StartsAt, if set, schedules the hunt: it is scheduled (join and
	// status answer, dig gets ErrNotStarted) until the engine's clock
	// reaches it, which emits a reliable started update. A time already
	// past starts the hunt at creation.
	StartsAt *time.Time `json:"starts_at,omitempty"`
	// EndsAt, if set, ends the hunt (an ended update) when the engine's
	// clock reaches it; after StartsAt.
	EndsAt *time.Time `json:"ends_at,omitempty"`
}

// ValidID reports whether s is 1-MaxIDLen chars of [A-Za-z0-9_.-], the
// alphabet of hunt, treasure and player ids in PROTOCOL.md, so that ids are
// safe in URLs, logs and Redis keys.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

func badSpec(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSpec, fmt.Sprintf(format, args...))
}

// Validate checks s; the error wraps ErrBadSpec and says what is wrong.
// Ids (hunt and treasure) are 1-64 chars of [A-Za-z0-9_.-]; treasure ids are
// unique, treasures lie on the grid, no two share a cell, points are 0 to
// MaxPoints.
func (s Spec) Validate() error {
	if !ValidID(s.ID) {
		return badSpec("id must be 1-%d chars of [A-Za-z0-9_.-]", MaxIDLen)
	}
	if s.StartsAt != nil && s.EndsAt != nil && !s.EndsAt.After(*s.StartsAt) {
		return badSpec("ends_at must be after starts_at")
	}
	if s.Width < 1 || s.Height < 1 || s.Width > MaxGridSide || s.Height > MaxGridSide {
		return badSpec("width and height must be 1-%d", MaxGridSide)
	}
	if s.Random != nil {
		if len(s.Treasures) > 0 {
			return badSpec("treasures and random are exclusive")
		}
		r := s.Random
		if r.Count < 0 || r.Count > MaxTreasures {
			return badSpec("random.count must be 0-%d", MaxTreasures)
		}
		if int64(r.Count) > int64(s.Width)*int64(s.Height) {
			return badSpec("random.count %d exceeds the %d cells of the grid", r.Count, int64(s.Width)*int64(s.Height))
		}
		if r.MaxPoints < 1 || r.MaxPoints > MaxPoints {
			return badSpec("random.max_points must be 1-%d", MaxPoints)
		}
		return nil
	}
	if len(s.Treasures) > MaxTreasures {
		return badSpec("at most %d treasures", MaxTreasures)
	}
	ids := make(map[string]struct{}, len(s.Treasures))
	cells := make(map[int64]struct{}, len(s.Treasures))
	for i, t := range s.Treasures {
		if !ValidID(t.ID) {
			return badSpec("treasure %d: id must be 1-%d chars of [A-Za-z0-9_.-]", i, MaxIDLen)
		}
		if _, dup := ids[t.ID]; dup {
			return badSpec("treasure id %q used twice", t.ID)
		}
		ids[t.ID] = struct{}{}
		if t.X < 0 || t.Y < 0 || t.X >= s.Width || t.Y >= s.Height {
			return badSpec("treasure %q at (%d,%d) is off the grid", t.ID, t.X, t.Y)
		}
		c := int64(t.X)*int64(s.Height) + int64(t.Y)
		if _, dup := cells[c]; dup {
			return badSpec("treasure %q shares cell (%d,%d)", t.ID, t.X, t.Y)
		}
		cells[c] = struct{}{}
		if t.Points < 0 || t.Points > MaxPoints {
			return badSpec("treasure %q: points must be 0-%d", t.ID, MaxPoints)
		}
	}
	return nil
}

// Layout returns the treasures of a valid spec: a copy of the fixed list, or
// the random layout. Random treasures are named "t1".."tN" in the order they
// were drawn; the draw depends only on Seed, Count, MaxPoints and the grid
// size, so the same spec gives the same layout on every node and restart.
func (s Spec) Layout() ([]Treasure, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	if s.Random == nil {
		return append([]Treasure(nil), s.Treasures...), nil
	}
	r := s.Random
	rng := rand.New(rand.NewPCG(uint64(r.Seed), 0x68756e7467617465)) // "huntgate"
	cells := int64(s.Width) * int64(s.Height)
	out := make([]Treasure, r.Count)
	place := func(i int, c int64) {
		out[i] = Treasure{
			ID:     "t" + strconv.Itoa(i+1),
			X:      int(c / int64(s.Height)),
			Y:      int(c % int64(s.Height)),
			Points: 1 + rng.Int64N(r.MaxPoints),
		}
	}
	if cells <= 4*int64(r.Count) {
		// Dense: a partial Fisher-Yates shuffle of all cells (at most 4M of
		// them, as Count <= MaxTreasures) never retries.
		perm := make([]int32, cells)
		for i := range perm {
			perm[i] = int32(i)
		}
		for i := 0; i < r.Count; i++ {
			j := i + int(rng.Int64N(cells-int64(i)))
			perm[i], perm[j] = perm[j], perm[i]
			place(i, int64(perm[i]))
		}
		return out, nil
	}
	// Sparse: rejection sampling; at most a quarter of the cells is taken, so
	// a draw hits a free cell with probability >= 3/4.
	taken := make(map[int64]struct{}, r.Count)
	for i := 0; i < r.Count; {
		c := rng.Int64N(cells)
		if _, dup := taken[c]; dup {
			continue
		}
		taken[c] = struct{}{}
		place(i, c)
		i++
	}
	return out, nil
}
