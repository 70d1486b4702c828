package redisengine

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/huntgate/huntgate/state"
)

// readTimeout is how long the reader waits for a message before it pings
// the pub/sub connection, which is how a silently dead one is found.
const readTimeout = 5 * time.Second

// Watch implements state.Engine. It never blocks on Redis: the SUBSCRIBE is
// sent by a goroutine of the engine, and the updates published between this
// call and the subscription taking effect are replayed from the history
// (Config.WatchReplay).
func (e *Engine) Watch(hunt string) {
	e.watchMu.Lock()
	w := e.watched[hunt]
	if w == nil {
		e.gen++
		w = &watchState{gen: e.gen, at: time.Now()}
		e.watched[hunt] = w
		e.dirty[hunt] = struct{}{}
		e.watchedLocal(hunt, w.gen)
	}
	w.n++
	e.watchMu.Unlock()
	e.poke()
}

// Unwatch implements state.Engine; an Unwatch without a Watch is ignored.
func (e *Engine) Unwatch(hunt string) {
	e.watchMu.Lock()
	if w := e.watched[hunt]; w != nil {
		w.n--
		if w.n <= 0 {
			delete(e.watched, hunt)
			e.dirty[hunt] = struct{}{}
			e.watchedLocal(hunt, 0)
		}
	}
	e.watchMu.Unlock()
	e.poke()
}

// Watched reports whether hunt is watched (more Watch than Unwatch calls).
func (e *Engine) Watched(hunt string) bool {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	return e.watched[hunt] != nil
}

func (e *Engine) poke() {
	select {
	case e.kick <- struct{}{}:
	default:
	}
}

// watchGen returns the generation of hunt's watch, 0 if it is not watched.
func (e *Engine) watchGen(hunt string) uint64 {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	if w := e.watched[hunt]; w != nil {
		return w.gen
	}
	return 0
}

// watchOf returns the generation of hunt's watch (0 if it is not watched)
// and when it began.
func (e *Engine) watchOf(hunt string) (gen uint64, at time.Time) {
	e.watchMu.Lock()
	defer e.watchMu.Unlock()
	if w := e.watched[hunt]; w != nil {
		return w.gen, w.at
	}
	return 0, time.Time{}
}

// subscriber makes the pub/sub subscriptions follow the watched set. It
// alone sends SUBSCRIBE and UNSUBSCRIBE, so they never wait on a caller.
func (e *Engine) subscriber() {
	defer e.wg.Done()
	// The watch generation each hunt is subscribed for: an Unwatch and a
	// Watch that meet here together leave the channel subscribed, but the
	// new watch still needs a confirmation, whose replay sets its baseline
	// (and the node's copy of the hunt), so it is subscribed again.
	subscribed := make(map[string]uint64)
	var retry <-chan time.Time
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.kick:
		case <-retry:
			retry = nil
		}
		for _, h := range e.subs.takeBroken() {
			// Redis dropped these (their slot moved): subscribe anew.
			delete(subscribed, h)
			e.watchMu.Lock()
			e.dirty[h] = struct{}{}
			e.watchMu.Unlock()
		}
		e.watchMu.Lock()
		var todo []string
		for h := range e.dirty {
			todo = append(todo, h)
		}
		clear(e.dirty)
		e.watchMu.Unlock()
		for _, h := range todo {
			gen := e.watchGen(h)
			want := gen != 0
			if subscribed[h] == gen {
				continue
			}
			k := e.keysOf(h)
			if want {
				k = e.keepKeys(h) // watched: the hunt has players here
			}
			ch := k.ch
			ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
			var err error
			if want {
				err = e.subs.subscribe(ctx, h, ch)
			} else {
				err = e.subs.unsubscribe(ctx, h, ch)
			}
			cancel()
			if err != nil {
				if e.ctx.Err() != nil {
					return
				}
				e.log.Warn().Err(err).Str("hunt", h).Bool("subscribe", want).Msg("redisengine: pub/sub")
				e.watchMu.Lock()
				e.dirty[h] = struct{}{}
				e.watchMu.Unlock()
				retry = time.After(100 * time.Millisecond)
				continue
			}
			if want {
				subscribed[h] = gen
			} else {
				delete(subscribed, h)
				// Cached only while watched: a node that ever watched
				// many hunts must not keep all their keys.
				e.keys.Delete(h)
			}
		}
	}
}

