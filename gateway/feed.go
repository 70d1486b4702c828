package gateway

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/state"
)

// The updates feed, GET /v1/hunts/{id}/updates?since=N&wait=D: the reliable
// updates after since, from the engine's history, and with wait a long poll
// that answers as soon as one exists. A long poll is an admin request on its
// own net/http goroutine waiting on a channel: the event loops never see it.
// The engine's sink only closes that channel (no engine call, no
// allocation unless somebody waits), so it stays as cheap as before for
// the loops, and the waiter reads the updates from the history itself.

// Limits of the updates feed.
const (
	// maxFeedWait is the longest wait a long poll may ask for; it stays
	// well under the admin server's 90 s write timeout.
	maxFeedWait = 60 * time.Second
	// defaultMaxLongPolls is Config.MaxLongPolls's default.
	defaultMaxLongPolls = 1024
)

// feed wakes the long polls of a hunt when a reliable update of it reaches
// the sink.
type feed struct {
	waiting atomic.Int64 // long polls in progress, node-wide
	mu      sync.Mutex
	hunts   map[string]*feedHunt
}

type feedHunt struct {
	n    int           // long polls registered on the hunt
	wake chan struct{} // closed, and replaced, by the next reliable update
}

// notify wakes the long polls of u's hunt. It runs in the engine's sink,
// possibly with engine locks held: one atomic load when nobody waits.
func (f *feed) notify(u *state.Update) {
	if f.waiting.Load() == 0 || !u.Kind.Reliable() {
		return
	}
	f.mu.Lock()
	if fh := f.hunts[u.Hunt]; fh != nil {
		close(fh.wake)
		fh.wake = make(chan struct{})
	}
	f.mu.Unlock()
}

// register adds a long poll of hunt; the first asks the engine to watch it,
// so that a cluster engine delivers its updates to this node.
func (g *Gateway) feedRegister(hunt string) {
	f := &g.feed
	f.mu.Lock()
	fh := f.hunts[hunt]
	if fh == nil {
		if f.hunts == nil {
			f.hunts = make(map[string]*feedHunt)
		}
		fh = &feedHunt{wake: make(chan struct{})}
		f.hunts[hunt] = fh
	}
	fh.n++
	first := fh.n == 1
	f.mu.Unlock()
	if first {
		// Watch calls nest in the engine, independently of the players'.
		g.engine.Watch(hunt)
	}
}

// feedWake returns the channel the next reliable update of hunt closes.
func (g *Gateway) feedWake(hunt string) <-chan struct{} {
	f := &g.feed
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hunts[hunt].wake
}

// feedUnregister is the reverse of feedRegister.
func (g *Gateway) feedUnregister(hunt string) {
	f := &g.feed
	f.mu.Lock()
	fh := f.hunts[hunt]
	fh.n--
	last := fh.n == 0
	if last {
		delete(f.hunts, hunt)
	}
	f.mu.Unlock()
	if last {
		g.engine.Unwatch(hunt)
	}
}

// writeReset answers 409 reset with the hunt's current status.
func writeReset(w http.ResponseWriter, st *state.Status) {
	b := []byte(`{"error":{"code":"reset","message":"since is not in the hunt's history: read the status (and the claims record) and start again from its seq"},"status":`)
	b = appendStatus(b, st)
	writeRaw(w, http.StatusConflict, append(b, '}'))
}

func (g *Gateway) getUpdates(w http.ResponseWriter, r *http.Request) {
	hunt := r.PathValue("id")
	q := r.URL.Query()
	var since uint64
	if s := q.Get("since"); s != "" {
		var err error
		if since, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, "bad_request", "since must be a non-negative integer")
			return
		}
	}
	var wait time.Duration
	if s := q.Get("wait"); s != "" {
		var err error
		if wait, err = time.ParseDuration(s); err != nil || wait < 0 || wait > maxFeedWait {
			writeError(w, http.StatusBadRequest, "bad_request", "wait must be a duration from 0s to "+maxFeedWait.String()+", such as 30s")
			return
		}
	}
	ctx := r.Context()
	read := func() (state.Status, []state.Update, bool) {
		st, err := g.engine.Status(ctx, hunt)
		if err != nil {
			writeEngineError(w, err)
			return st, nil, false
		}
		ups, ok, err := g.engine.History(ctx, hunt, st.Epoch, since)
		if err != nil {
			writeEngineError(w, err)
			return st, nil, false
		}
		if !ok {
			// Re-read: the history may have moved past since after the
			// status was read, which is the same answer with a newer
			// status, or the hunt was made again with a new epoch.
			if st2, err := g.engine.Status(ctx, hunt); err == nil {
				st = st2
			}
			writeReset(w, &st)
			return st, nil, false
		}
		return st, ups, true
	}
	st, ups, ok := read()
	if !ok {
		return
	}
	if len(ups) == 0 && wait > 0 && st.State != state.StateEnded {
		if n := g.feed.waiting.Add(1); n > int64(g.cfg.MaxLongPolls) {
			g.feed.waiting.Add(-1)
			g.m.feedRefused.Add(1)
			writeError(w, http.StatusServiceUnavailable, "too_many_polls",
				"too many long polls are waiting on this gateway (limit "+strconv.Itoa(g.cfg.MaxLongPolls)+"); retry later, or poll without wait")
			return
		}
		defer g.feed.waiting.Add(-1)
		g.feedRegister(hunt)
		defer g.feedUnregister(hunt)
		timer := time.NewTimer(wait)
		defer timer.Stop()
		for len(ups) == 0 {
			// Take the wake channel before reading, so that an update
			// appended after the read closes a channel already held.
			wake := g.feedWake(hunt)
			if st, ups, ok = read(); !ok {
				return
			}
			if len(ups) > 0 || st.State == state.StateEnded {
				break
			}
			select {
			case <-wake:
			case <-timer.C:
				writeFeed(w, &st, nil)
				return
			case <-ctx.Done():
				return
			case <-g.stopping:
				writeFeed(w, &st, nil)
				return
			}
		}
	}
	writeFeed(w, &st, ups)
}

// writeFeed answers {"hunt","epoch","seq","updates":[...]}, each update the
// object the players get as an update push.
func writeFeed(w http.ResponseWriter, st *state.Status, ups []state.Update) {
	seq := st.Seq
	if n := len(ups); n > 0 && ups[n-1].Seq > seq {
		seq = ups[n-1].Seq
	}
	b := make([]byte, 0, 128+160*len(ups))
	b = append(b, `{"hunt":`...)
	b = appendJSONString(b, st.Hunt)
	b = append(b, `,"epoch":`...)
	b = appendUint(b, st.Epoch)
	b = append(b, `,"seq":`...)
	b = appendUint(b, seq)
	b = append(b, `,"updates":[`...)
	for i := range ups {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendUpdate(b, &ups[i])
	}
	writeRaw(w, http.StatusOK, append(b, "]}"...))
}
