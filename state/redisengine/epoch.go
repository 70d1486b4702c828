package redisengine

import (
	"context"
	"math/rand/v2"
	"strconv"
)

// newEpoch returns a random epoch: not 0, and below 2^53, since epochs
// travel as JSON numbers, exact in JavaScript only up to 2^53.
func newEpoch() uint64 {
	for {
		if ep := rand.Uint64() & (1<<53 - 1); ep != 0 {
			return ep
		}
	}
}

// seen raises what this node has seen of a hunt to (epoch, seq) and
// reports whether (epoch, seq) is below it: the same epoch with a lower
// seq, which only a Redis that lost writes can show. mu held.
func (l *localHunt) see(epoch, seq uint64) (regressed bool) {
	switch {
	case epoch != l.seenEpoch:
		l.seenEpoch, l.seenSeq = epoch, seq
	case seq < l.seenSeq:
		return true
	default:
		l.seenSeq = seq
	}
	return false
}

// guardArgs are the last three arguments of the scripts that take a seq
// (luaGuard): what this node has seen of hunt, and a fresh epoch.
func (e *Engine) guardArgs(hunt string) (seenEpoch, seenSeq, fresh string) {
	var ep, seq uint64
	if l := e.localOf(hunt); l != nil {
		l.mu.Lock()
		ep, seq = l.seenEpoch, l.seenSeq
		l.mu.Unlock()
	}
	return strconv.FormatUint(ep, 10), strconv.FormatUint(seq, 10), strconv.FormatUint(newEpoch(), 10)
}

// regressed handles a hunt whose Redis state is behind what this node has
// seen: bumpLua gives it a fresh epoch (unless another node or a write did
// already), so no client resumes over seqs that Redis will hand out again
// with other content. It reports whether the hunt took a new epoch here.
//
// What this node has seen may be newer than a read that raced with it (a
// status answered just before a write whose update the reader applied
// first) without Redis having lost anything; bumpLua checks against Redis
// itself, atomically, so only a hunt truly behind is counted and logged.
func (e *Engine) regressed(hunt string, epoch, seq, seen uint64) bool {
	k := e.keysOf(hunt)
	ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
	defer cancel()
	rc, err := bumpLua.Run(ctx, e.rdb, []string{k.meta, k.hist, k.lb}, k.ch,
		strconv.FormatUint(epoch, 10), strconv.FormatUint(seen, 10), strconv.FormatUint(newEpoch(), 10)).Int64()
	if err != nil {
		if e.ctx.Err() == nil {
			e.log.Warn().Err(err).Str("hunt", hunt).Uint64("seq", seq).Uint64("seen", seen).
				Msg("redisengine: Redis may be behind what this node saw, new epoch not set; retried at the next check")
		}
		return false
	}
	if rc != 1 {
		e.log.Debug().Str("hunt", hunt).Uint64("seq", seq).Uint64("seen", seen).Int64("rc", rc).
			Msg("redisengine: a read older than what this node saw, but Redis is not behind")
		return false
	}
	e.regressions.Add(1)
	e.log.Warn().Str("hunt", hunt).Uint64("epoch", epoch).Uint64("seq", seq).Uint64("seen", seen).
		Msg("redisengine: Redis has older data than this node saw (restart from older persistence, or a failover that lost writes): new epoch")
	return true
}

// Regressions returns how many times this node found Redis behind what it
// had seen of a hunt and gave the hunt a new epoch.
func (e *Engine) Regressions() uint64 { return e.regressions.Load() }
