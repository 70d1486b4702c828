package redisengine

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// Script calls that write a hunt's updates (Dig, Publish, End and the
// scheduled transitions) are coalesced: the calls waiting when a pipeline
// slot frees go to Redis as one pipeline, one write and one read on each
// side for the lot instead of one of each per call. A call that finds a
// slot free goes at once, alone, so a quiet node adds no wait; batches form
// only while batchSlots pipelines are in flight, which is when calls would
// otherwise queue for connections. On a Redis Cluster go-redis splits the
// pipeline by the node that owns each key's slot and sends the parts in
// parallel, following MOVED and ASK per command.
//
// go-redis's own AutoPipeline does the same but is marked experimental, and
// the engine needs NOSCRIPT handled per script (one EVAL reloads it), which
// a plain pipeline of EVALSHA leaves to us.
const (
	// maxBatch bounds the calls of one pipeline: a larger one only delays
	// the first answers of the batch behind the Lua of the others.
	maxBatch = 128
	// batchSlots is how many pipelines may be in flight at once.
	batchSlots = 4
	// batchQueue is how many calls may wait for a slot before callers block
	// on the handoff (the gateway's own queue bounds them upstream).
	batchQueue = 4096
)

// scriptCall is one script call handed to the batcher, and its answer.
type scriptCall struct {
	ctx  context.Context
	s    *redis.Script
	keys []string
	args []any
	v    any
	err  error
	done chan struct{} // closed once v and err are set
}

// batched runs s through the batcher and waits for its answer, its own
// context's end, or the engine's close, whichever comes first. A call whose
// context ended before its batch left is not sent.
func (e *Engine) batched(ctx context.Context, s *redis.Script, keys []string, args []any) (any, error) {
	c := &scriptCall{ctx: ctx, s: s, keys: keys, args: args, done: make(chan struct{})}
	e.queued.Add(1) // before the handoff: send counts it out
	select {
	case e.calls <- c:
	case <-ctx.Done():
		e.queued.Add(-1)
		return nil, ctx.Err()
	case <-e.ctx.Done():
		e.queued.Add(-1)
		return nil, redis.ErrClosed
	}
	select {
	case <-c.done:
		return c.v, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-e.ctx.Done():
		return nil, redis.ErrClosed
	}
}

// batcher takes the first waiting call, then a pipeline slot (calls pile
// up meanwhile when every slot is busy), then every other call waiting at
// that moment (up to maxBatch), and sends them.
func (e *Engine) batcher() {
	defer e.wg.Done()
	for {
		var batch []*scriptCall
		select {
		case c := <-e.calls:
			batch = append(make([]*scriptCall, 0, 8), c)
		case <-e.ctx.Done():
			return
		}
		select {
		case e.slots <- struct{}{}:
		case <-e.ctx.Done():
			return
		}
	more:
		for len(batch) < maxBatch {
			select {
			case c := <-e.calls:
				batch = append(batch, c)
			default:
				break more
			}
		}
		e.wg.Add(1) // the batcher's own count is held: Close waits for this too
		go e.send(batch)
	}
}

// send runs one batch as a pipeline and hands each caller its own reply or
// error; it frees its slot when done.
func (e *Engine) send(batch []*scriptCall) {
	defer e.wg.Done()
	defer func() { <-e.slots }()
	e.queued.Add(-int64(len(batch)))
	live := batch[:0]
	var latest time.Time
	bounded := true
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.err = err // its caller has gone: nothing sent
			close(c.done)
			continue
		}
		live = append(live, c)
		if d, ok := c.ctx.Deadline(); !ok {
			bounded = false
		} else if d.After(latest) {
			latest = d
		}
	}
	if len(live) == 0 {
		return
	}
	// The pipeline lives as long as its most patient caller; each caller
	// stops waiting at its own deadline.
	ctx, cancel := e.ctx, context.CancelFunc(func() {})
	if bounded {
		ctx, cancel = context.WithDeadline(e.ctx, latest)
	}
	defer cancel()
	e.batches.Add(1)
	p := e.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(live))
	for i, c := range live {
		cmds[i] = c.s.EvalSha(ctx, p, c.keys, c.args...)
	}
	_, _ = p.Exec(ctx) // each command carries its own error
	for i, c := range live {
		c.v, c.err = cmds[i].Result()
		if isNoScript(c.err) {
			// Redis lost its script cache (restart, failover, SCRIPT
			// FLUSH): Run falls back to EVAL, which loads it again.
			c.v, c.err = c.s.Run(c.ctx, e.rdb, c.keys, c.args...).Result()
		}
		if c.err != nil && e.ctx.Err() != nil {
			// Close ended the pipeline: the caller gets the closed engine,
			// as it would had its wait seen Close first.
			c.err = redis.ErrClosed
		}
		close(c.done)
	}
}

// Batches returns how many pipelines of script calls the engine sent.
func (e *Engine) Batches() uint64 { return e.batches.Load() }