// track is what the reader knows of a watched hunt's stream: the epoch and
// seq of the last reliable update handed to the sink.
type track struct {
	gen   uint64
	epoch uint64
	seq   uint64
	// failed is the seq after which a fill last failed: the updates after
	// it that arrive live are delivered without asking the history again.
	failed uint64
	// fresh: nothing received yet and no baseline seq.
	fresh bool
	// pending: the replay of what was published since the watch began
	// (at) has yet to succeed.
	pending bool
	at      time.Time
}

// reader is the only goroutine that calls the sink, so the sink sees each
// hunt's updates in the order Redis published them, which is seq order. It
// takes what the pub/sub connections read (pubsub.go).
func (e *Engine) reader() {
	defer e.wg.Done()
	tracks := make(map[string]*track)
	for {
		var ev subEvent
		select {
		case <-e.ctx.Done():
			return
		case ev = <-e.subs.events:
		}
		switch m := ev.msg.(type) {
		case *redis.Subscription:
			hunt := e.huntOf(m.Channel)
			switch m.Kind {
			case "ssubscribe":
				e.subs.confirmed(ev.c, hunt)
				e.onSubscribed(tracks, hunt)
			case "sunsubscribe":
				if e.watchGen(hunt) == 0 {
					// Unwatched: its stream ends here (a later watch
					// starts a new track), so the reader keeps one track
					// per watched hunt, not one per hunt ever watched.
					delete(tracks, hunt)
				}
				if e.subs.dropped(ev.c, hunt) && e.watchGen(hunt) != 0 {
					// Not asked for: Redis drops the shard channels of
					// a slot its node no longer serves.
					e.log.Warn().Str("hunt", hunt).Msg("redisengine: shard channel dropped by Redis, subscribing again")
					e.subs.markBroken(ev.c)
				}
			}
		case *redis.Message:
			e.onMessage(tracks, m)
		}
		e.tracked.Store(int64(len(tracks)))
	}
}

func (e *Engine) deliver(u state.Update) {
	if e.apply(&u) {
		e.rebase(u.Hunt)
	}
	if sink := e.sink.Load(); sink != nil {
		(*sink)(u)
	}
}

// onSubscribed runs when a SUBSCRIBE took effect: the first for this watch
// of the hunt, or a resubscription after go-redis replaced a broken
// connection. The first replays the history from WatchReplay before Watch
// on (what was published since Watch, and harmlessly a little more: the
// gateway drops what a session already has); a resubscription fills what
// was published while the connection was down.
func (e *Engine) onSubscribed(tracks map[string]*track, hunt string) {
	gen, at := e.watchOf(hunt)
	if hunt == "" || gen == 0 {
		return
	}
	t := tracks[hunt]
	if t != nil && t.gen == gen {
		switch {
		case t.pending:
			e.tryWatchReplay(hunt, t)
		case !t.fresh:
			_ = e.fill(hunt, t) // on an error, the next update retries
		}
		return
	}
	t = &track{gen: gen, at: at}
	tracks[hunt] = t
	if e.replay < 0 {
		// No replay: the stream starts with the first update received,
		// whose seq is unknown until then; the node's copy of the hunt
		// starts from a baseline read now.
		t.fresh = true
		e.rebase(hunt)
		return
	}
	t.pending = true
	e.tryWatchReplay(hunt, t)
}

// tryWatchReplay is watchReplay where a failure is retried on the next
// update or confirmation of the hunt.
func (e *Engine) tryWatchReplay(hunt string, t *track) {
	if err := e.watchReplay(hunt, t); err != nil && !errors.Is(err, state.ErrUnknownHunt) {
		e.log.Warn().Err(err).Str("hunt", hunt).Msg("redisengine: watch replay")
	}
}

// watchReplay hands the sink what was published since the watch t began
// and sets t's baseline. The window reaches back to Watch, however long the
// subscription or this reader took since: the caller's snapshot (Join) came
// after Watch and the gateway takes the stream from it on, so anything
// published since Watch that were left out would be lost for good (its
// queued copy is dropped by seq). Elapsed time is measured on this node's
// monotonic clock and applied to Redis's, which skew does not affect;
// WatchReplay is the margin for the round trips.
func (e *Engine) watchReplay(hunt string, t *track) error {
	window := time.Since(t.at) + e.replay
	ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
	h, err := e.history(ctx, hunt, -1, window)
	cancel()
	if err != nil {
		return err
	}
	// The updates published after the subscription took effect and before
	// the history was read are both in the history and queued on the
	// connection: delivered now, their queued copies are dropped by seq.
	t.pending = false
	t.epoch, t.seq = h.epoch, h.seq
	e.replayed(h)
	e.setBaseline(hunt, t.gen, h)
	return nil
}

