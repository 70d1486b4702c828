package redisengine

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// run runs a script that writes a hunt's updates. With Config.WaitReplicas
// it is followed by WAIT on the same connection (a pipeline to the
// primary that owns the hunt), so the answer comes once replicas hold the
// write or the wait timed out (counted in WaitShort). Without it the call
// goes through the batcher (batch.go), in one pipeline with the calls
// waiting beside it.
func (e *Engine) run(ctx context.Context, s *redis.Script, keys []string, args ...any) (any, error) {
	if e.waitN <= 0 {
		return e.batched(ctx, s, keys, args)
	}
	var node redis.Cmdable = e.rdb
	if e.crdb != nil {
		c, err := e.crdb.MasterForKey(ctx, keys[0])
		if err != nil {
			return nil, err
		}
		node = c
	}
	for try := 0; ; try++ {
		p := node.Pipeline()
		v := s.EvalSha(ctx, p, keys, args...)
		w := redis.NewIntCmd(ctx, "wait", e.waitN, e.waitT.Milliseconds())
		_ = p.Process(ctx, w)
		_, _ = p.Exec(ctx)
		if err := v.Err(); err != nil {
			if try == 0 && isNoScript(err) {
				if err := s.Load(ctx, node).Err(); err != nil {
					return nil, err
				}
				continue
			}
			if e.crdb != nil && isRedirect(err) {
				// The slot moved (failover, resharding): the next call
				// finds the new owner.
				e.crdb.ReloadState(ctx)
			}
			return nil, err
		}
		if n, err := w.Result(); err != nil || n < int64(e.waitN) {
			e.waitShort.Add(1)
		}
		return v.Result()
	}
}

// WaitShort returns how many writes were answered before Config.WaitReplicas
// replicas acknowledged them (the WAIT timed out or failed).
func (e *Engine) WaitShort() uint64 { return e.waitShort.Load() }

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func isRedirect(err error) bool {
	if err == nil {
		return false
	}
	m := err.Error()
	return strings.HasPrefix(m, "MOVED ") || strings.HasPrefix(m, "ASK ") || strings.HasPrefix(m, "CLUSTERDOWN")
}
