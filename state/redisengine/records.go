package redisengine

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// rcNotRanked is playerRankLua's reply for a player without a leaderboard
// entry.
const rcNotRanked = -5

// boardLua: KEYS meta, leaderboard; ARGV offset, limit.
// Reply: -1, or {seq, total, player, score, ...} for ranks offset+1 to
// offset+limit: one round trip, read in one atomic step.
var boardLua = redis.NewScript(luaRanked + `
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return -1 end
local off, lim = tonumber(ARGV[1]), tonumber(ARGV[2])
local r = {seq, redis.call('ZCARD', KEYS[2])}
if lim > 0 then ranked(r, KEYS[2], off, off + lim - 1) end
return r
`)

// playerRankLua: KEYS meta, leaderboard, player->member; ARGV player,
// around. Reply: -1, -5 (not ranked), or {seq, rank, first, player, score,
// ...}: the player's 1-based rank and the entries from rank first to
// rank+around.
var playerRankLua = redis.NewScript(luaRanked + `
local seq = redis.call('HGET', KEYS[1], 'seq')
if not seq then return -1 end
local member = redis.call('HGET', KEYS[3], ARGV[1])
if not member then return -5 end
local rank = redis.call('ZRANK', KEYS[2], member)
if not rank then return -5 end
local around = tonumber(ARGV[2])
local from = math.max(rank - around, 0)
return ranked({seq, rank + 1, from + 1}, KEYS[2], from, rank + around)
`)

// claimsLua: KEYS meta, claims. Reply: -1 or {epoch, claim...}, each claim
// "seq|at_ms|x|y|treasure|player|points" as digLua appends it.
var claimsLua = redis.NewScript(`
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then return -1 end
local r = redis.call('LRANGE', KEYS[2], 0, -1)
table.insert(r, 1, epoch)
return r
`)

var _ state.Records = (*Engine)(nil)

// pairs decodes player, score pairs from r[from:] starting at rank first.
func rankedPairs(r []any, from, first int) ([]state.Ranked, error) {
	out := make([]state.Ranked, 0, (len(r)-from)/2)
	for i := from; i+1 < len(r); i += 2 {
		p, _ := r[i].(string)
		s, _ := r[i+1].(string)
		sc, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redisengine: bad score %q", s)
		}
		out = append(out, state.Ranked{Rank: first + len(out), Player: p, Score: sc})
	}
	return out, nil
}

func replyArray(v any, n int) ([]any, error) {
	if rc, ok := v.(int64); ok {
		return nil, rcErr(rc)
	}
	r, ok := v.([]any)
	if !ok || len(r) < n {
		return nil, fmt.Errorf("redisengine: bad reply")
	}
	return r, nil
}

func replyInt(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case string:
		n, _ := strconv.ParseInt(x, 10, 64)
		return n
	}
	return 0
}

// Board implements state.Records in one script (one round trip): ZCARD and
// a ZRANGE of the page, whose order is the pushes' order (see the package
// doc).
func (e *Engine) Board(ctx context.Context, hunt string, offset, limit int) (state.BoardPage, error) {
	if err := e.check(); err != nil {
		return state.BoardPage{}, err
	}
	offset, limit = max(offset, 0), min(max(limit, 0), state.MaxPageLimit)
	k := e.keysOf(hunt)
	v, err := boardLua.Run(ctx, e.rdb, []string{k.meta, k.lb}, offset, limit).Result()
	if err != nil {
		return state.BoardPage{}, wrap(err)
	}
	r, err := replyArray(v, 2)
	if err != nil {
		return state.BoardPage{}, err
	}
	es, err := rankedPairs(r, 2, offset+1)
	if err != nil {
		return state.BoardPage{}, err
	}
	return state.BoardPage{Hunt: hunt, Seq: uint64(replyInt(r[0])), Total: int(replyInt(r[1])), Entries: es}, nil
}

// PlayerRank implements state.Records in one script: the player's member
// (P{h}:pm), its ZRANK and the ZRANGE around it.
func (e *Engine) PlayerRank(ctx context.Context, hunt, player string, around int) (state.PlayerRank, error) {
	if err := e.check(); err != nil {
		return state.PlayerRank{}, err
	}
	around = min(max(around, 0), state.MaxAround)
	k := e.keysOf(hunt)
	v, err := playerRankLua.Run(ctx, e.rdb, []string{k.meta, k.lb, k.members}, player, around).Result()
	if err != nil {
		return state.PlayerRank{}, wrap(err)
	}
	if rc, ok := v.(int64); ok && rc == rcNotRanked {
		return state.PlayerRank{}, state.ErrNotRanked
	}
	r, err := replyArray(v, 3)
	if err != nil {
		return state.PlayerRank{}, err
	}
	rank, first := int(replyInt(r[1])), int(replyInt(r[2]))
	es, err := rankedPairs(r, 3, first)
	if err != nil {
		return state.PlayerRank{}, err
	}
	pr := state.PlayerRank{Hunt: hunt, Player: player, Rank: rank, Seq: uint64(replyInt(r[0])), Around: es}
	if i := rank - first; i >= 0 && i < len(es) {
		pr.Score = es[i].Score
	}
	return pr, nil
}

// Claims implements state.Records from the hunt's claims list P{h}:c, which
// the dig script appends to and nothing trims.
func (e *Engine) Claims(ctx context.Context, hunt string) (uint64, []state.Claim, error) {
	if err := e.check(); err != nil {
		return 0, nil, err
	}
	k := e.keysOf(hunt)
	v, err := claimsLua.Run(ctx, e.rdb, []string{k.meta, k.claims}).Result()
	if err != nil {
		return 0, nil, wrap(err)
	}
	r, err := replyArray(v, 1)
	if err != nil {
		return 0, nil, err
	}
	epoch := uint64(replyInt(r[0]))
	cs := make([]state.Claim, 0, len(r)-1)
	for _, x := range r[1:] {
		s, _ := x.(string)
		c, err := decodeClaim(s)
		if err != nil {
			return 0, nil, err
		}
		cs = append(cs, c)
	}
	return epoch, cs, nil
}

// decodeClaim parses "seq|at_ms|x|y|treasure|player|points"; the player is
// cut from both ends, as in decodeUpdate.
func decodeClaim(s string) (state.Claim, error) {
	var c state.Claim
	var f [5]string
	rest := s
	for i := range f {
		var ok bool
		if f[i], rest, ok = field(rest); !ok {
			return c, errBadUpdate
		}
	}
	j := strings.LastIndexByte(rest, '|')
	if j < 0 {
		return c, errBadUpdate
	}
	var err error
	var ms, x, y int64
	if c.Seq, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return c, errBadUpdate
	}
	if ms, err = strconv.ParseInt(f[1], 10, 64); err != nil {
		return c, errBadUpdate
	}
	if x, err = strconv.ParseInt(f[2], 10, 64); err != nil {
		return c, errBadUpdate
	}
	if y, err = strconv.ParseInt(f[3], 10, 64); err != nil {
		return c, errBadUpdate
	}
	if c.Points, err = strconv.ParseInt(rest[j+1:], 10, 64); err != nil {
		return c, errBadUpdate
	}
	c.At, c.X, c.Y, c.Treasure, c.Player = time.UnixMilli(ms), int(x), int(y), f[4], rest[:j]
	return c, nil
}