// replayed hands the sink h.ups, updates from the history, and then the
// leaderboard as of h.seq if they hold a claim: the leaderboard updates
// that went with those claims are not in the history, and the newest of
// them must not be lost. After an ended one, the ended carries the top.
func (e *Engine) replayed(h *histReply) {
	ups := h.ups
	claims := false
	for _, u := range ups {
		e.deliver(u)
		claims = claims || u.Kind == state.KindClaimed
	}
	if claims && ups[len(ups)-1].Kind != state.KindEnded {
		e.deliver(h.board)
	}
}

// fill hands the sink the reliable updates after t.seq that the pub/sub
// connection missed. If the history no longer holds them the gap stays:
// the next update shows it to clients, who resume or reset (PROTOCOL.md).
// If the history could not be read (Redis still loading after a restart, a
// timeout), the updates may well be held: the error is returned and
// nothing is marked, so that the next update that shows the gap tries
// again; the caller counts the gap if it then passes over it.
func (e *Engine) fill(hunt string, t *track) error {
	if t.failed == t.seq && t.seq != 0 {
		return nil // the same gap, already found unfillable
	}
	ctx, cancel := context.WithTimeout(e.ctx, readTimeout)
	h, ok, err := e.resume(ctx, hunt, t.epoch, t.seq)
	cancel()
	gone := errors.Is(err, state.ErrUnknownHunt) // Redis lost the hunt, history and all
	if err != nil && !gone {
		e.log.Warn().Err(err).Str("hunt", hunt).Uint64("seq", t.seq).Msg("redisengine: missed updates not read from history")
		return err
	}
	if !ok {
		t.failed = t.seq
		e.gaps.Add(1)
		e.log.Warn().Err(err).Str("hunt", hunt).Uint64("seq", t.seq).Msg("redisengine: missed updates not in history")
		return nil
	}
	if len(h.ups) == 0 {
		return nil
	}
	t.seq = h.ups[len(h.ups)-1].Seq
	e.filled.Add(uint64(len(h.ups)))
	e.replayed(h)
	return nil
}

func (e *Engine) onMessage(tracks map[string]*track, m *redis.Message) {
	hunt := e.huntOf(m.Channel)
	gen := e.watchGen(hunt)
	if gen == 0 {
		delete(tracks, hunt) // in flight when the hunt was unwatched
		return
	}
	u, err := decodeUpdate(hunt, m.Payload)
	if err != nil {
		e.log.Warn().Err(err).Str("hunt", hunt).Msg("redisengine: bad message")
		return
	}
	t := tracks[hunt]
	if (t == nil || t.gen != gen) && e.replay >= 0 {
		// A new watch whose first update came before its subscription's
		// confirmation (the channel stayed subscribed on a shared
		// connection while the hunt was unwatched and watched again): the
		// confirmation will find this track, so the watch's replay, which
		// also sets the node's copy, is made here.
		_, at := e.watchOf(hunt)
		t = &track{gen: gen, at: at, pending: true}
		tracks[hunt] = t
	}
	noBaseline := (t == nil || t.gen != gen) && e.replay < 0
	if t != nil && t.gen == gen && t.pending {
		// The replay at the subscription failed, or is made here: what
		// was published since Watch may still be in the history.
		if err := e.watchReplay(hunt, t); err != nil {
			e.gaps.Add(1)
			e.log.Warn().Err(err).Str("hunt", hunt).Msg("redisengine: watch replay")
			noBaseline = true
		}
	}
	if t == nil || t.fresh || t.gen != gen || t.epoch != u.Epoch {
		// A new watch whose subscription confirmation was not seen, or the
		// hunt was re-created: the stream starts here.
		t = &track{gen: gen, epoch: u.Epoch, seq: u.Seq}
		tracks[hunt] = t
		if noBaseline {
			// No replay set the node's copy of this watch: read its
			// baseline, or the copy would wait for one forever.
			e.rebase(hunt)
		}
		e.deliver(u)
		return
	}
	if u.Kind.Reliable() {
		if u.Seq <= t.seq {
			return // already delivered from the history
		}
		if u.Seq > t.seq+1 {
			if e.fill(hunt, t) != nil {
				e.gaps.Add(1) // passed over below
			}
			if u.Seq <= t.seq {
				return
			}
		}
		t.seq = u.Seq
		e.deliver(u)
		return
	}
	if u.Seq < t.seq {
		return // a newer leaderboard went out with the history fill
	}
	if u.Seq > t.seq {
		if e.fill(hunt, t) != nil {
			e.gaps.Add(1) // passed over below
		}
		t.seq = max(t.seq, u.Seq) // a gap that could not be filled stays behind
	}
	e.deliver(u)
}
