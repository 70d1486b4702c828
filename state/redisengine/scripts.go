package redisengine

import "github.com/redis/go-redis/v9"

// Script replies that are errors of the hunt rather than of Redis.
const (
	rcUnknown = -1
	rcEnded   = -2
	rcOutGrid = -3
	rcExists  = -4
)

// luaNow asks for effects replication (needed on Redis before 7 to write
// after TIME; a no-op since) and defines now(): Redis's clock in ms, as a
// %d string.
const luaNow = `
if redis.replicate_commands then redis.replicate_commands() end
local function now()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
`

// luaTop is luaNow and defines record() and top(lb): the best
// state.TopSize players as "p:s,p:s,...".
// record(hist, ch, max, u) appends the reliable update u to the history
// (trimmed to max) and publishes it; with webhooks on (the argument before
// guard's three, wmax, positive) it also appends u to the hunt's webhook
// backlog, the last two KEYS (stream, then its counters), bounded to wmax
// entries: the oldest dropped beyond that are counted in the counters'
// 'dropped' (webhook.go). Only scripts with guard's arguments call it.
// Members are a 12-hex-digit tick followed by the player id and scores are
// negated points, so ZRANGE (ascending score, then ascending member) is the
// state package's order: higher score first, then who reached it first.
// Scores are formatted with %d: a Lua number handed to redis.call or joined
// with .. goes through %.14g and would lose digits above 10^14.
const luaTop = luaNow + `
local function top(lb)
  local r = redis.call('ZRANGE', lb, 0, 9, 'WITHSCORES')
  local parts = {}
  for i = 1, #r, 2 do
    parts[#parts + 1] = string.sub(r[i], 13) .. ':' .. string.format('%d', -tonumber(r[i + 1]))
  end
  return table.concat(parts, ',')
end
local function record(hist, ch, max, u)
  redis.call('RPUSH', hist, u)
  redis.call('LTRIM', hist, -max, -1)
  redis.call('SPUBLISH', ch, u)
  local wmax = tonumber(ARGV[#ARGV - 3])
  if wmax > 0 then
    local wq, wk = KEYS[#KEYS - 1], KEYS[#KEYS]
    if redis.call('XLEN', wq) >= wmax then
      redis.call('HINCRBY', wk, 'dropped', redis.call('XTRIM', wq, 'MAXLEN', wmax - 1))
    end
    redis.call('XADD', wq, '*', 'u', u)
  end
end
`

// luaRanked defines ranked(r, lb, from, to): appends to r the leaderboard
// entries of 0-based ranks from..to as player, score pairs (the tick prefix
// cut off, the score un-negated and formatted with %d).
const luaRanked = `
local function ranked(r, lb, from, to)
  local t = redis.call('ZRANGE', lb, from, to, 'WITHSCORES')
  for i = 1, #t, 2 do
    r[#r + 1] = string.sub(t[i], 13)
    r[#r + 1] = string.format('%d', -tonumber(t[i + 1]))
  end
  return r
end
`

// luaStatus is luaRanked and defines status(meta, lb, nodes, live):
// epoch, seq, state, treasures left, players summed over the nodes whose
// entry in live (node id scored by the expiry of its count, Redis clock)
// has not expired, starts and ends (ms, 0: none), then the top as player,
// score pairs; and alive(). Counts
// and their expiries are keys of the hunt, so the scripts stay in the
// hunt's slot (Redis Cluster). It needs luaNow before it.
const luaStatus = luaRanked + `
local function status(meta, lb, nodes, live)
  local m = redis.call('HMGET', meta, 'epoch', 'seq', 'state', 'left')
  local players = 0
  local ids = redis.call('ZRANGEBYSCORE', live, '(' .. now(), '+inf')
  if #ids > 0 then
    local nc = redis.call('HMGET', nodes, unpack(ids))
    for i = 1, #nc do players = players + tonumber(nc[i] or '0') end
  end
  local s = redis.call('HMGET', meta, 'starts', 'ends')
  return ranked({m[1], m[2], m[3], m[4], players, s[1] or '0', s[2] or '0'}, lb, 0, 9)
end
-- alive renews node's entry in live for ttl ms and drops the counts of
-- nodes whose entry expired (crashed nodes), so both stay as small as the
-- set of nodes serving the hunt.
local function alive(nodes, live, node, ttl)
  local ms = tonumber(now())
  local dead = redis.call('ZRANGEBYSCORE', live, '-inf', string.format('%d', ms))
  if #dead > 0 then
    redis.call('HDEL', nodes, unpack(dead))
    redis.call('ZREM', live, unpack(dead))
  end
  redis.call('ZADD', live, string.format('%d', ms + tonumber(ttl)), node)
end
`

