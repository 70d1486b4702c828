package redisengine

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subConns holds the engine's pub/sub connections. A hunt's updates are on
// a shard channel (SSUBSCRIBE, Redis 7), which on a Redis Cluster only the
// shard owning the hunt's slot carries. On a standalone Redis one
// connection carries every hunt. On a cluster there is one per hash slot
// with watched hunts: go-redis routes a pub/sub connection by the slot of
// its first channel and, when it reconnects (after a failover, to the new
// primary), resubscribes all its shard channels in one SSUBSCRIBE, which a
// cluster refuses across slots.
//
// One goroutine per connection (pump) reads it and hands what it reads to
// the engine's reader through events, in order; a hunt is on one
// connection at a time, so its updates keep their order.
type subConns struct {
	e      *Engine
	events chan subEvent

	mu     sync.Mutex
	conns  map[int]*subConn // by slot; 0 on a standalone Redis
	broken map[*subConn]struct{}
	closed bool
}

// subConn is one pub/sub connection and the hunts subscribed on it.
type subConn struct {
	ps    *redis.PubSub
	slot  int
	hunts map[string]struct{}
	// unsubs counts, per hunt, the SUNSUBSCRIBEs sent on ps whose
	// confirmation the reader has yet to see: a confirmation is the
	// engine's own until they are used up, whatever the watch did since.
	// Its own lock (taken after subConns.mu when both are), so that the
	// reader never waits on subConns.mu, which subscribe holds while it
	// dials a shard that may be down.
	umu    sync.Mutex
	unsubs map[string]int
}

// subEvent is a message or subscription confirmation read from c.
type subEvent struct {
	c   *subConn
	msg any
}

func newSubConns(e *Engine) *subConns {
	return &subConns{
		e: e, events: make(chan subEvent, 256),
		conns: make(map[int]*subConn), broken: make(map[*subConn]struct{}),
	}
}

// slotOf is the connection key of hunt: its Redis Cluster hash slot, or 0
// on a standalone Redis.
func (s *subConns) slotOf(hunt string) int {
	if s.e.crdb == nil {
		return 0
	}
	return keySlot(s.e.keysOf(hunt).ch)
}

// subscribe subscribes to hunt's channel ch on the connection of its slot,
// opening that connection if needed.
func (s *subConns) subscribe(ctx context.Context, hunt, ch string) error {
	slot := s.slotOf(hunt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return redis.ErrClosed
	}
	if c := s.conns[slot]; c != nil {
		c.hunts[hunt] = struct{}{}
		return c.ps.SSubscribe(ctx, ch)
	}
	var ps *redis.PubSub
	if s.e.crdb != nil {
		ps = s.e.crdb.SSubscribe(s.e.ctx)
	} else {
		ps = s.e.rdb.(*redis.Client).SSubscribe(s.e.ctx)
	}
	// The first SSUBSCRIBE dials, routed by ch's slot: the pump may only
	// start reading after it, or its read would dial a random node.
	if err := ps.SSubscribe(ctx, ch); err != nil {
		_ = ps.Close()
		return err
	}
	c := &subConn{ps: ps, slot: slot, hunts: map[string]struct{}{hunt: {}}, unsubs: make(map[string]int)}
	s.conns[slot] = c
	s.e.wg.Add(1)
	go s.pump(c)
	return nil
}

// unsubscribe drops hunt's subscription, and its connection with its last
// hunt.
func (s *subConns) unsubscribe(ctx context.Context, hunt, ch string) error {
	slot := s.slotOf(hunt)
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.conns[slot]
	if c == nil {
		return nil
	}
	delete(c.hunts, hunt)
	if len(c.hunts) > 0 {
		c.umu.Lock()
		c.unsubs[hunt]++
		c.umu.Unlock()
		err := c.ps.SUnsubscribe(ctx, ch)
		if err != nil {
			c.umu.Lock()
			c.unsubs[hunt]-- // not sent: no confirmation to expect
			c.umu.Unlock()
		}
		return err
	}
	delete(s.conns, slot)
	delete(s.broken, c)
	return c.ps.Close()
}

// dropped reports whether a SUNSUBSCRIBE confirmation of hunt read from c
// is Redis dropping a subscription that c still holds (its slot moved),
// rather than the confirmation of one the engine sent: a hunt unwatched and
// watched again before the reader got to the confirmation is subscribed on
// c again by then.
func (s *subConns) dropped(c *subConn, hunt string) bool {
	c.umu.Lock()
	if c.unsubs[hunt] > 0 {
		if c.unsubs[hunt]--; c.unsubs[hunt] == 0 {
			delete(c.unsubs, hunt)
		}
		c.umu.Unlock()
		return false
	}
	c.umu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := c.hunts[hunt]
	return ok && s.conns[c.slot] == c
}

// confirmed runs when an SSUBSCRIBE of hunt took effect on c: every
// SUNSUBSCRIBE sent on c before it has been confirmed by then, as a
// connection answers in order, or will never be (the connection broke
// before its answer and go-redis subscribed again), so none is left to
// expect.
func (s *subConns) confirmed(c *subConn, hunt string) {
	c.umu.Lock()
	delete(c.unsubs, hunt)
	c.umu.Unlock()
}

// markBroken records that Redis dropped a subscription of c that the
// engine did not drop (its slot moved to another node): c is replaced by
// the subscriber.
func (s *subConns) markBroken(c *subConn) {
	s.mu.Lock()
	s.broken[c] = struct{}{}
	s.mu.Unlock()
	s.e.poke()
}

// takeBroken closes the broken connections and returns their hunts, to be
// subscribed again on new connections.
func (s *subConns) takeBroken() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hunts []string
	for c := range s.broken {
		if s.conns[c.slot] == c {
			delete(s.conns, c.slot)
		}
		_ = c.ps.Close()
		for h := range c.hunts {
			hunts = append(hunts, h)
		}
	}
	clear(s.broken)
	return hunts
}

// close closes every connection; the pumps end.
func (s *subConns) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var err error
	for _, c := range s.conns {
		if cerr := c.ps.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	clear(s.conns)
	return err
}

// pump reads c until it is closed and hands what it reads to the reader.
func (s *subConns) pump(c *subConn) {
	e := s.e
	defer e.wg.Done()
	for {
		msg, err := c.ps.ReceiveTimeout(e.ctx, readTimeout)
		if err != nil {
			if e.ctx.Err() != nil || errors.Is(err, redis.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				// Quiet: ping, so that a dead connection fails and is
				// replaced (go-redis resubscribes on the new one).
				ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
				_ = c.ps.Ping(ctx)
				cancel()
				continue
			}
			e.log.Warn().Err(err).Int("slot", c.slot).Msg("redisengine: pub/sub receive")
			if e.crdb != nil {
				// The next dial goes to the slot's primary by the slot
				// map; after a failover it must be read again.
				e.crdb.ReloadState(e.ctx)
			}
			select {
			case <-e.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		select {
		case s.events <- subEvent{c: c, msg: msg}:
		case <-e.ctx.Done():
			return
		}
	}
}

// keySlot is the Redis Cluster hash slot of key: CRC16 (XMODEM) of its
// hash tag (the part between the first '{' and the next '}', if not
// empty) or of the whole key, modulo 16384.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & 16383
}
