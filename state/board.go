package state

import (
	"context"
	"errors"
	"time"
)

// ErrNotRanked is returned by Board.PlayerRank for a player without points
// in the hunt (one who never claimed a treasure).
var ErrNotRanked = errors.New("state: player not ranked")

// Limits of the leaderboard queries.
const (
	// MaxPageLimit is the most entries one leaderboard page may ask for.
	MaxPageLimit = 1000
	// MaxAround is the most neighbours asked for on each side of a player.
	MaxAround = 100
)

// Ranked is one line of a leaderboard page: a player, its score and its
// 1-based rank.
type Ranked struct {
	Rank   int    `json:"rank"`
	Player string `json:"player"`
	Score  int64  `json:"score"`
}

// BoardPage is a slice of a hunt's leaderboard, read in one atomic step:
// Total players ranked as of the reliable update Seq.
type BoardPage struct {
	Hunt    string
	Seq     uint64
	Total   int
	Entries []Ranked
}

// PlayerRank is a player's place on a hunt's leaderboard and the players
// ranked up to Around places above and below it (itself included), best
// first.
type PlayerRank struct {
	Hunt   string
	Player string
	Score  int64
	Rank   int
	Seq    uint64
	Around []Ranked
}

// Claim is one claim of a hunt's claims record: the claimed update's seq,
// the treasure, where it lay, who claimed it and when, on the engine's
// clock.
type Claim struct {
	Seq      uint64
	Treasure string
	Player   string
	Points   int64
	X, Y     int
	At       time.Time
}

// Records is what the game backend's read endpoints ask of an engine beyond
// Engine: leaderboard pages, a player's rank with neighbours and the
// complete claims record. Both engines implement it; the gateway finds it
// by type assertion, so an Engine without it still serves players.
type Records interface {
	// Board returns up to limit (1..MaxPageLimit) entries from rank
	// offset+1, in the order of the leaderboard pushes (higher score
	// first, then who reached it first). ErrUnknownHunt.
	Board(ctx context.Context, hunt string, offset, limit int) (BoardPage, error)
	// PlayerRank returns player's rank with up to around (0..MaxAround)
	// neighbours on each side. ErrUnknownHunt, ErrNotRanked.
	PlayerRank(ctx context.Context, hunt, player string, around int) (PlayerRank, error)
	// Claims returns the hunt's epoch and every claim since its creation,
	// in seq order; unlike History it is never trimmed (claims are bounded
	// by the hunt's treasures). ErrUnknownHunt.
	Claims(ctx context.Context, hunt string) (epoch uint64, claims []Claim, err error)
}

// pageOf turns entries starting at rank first into Ranked lines.
func rankedFrom(dst []Ranked, es []Entry, first int) []Ranked {
	for i, e := range es {
		dst = append(dst, Ranked{Rank: first + i, Player: e.Player, Score: e.Score})
	}
	return dst
}