// luaGuard defines guard(meta, hist), run first by every script that takes
// a seq (dig, publish, end, bump). Its last three ARGV are the epoch and the
// highest seq the calling node has seen of the hunt (seq 0: none) and a
// fresh epoch. If the hunt still has the seen epoch but a lower seq, Redis
// lost writes (restarted from older data, or a failover to a replica that
// had not got them): the seqs after its seq were served with other content,
// so the hunt takes the fresh epoch before anything reuses them, and its
// history, which clients can no longer trust, is dropped. Returns true if
// it did.
const luaGuard = `
local function guard(meta, hist)
  local n = #ARGV
  local seen = tonumber(ARGV[n - 1])
  if seen == 0 then return false end
  local m = redis.call('HMGET', meta, 'epoch', 'seq')
  if m[1] ~= ARGV[n - 2] or tonumber(m[2]) >= seen then return false end
  redis.call('HSET', meta, 'epoch', ARGV[n])
  redis.call('DEL', hist)
  return true
end
`

// createLua: KEYS meta, treasures, staged treasures; ARGV id, width,
// height, epoch, treasure count, state (open|scheduled), starts_at ms,
// ends_at ms (0: none). The treasures were written to the staged
// key beforehand; the rename makes the hunt appear whole or not at all.
// The hunt index is written before, by its own command, as it lives in
// another slot (see Engine.Create).
var createLua = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return -4
end
if tonumber(ARGV[5]) > 0 then
  redis.call('RENAME', KEYS[3], KEYS[2])
  redis.call('PERSIST', KEYS[2])
end
redis.call('HSET', KEYS[1], 'state', ARGV[6], 'w', ARGV[2], 'h', ARGV[3], 'epoch', ARGV[4],
  'seq', 0, 'left', ARGV[5], 'count', ARGV[5], 'tick', 0, 'starts', ARGV[7], 'ends', ARGV[8])
return 1
`)

// digLua: KEYS meta, treasures, leaderboard, player->member, history,
// claims, webhook backlog and counters; ARGV player, x, y, history max,
// channel, webhook backlog max (0: off), then guard's three.
// Reply: 0 for a miss, a negative rc, or {treasure, points, score, rank, seq}.
var digLua = redis.NewScript(luaTop + luaGuard + `
guard(KEYS[1], KEYS[5])
local m = redis.call('HMGET', KEYS[1], 'state', 'w', 'h', 'epoch')
if not m[1] then return -1 end
if m[1] == 'ended' then return -2 end
if m[1] ~= 'open' then return -6 end
local x, y = tonumber(ARGV[2]), tonumber(ARGV[3])
if x < 0 or y < 0 or x >= tonumber(m[2]) or y >= tonumber(m[3]) then return -3 end
local cell = ARGV[2] .. ',' .. ARGV[3]
local tv = redis.call('HGET', KEYS[2], cell)
if not tv then return 0 end
redis.call('HDEL', KEYS[2], cell)
local sep = string.find(tv, '|', 1, true)
local tid = string.sub(tv, 1, sep - 1)
local pts = tonumber(string.sub(tv, sep + 1))
local left = redis.call('HINCRBY', KEYS[1], 'left', -1)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local player = ARGV[1]
local old = redis.call('HGET', KEYS[4], player)
local member = old
local score = pts
if old then
  score = pts - tonumber(redis.call('ZSCORE', KEYS[3], old))
end
if (not old) or pts ~= 0 then
  local tick = redis.call('HINCRBY', KEYS[1], 'tick', 1)
  member = string.format('%012x', tick) .. player
  if old then redis.call('ZREM', KEYS[3], old) end
  redis.call('ZADD', KEYS[3], string.format('%d', -score), member)
  redis.call('HSET', KEYS[4], player, member)
end
local rank = redis.call('ZRANK', KEYS[3], member) + 1
local at = now()
local max = tonumber(ARGV[4])
local tp = top(KEYS[3])
local seqs = string.format('%d', seq)
local head = '|' .. seqs .. '|' .. m[4] .. '|' .. at .. '|'
record(KEYS[5], ARGV[5], max, 'c' .. head .. tid .. '|' .. player .. '|' .. string.format('%d', pts))
redis.call('RPUSH', KEYS[6], seqs .. '|' .. at .. '|' .. ARGV[2] .. '|' .. ARGV[3] .. '|' .. tid .. '|' .. player .. '|' .. string.format('%d', pts))
redis.call('SPUBLISH', ARGV[5], 'l' .. head .. tp)
if left == 0 then
  redis.call('HSET', KEYS[1], 'state', 'ended')
  local seq2 = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  record(KEYS[5], ARGV[5], max, 'x|' .. string.format('%d', seq2) .. '|' .. m[4] .. '|' .. at .. '|' .. tp)
end
return {tid, pts, score, rank, seq}
`)

// publishLua: KEYS meta, history, webhook backlog and counters; ARGV
// data, history max, channel, webhook backlog max, then guard's three. Reply: a negative rc or the event's seq.
var publishLua = redis.NewScript(luaTop + luaGuard + `
guard(KEYS[1], KEYS[2])
local m = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not m[1] then return -1 end
if m[1] == 'ended' then return -2 end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
record(KEYS[2], ARGV[3], tonumber(ARGV[2]),
  'e|' .. string.format('%d', seq) .. '|' .. m[2] .. '|' .. now() .. '|' .. ARGV[1])
