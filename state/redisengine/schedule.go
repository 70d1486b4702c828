package redisengine

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// Scheduled hunts. A hunt created with starts_at is 'scheduled' in its meta
// until Redis's clock reaches it; ends_at ends it. Every node runs the same
// ticker: dueLua lists, from the schedule index Pschedule (a sorted set of
// hunt ids scored by their next transition, in ms of Redis's clock), the
// hunts due by Redis's clock, and scheduleLua makes a hunt's due transitions
// in one atomic step in the hunt's slot. The script is idempotent: of the
// nodes that run it for the same transition the first makes it and the
// others find nothing due, so the switch happens once, on one clock,
// whichever nodes are alive. Pschedule stands outside every hunt's slot and
// is touched only by single-key commands, so Redis Cluster routes them.

// DefaultScheduleTick is how often each node looks for due transitions.
const DefaultScheduleTick = 200 * time.Millisecond

// rcNotStarted is digLua's reply for a scheduled hunt before its start.
const rcNotStarted = -6

// dueLua: KEYS schedule index. The ids of the hunts due by Redis's clock
// (at most 256 a call; the rest on the next tick).
var dueLua = redis.NewScript(luaNow + `
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now(), 'LIMIT', 0, 256)
`)

// scheduleLua: KEYS meta, history, leaderboard, webhook backlog and
// counters; ARGV history max, channel, webhook backlog max, then guard's
// three (it takes seqs, like dig and publish). Makes the due transitions by Redis's clock (scheduled -> open with a
// started update, open -> ended with an ended update) and returns the
// hunt's next transition in ms (0: none ahead), or -1 for an unknown hunt.
var scheduleLua = redis.NewScript(luaTop + luaGuard + `
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
guard(KEYS[1], KEYS[2])
local m = redis.call('HMGET', KEYS[1], 'state', 'epoch', 'starts', 'ends')
local at = now()
local t = tonumber(at)
local st = m[1]
local starts, ends = tonumber(m[3] or '0'), tonumber(m[4] or '0')
local max = tonumber(ARGV[1])
if st == 'scheduled' and t >= starts then
  st = 'open'
  redis.call('HSET', KEYS[1], 'state', st)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  record(KEYS[2], ARGV[2], max, 'y|' .. string.format('%d', seq) .. '|' .. m[2] .. '|' .. at .. '|')
end
if st == 'open' and ends > 0 and t >= ends then
  st = 'ended'
  redis.call('HSET', KEYS[1], 'state', st)
  local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
  record(KEYS[2], ARGV[2], max, 'x|' .. string.format('%d', seq) .. '|' .. m[2] .. '|' .. at .. '|' .. top(KEYS[3]))
end
if st == 'scheduled' then return starts end
if st == 'open' and ends > 0 then return ends end
return 0
`)

// scheduleArgs returns the create script's state and schedule arguments
// for s, and the first transition's time in ms (0: none).
func scheduleArgs(s state.Spec) (st string, starts, ends, first int64) {
	st = state.StateOpen
	if s.StartsAt != nil {
		st, starts = state.StateScheduled, max(s.StartsAt.UnixMilli(), 1)
		first = starts
	}
	if s.EndsAt != nil {
		ends = max(s.EndsAt.UnixMilli(), 1)
		if first == 0 {
			first = ends
		}
	}
	return st, starts, ends, first
}

// transition runs scheduleLua for hunt and keeps its entry of the schedule
// index: rescored with the next transition, or removed when none is left.
func (e *Engine) transition(ctx context.Context, hunt string) error {
	k := e.keysOf(hunt)
	se, ss, fresh := e.guardArgs(hunt)
	v, err := e.run(ctx, scheduleLua, k.schedule, e.hmax, k.chArg, e.wmax, se, ss, fresh)
	if err != nil {
		return wrap(err)
	}
	next, _ := v.(int64)
	idx := e.prefix + "schedule"
	if next > 0 {
		// XX: a concurrent node that found nothing left and removed the
		// entry must not see it come back.
		err = e.rdb.ZAddXX(ctx, idx, redis.Z{Score: float64(next), Member: hunt}).Err()
	} else {
		err = e.rdb.ZRem(ctx, idx, hunt).Err()
	}
	if err != nil {
		return wrap(err)
	}
	return nil
}

// Tick makes the transitions due now by Redis's clock, as the engine's
// ticker does every Config.ScheduleTick.
func (e *Engine) Tick(ctx context.Context) error {
	if err := e.check(); err != nil {
		return err
	}
	// Through the main client, like the transitions: the scheduler skips
	// its ticks while the node is unready, so they add no failed dials to
	// its pool while Redis is away (readiness returns only once that pool
	// serves, health.go). The probe's single connection, with its 750 ms
	// timeouts, is the readiness pings' alone: a slow tick there timed out
	// (TestScheduleConcurrentTicks on a loaded machine) and would make a
	// ping wait behind it.
	ids, err := dueLua.Run(ctx, e.rdb, []string{e.prefix + "schedule"}).StringSlice()
	if err != nil {
		return wrap(err)
	}
	for _, id := range ids {
		if err := e.transition(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

// scheduler runs Tick every e.tick until Close.
func (e *Engine) scheduler() {
	defer e.wg.Done()
	t := time.NewTicker(e.tick)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
			if e.health.Load() != nil {
				// Redis did not answer the readiness probe: a tick would
				// only add failed dials, which make go-redis's pool fail
				// fast for a while after Redis is back.
				continue
			}
			ctx, cancel := context.WithTimeout(e.ctx, 5*time.Second)
			if err := e.Tick(ctx); err != nil && e.ctx.Err() == nil {
				e.log.Warn().Err(err).Msg("redisengine: schedule tick")
			}
			cancel()
		}
	}
}
