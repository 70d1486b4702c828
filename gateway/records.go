package gateway

import (
	"context"
	"net/http"
	"strconv"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/state"
)

// The game backend's read endpoints (leaderboard pages, a player's rank,
// the claims record) and the player op rank. They need the engine's
// state.Records, found once by type assertion in New.

// Defaults of the leaderboard queries.
const (
	defaultPageLimit = 100
	defaultAround    = 5
)

// atLayout is RFC 3339 in UTC with exactly three fractional digits, the
// form of a claim's `at`.
const atLayout = "2006-01-02T15:04:05.000Z"

func appendRanked(dst []byte, es []state.Ranked) []byte {
	dst = append(dst, '[')
	for i := range es {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"rank":`...)
		dst = appendInt(dst, int64(es[i].Rank))
		dst = append(dst, `,"player":`...)
		dst = appendJSONString(dst, es[i].Player)
		dst = append(dst, `,"score":`...)
		dst = appendInt(dst, es[i].Score)
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// appendPlayerRank encodes the fields of a player's rank, without braces.
func appendPlayerRank(dst []byte, pr *state.PlayerRank) []byte {
	dst = append(dst, `"player":`...)
	dst = appendJSONString(dst, pr.Player)
	dst = append(dst, `,"score":`...)
	dst = appendInt(dst, pr.Score)
	dst = append(dst, `,"rank":`...)
	dst = appendInt(dst, int64(pr.Rank))
	dst = append(dst, `,"seq":`...)
	dst = appendUint(dst, pr.Seq)
	dst = append(dst, `,"around":`...)
	return appendRanked(dst, pr.Around)
}

// appendRankReply encodes the reply to the rank op.
func appendRankReply(dst, ref []byte, pr *state.PlayerRank) []byte {
	dst = appendHead(dst, "rank", ref)
	dst = append(dst, `,"hunt":`...)
	dst = appendJSONString(dst, pr.Hunt)
	dst = append(dst, ',')
	dst = appendPlayerRank(dst, pr)
	return append(dst, '}')
}

// queryInt reads an optional non-negative integer query parameter no
// larger than max; ok is false (and the answer written) if it is malformed.
func queryInt(w http.ResponseWriter, r *http.Request, name string, def, max int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > max {
		writeError(w, http.StatusBadRequest, "bad_request", name+" must be an integer from 0 to "+strconv.Itoa(max))
		return 0, false
	}
	return n, true
}

// records returns the engine's Records, answering 501 if it has none.
func (g *Gateway) records(w http.ResponseWriter) state.Records {
	if g.recs == nil {
		writeError(w, http.StatusNotImplemented, "internal", "the hunt store does not keep records")
	}
	return g.recs
}

func (g *Gateway) getLeaderboard(w http.ResponseWriter, r *http.Request) {
	offset, ok := queryInt(w, r, "offset", 0, 1<<31-1)
	if !ok {
		return
	}
	limit, ok := queryInt(w, r, "limit", defaultPageLimit, state.MaxPageLimit)
	if !ok {
		return
	}
	recs := g.records(w)
	if recs == nil {
		return
	}
	p, err := recs.Board(r.Context(), r.PathValue("id"), offset, limit)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	b := []byte(`{"hunt":`)
	b = appendJSONString(b, p.Hunt)
	b = append(b, `,"seq":`...)
	b = appendUint(b, p.Seq)
	b = append(b, `,"total":`...)
	b = appendInt(b, int64(p.Total))
	b = append(b, `,"entries":`...)
	b = appendRanked(b, p.Entries)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

func (g *Gateway) getPlayerRank(w http.ResponseWriter, r *http.Request) {
	around, ok := queryInt(w, r, "around", defaultAround, state.MaxAround)
	if !ok {
		return
	}
	recs := g.records(w)
	if recs == nil {
		return
	}
	pr, err := recs.PlayerRank(r.Context(), r.PathValue("id"), r.PathValue("player"), around)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	b := []byte(`{"hunt":`)
	b = appendJSONString(b, pr.Hunt)
	b = append(b, ',')
	b = appendPlayerRank(b, &pr)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

func (g *Gateway) getClaims(w http.ResponseWriter, r *http.Request) {
	recs := g.records(w)
	if recs == nil {
		return
	}
	hunt := r.PathValue("id")
	epoch, cs, err := recs.Claims(r.Context(), hunt)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	b := make([]byte, 0, 64+128*len(cs))
	b = append(b, `{"hunt":`...)
	b = appendJSONString(b, hunt)
	b = append(b, `,"epoch":`...)
	b = appendUint(b, epoch)
	b = append(b, `,"claims":[`...)
	for i := range cs {
		c := &cs[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"seq":`...)
		b = appendUint(b, c.Seq)
		b = append(b, `,"treasure":`...)
		b = appendJSONString(b, c.Treasure)
		b = append(b, `,"player":`...)
		b = appendJSONString(b, c.Player)
		b = append(b, `,"points":`...)
		b = appendInt(b, c.Points)
		b = append(b, `,"x":`...)
		b = appendInt(b, int64(c.X))
		b = append(b, `,"y":`...)
		b = appendInt(b, int64(c.Y))
		b = append(b, `,"at":"`...)
		b = c.At.UTC().AppendFormat(b, atLayout)
		b = append(b, `"}`...)
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...))
}

// rank answers the player op rank: the connection's own player's place in
// the hunt, with neighbours. Like status it needs no join, and a token's
// hunts list limits it.
func (ls *loopState) rank(l *conn.Loop, s *session, r *request) {
	g := ls.g
	if g.recs == nil {
		ls.fail(l, s.h, r.ref, errInternal)
		return
	}
	around := defaultAround
	if r.hasAround {
		around = int(r.around)
	}
	player := s.player
	readOp(ls, l, s, r, func(ctx context.Context, name string) (state.PlayerRank, error) {
		return g.recs.PlayerRank(ctx, name, player, around)
	}, appendRankReply)
}
