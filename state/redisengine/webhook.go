package redisengine

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// Webhook backlog. With Config.WebhookBacklog, every script that records a
// reliable update also appends it to the hunt's backlog stream P{h}:w, in
// the same atomic step, so the backlog holds every update in seq order
// whichever node wrote it, and survives any node. The gateway of one node
// at a time delivers a hunt: the one holding its lease P{h}:wl (SET PX,
// renewed by each claim). A claim acknowledges what the holder delivered
// by trimming the stream up to that entry, so the stream holds exactly the
// updates not yet acknowledged, and a node taking the lease over (after
// the holder died and its lease expired) starts from the first of them.
// P{h}:wk counts the updates that left the stream undelivered ('dropped':
// the count bound at append, the age bound at claim) and those already
// reported to the receiver ('reported'), so the gap is reported once with
// the next delivery, whichever node makes it.
//
// Keys, all in the hunt's slot:
//
//	P{h}:w    stream  undelivered reliable updates, field u: the encoded update
//	P{h}:wk   hash    dropped, reported
//	P{h}:wl   string  node id of the lease holder, expiring

// webhookClaimLua: KEYS backlog, counters, lease; ARGV node, lease ms, ack
// id ("": none), gap reported, max entries, max age ms (0: none).
// Reply: {0} if another node holds the lease, else {1, gap, id, update,
// id, update, ...}.
var webhookClaimLua = redis.NewScript(luaNow + `
local o = redis.call('GET', KEYS[3])
if o and o ~= ARGV[1] then return {0} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
if ARGV[3] ~= '' then
  local ms, sq = string.match(ARGV[3], '^(%d+)-(%d+)$')
  if ms then
    redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. string.format('%d', tonumber(sq) + 1))
  end
end
if ARGV[4] ~= '0' then redis.call('HINCRBY', KEYS[2], 'reported', ARGV[4]) end
local age = tonumber(ARGV[6])
if age > 0 then
  local d = redis.call('XTRIM', KEYS[1], 'MINID', string.format('%d', tonumber(now()) - age))
  if d > 0 then redis.call('HINCRBY', KEYS[2], 'dropped', d) end
end
local w = redis.call('HMGET', KEYS[2], 'dropped', 'reported')
local r = {1, tonumber(w[1] or '0') - tonumber(w[2] or '0')}
local n = tonumber(ARGV[5])
if n > 0 then
  local t = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', n)
  for i = 1, #t do
    r[#r + 1] = t[i][1]
    r[#r + 1] = t[i][2][2]
  end
end
return r
`)

// webhookReleaseLua: KEYS lease; ARGV node. Deletes the lease if node
// holds it.
var webhookReleaseLua = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

var _ state.WebhookQueue = (*Engine)(nil)

// WebhookBacklog implements state.WebhookQueue: Config.WebhookBacklog.
func (e *Engine) WebhookBacklog() int { return e.wbacklog }

// WebhookClaim implements state.WebhookQueue in one round trip.
func (e *Engine) WebhookClaim(ctx context.Context, hunt, ack string, gapAck uint64, n int, lease, maxAge time.Duration) (state.WebhookBatch, error) {
	if err := e.check(); err != nil {
		return state.WebhookBatch{}, err
	}
	k := e.keysOf(hunt)
	v, err := webhookClaimLua.Run(ctx, e.rdb, k.webhook, e.node, lease.Milliseconds(), ack,
		strconv.FormatUint(gapAck, 10), n, maxAge.Milliseconds()).Result()
	if err != nil {
		return state.WebhookBatch{}, wrap(err)
	}
	r, ok := v.([]any)
	if !ok || len(r) < 1 {
		return state.WebhookBatch{}, fmt.Errorf("redisengine: bad webhook claim reply")
	}
	if held, _ := r[0].(int64); held != 1 {
		return state.WebhookBatch{}, nil
	}
	if len(r) < 2 || len(r)%2 != 0 {
		return state.WebhookBatch{}, fmt.Errorf("redisengine: bad webhook claim reply")
	}
	gap, _ := r[1].(int64)
	b := state.WebhookBatch{Held: true, Gap: uint64(max(gap, 0))}
	if len(r) > 2 {
		b.Entries = make([]state.WebhookEntry, 0, (len(r)-2)/2)
	}
	for i := 2; i < len(r); i += 2 {
		id, _ := r[i].(string)
		s, _ := r[i+1].(string)
		u, err := decodeUpdate(hunt, s)
		if err != nil {
			return state.WebhookBatch{}, err
		}
		b.Entries = append(b.Entries, state.WebhookEntry{ID: id, Update: u})
	}
	return b, nil
}

// WebhookRelease implements state.WebhookQueue.
func (e *Engine) WebhookRelease(ctx context.Context, hunt string) error {
	if err := webhookReleaseLua.Run(ctx, e.rdb, []string{e.keysOf(hunt).wl}, e.node).Err(); err != nil {
		return wrap(err)
	}
	return nil
}

// WebhookPending implements state.WebhookQueue: the hunt index, then one
// pipeline of XLEN and GET per hunt (go-redis splits it by shard on a
// cluster).
func (e *Engine) WebhookPending(ctx context.Context) ([]string, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ids, err := e.rdb.SMembers(ctx, e.prefix+"hunts").Result()
	if err != nil {
		return nil, wrap(err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	p := e.rdb.Pipeline()
	lens := make([]*redis.IntCmd, len(ids))
	holders := make([]*redis.StringCmd, len(ids))
	for i, id := range ids {
		k := e.keysOf(id)
		lens[i] = p.XLen(ctx, k.wq)
		holders[i] = p.Get(ctx, k.wl)
	}
	if _, err := p.Exec(ctx); err != nil && err != redis.Nil {
		return nil, wrap(err)
	}
	var out []string
	for i, id := range ids {
		if lens[i].Val() == 0 {
			continue
		}
		if h := holders[i].Val(); h == "" || h == e.node {
			out = append(out, id)
		}
	}
	return out, nil
}