return seq
`)

// endLua: KEYS meta, history, leaderboard, nodes, live, webhook backlog
// and counters; ARGV history max, channel, webhook backlog max, then
// guard's three. Reply: a negative rc or the status.
var endLua = redis.NewScript(luaTop + luaStatus + luaGuard + `
guard(KEYS[1], KEYS[2])
local m = redis.call('HMGET', KEYS[1], 'state', 'epoch')
if not m[1] then return -1 end
if m[1] == 'ended' then return -2 end
redis.call('HSET', KEYS[1], 'state', 'ended')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
record(KEYS[2], ARGV[2], tonumber(ARGV[1]),
  'x|' .. string.format('%d', seq) .. '|' .. m[2] .. '|' .. now() .. '|' .. top(KEYS[3]))
return status(KEYS[1], KEYS[3], KEYS[4], KEYS[5])
`)

// bumpLua: KEYS meta, history, leaderboard; ARGV channel, then guard's
// three. Runs guard and, if the hunt took the fresh epoch, publishes its
// leaderboard under it, so that every watching node and its players learn
// the new epoch at once. Reply: 1 if it did, 0 if not, -1 unknown hunt.
var bumpLua = redis.NewScript(luaTop + luaGuard + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if not guard(KEYS[1], KEYS[2]) then return 0 end
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
redis.call('SPUBLISH', ARGV[1], 'l|' .. m[2] .. '|' .. m[1] .. '|' .. now() .. '|' .. top(KEYS[3]))
return 1
`)

// statusLua: KEYS meta, leaderboard, nodes, live.
var statusLua = redis.NewScript(luaNow + luaStatus + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
return status(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
`)

// countLua: KEYS meta, leaderboard, nodes, live; ARGV node id, count,
// count TTL ms. Sets this node's player count of the hunt (removed at 0):
// the absolute count, so a write lost or repeated does not skew it, and a
// Redis that lost its data gets it back on the next write. The count
// counts until TTL after this write (the flusher writes it again before).
// Reply: status.
var countLua = redis.NewScript(luaNow + luaStatus + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[3], ARGV[1])
  redis.call('ZREM', KEYS[4], ARGV[1])
else
  alive(KEYS[3], KEYS[4], ARGV[1], ARGV[3])
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
end
return status(KEYS[1], KEYS[2], KEYS[3], KEYS[4])
`)

// historyLua: KEYS meta, history, leaderboard; ARGV since (-1: the entries
// stamped in the last ARGV[2] ms), window ms.
// Reply: {1, epoch, seq, now_ms, top, state, left, starts, ends,
// entries...} with the entries of seq > since, or the same with 0 first and
// no entries when some of them are no longer held, or -1; top is the
// leaderboard as of seq, state and left the hunt's state and treasures
// left, starts and ends its schedule (ms, 0: none). The list holds contiguous
// seqs ending at the hunt's seq (every reliable update is appended,
// trimming drops only the oldest), so the index of a seq is arithmetic;
// its stamps come from one clock in append order, so the start of a window
// is found by binary search.
var historyLua = redis.NewScript(luaTop + `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq', 'state', 'left', 'starts', 'ends')
if not m[1] then return -1 end
local seq = tonumber(m[2])
local since = tonumber(ARGV[1])
local r = {1, m[1], m[2], now(), top(KEYS[3]), m[3], m[4], m[5] or '0', m[6] or '0'}
if since < 0 then
  local cut = tonumber(r[4]) - tonumber(ARGV[2])
  local lo, hi = 0, redis.call('LLEN', KEYS[2])
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('LINDEX', KEYS[2], mid)
    if tonumber(string.match(e, '^[^|]*|[^|]*|[^|]*|(%d+)')) < cut then lo = mid + 1 else hi = mid end
  end
  local t = redis.call('LRANGE', KEYS[2], lo, -1)
  for i = 1, #t do r[#r + 1] = t[i] end
  return r
end
if since >= seq then return r end
local n = redis.call('LLEN', KEYS[2])
local first = seq - n + 1
if since + 1 < first then
  r[1] = 0
  return r
end
local t = redis.call('LRANGE', KEYS[2], since + 1 - first, -1)
for i = 1, #t do r[#r + 1] = t[i] end
return r
`)

// beatLua: KEYS registry; ARGV node id, TTL ms. Scores the node's registry
// entry with its expiry, by Redis's clock, so nodes with skewed clocks
// agree. Expired entries are pruned here, so the registry stays as small as
// the set of live nodes; their ids are returned, for the caller to prune
// what else those nodes left.
var beatLua = redis.NewScript(luaNow + `
local ms = tonumber(now())
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%d', ms + ttl), ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', ms))
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', ms))
end
return expired
`)

// nodesLua: KEYS registry. The ids whose heartbeat has not expired.
var nodesLua = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now(), '+inf')
`)
