package redisengine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Probing of Redis, for the node's readiness.
const (
	// probeEvery is how often Redis is pinged.
	probeEvery = 250 * time.Millisecond
	// probeTimeout bounds one ping. With probeFailures, a refused Redis is
	// seen within about 2 x probeEvery, one behind a link that drops
	// packets within about probeEvery + 2 x probeTimeout (1.75 s).
	probeTimeout = 750 * time.Millisecond
	// probeFailures is how many probes in a row must fail before the node
	// is unready. One late probe is what a CPU spike on a shared host
	// does; an unready node sends every join and dig to Redis instead of
	// its copy (JoinLocal, DigLocal refuse), which adds to the load that
	// made the probe late: in a 1,000,000-player run on 2 cores single
	// late probes flipped nodes to that path and their joins then timed
	// out on Redis by the hundred thousand.
	probeFailures = 2
)

var errNotProbed = errors.New("redisengine: not probed yet")

// Ready reports nil while Redis answered one of the last probeFailures
// probes, else why not: the gateway's /readyz follows it, so a load
// balancer stops sending players to a node whose engine cannot serve a
// join, within about 2 s at most (see probeTimeout), and sends them again as soon as a probe
// succeeds.
func (e *Engine) Ready() error {
	if e.closed.Load() {
		return errClosedReady
	}
	if p := e.health.Load(); p != nil {
		return *p
	}
	return nil
}

var errClosedReady = errors.New("redisengine: closed")

// prober pings Redis every probeEvery and records the outcome. It has a
// client of its own: the pings of a Redis that is down would otherwise fill
// the main pool's count of failed dials, after which go-redis refuses every
// call until its background dial succeeds, up to a second after Redis is
// back.
func (e *Engine) prober() {
	defer e.wg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	var run probeRun
	for {
		ctx, cancel := context.WithTimeout(e.ctx, probeTimeout)
		err := e.ping(ctx)
		cancel()
		if e.ctx.Err() != nil {
			return
		}
		if run.record(err, e.health.Load() != nil) {
			e.setHealth(err)
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probeRun counts the probes that failed in a row.
type probeRun struct{ failed int }

// record notes a probe's outcome and reports whether it is to become the
// node's health now: a success at once, a failure once probeFailures in a
// row have failed, or at once while the node is unready already (the
// reason then stays current).
func (r *probeRun) record(err error, unready bool) bool {
	if err == nil {
		r.failed = 0
		return true
	}
	r.failed++
	return r.failed >= probeFailures || unready
}

// ping pings Redis through the probe's client and, while the node is not
// ready, then through the main one. After a run of failed dials (calls made
// while Redis was away), the main client's pool refuses every call with the
// last dial error until a background dial of its own succeeds, up to a
// second after Redis is back: the node cannot serve meanwhile, so it stays
// unready. The main client is asked only once the probe's got through, so
// that no ping adds a failed dial to it while Redis is away (a refusing pool
// answers at once), and only on the way back, so that a ready node's probe
// never waits behind its own busy pool.
func (e *Engine) ping(ctx context.Context) error {
	if err := pingAll(ctx, e.probe); err != nil {
		return err
	}
	if e.health.Load() == nil {
		return nil
	}
	return pingAll(ctx, e.rdb)
}

// pingAll pings c: on a Redis Cluster every primary, as each serves its own
// share of the hunts.
func pingAll(ctx context.Context, c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Ping(ctx).Err()
		})
	}
	return c.Ping(ctx).Err()
}

// setHealth records a probe's outcome, logging the changes.
func (e *Engine) setHealth(err error) {
	if err == nil {
		if old := e.health.Swap(nil); old != nil {
			e.log.Info().Msg("redisengine: redis reachable again")
		}
		return
	}
	err = fmt.Errorf("redis unreachable: %w", err)
	if old := e.health.Swap(&err); old == nil {
		e.log.Warn().Err(err).Msg("redisengine: redis unreachable")
	}
}
