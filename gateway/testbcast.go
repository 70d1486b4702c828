package gateway

import (
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
)

// testBroadcastMax bounds the body of POST /v1/test/broadcast.
const testBroadcastMax = 64 << 10

// testBroadcast (POST /v1/test/broadcast, with --test-endpoints and the API
// key) sends the request body as one text message to every player
// connection on /ws of this node, and answers {"sent":N} once every loop has
// queued it. It is the floor of a hunt event's fan-out, measured on the same
// held sockets: the same Prepared frame walked to every connection of each
// loop, without the engine (no Redis, no pubsub, no member lists, no seq
// bookkeeping). huntload's crowd scenario compares the two in one run.
func (g *Gateway) testBroadcast(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, testBroadcastMax+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "reading the body: "+err.Error())
		return
	}
	if len(body) > testBroadcastMax {
		// As the admin API's other bodies over their bound.
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "the body must be 1-65536 bytes of UTF-8 text")
		return
	}
	if len(body) == 0 || !utf8.Valid(body) {
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be 1-65536 bytes of UTF-8 text")
		return
	}
	p := framing.Prepare(framing.OpText, body, g.cfg.Deflate)
	var sent atomic.Int64
	var wg sync.WaitGroup
	wg.Add(len(g.loops))
	g.node.PostAll(func(l *conn.Loop) {
		defer wg.Done()
		ls := g.loops[l.ID()]
		ls.beginWalk()
		var n int64
		ls.sessions.each(func(s *session) {
			if s.open && !s.closed && s.ep == epWS && l.Send(s.h, p) == nil {
				n++
			}
		})
		ls.endWalk()
		g.m.deliveries.Add(n)
		sent.Add(n)
	})
	// A closed node drops posted functions: never wait past the client or
	// a bound.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-r.Context().Done():
		return
	case <-time.After(10 * time.Second):
		writeError(w, http.StatusServiceUnavailable, "unavailable", "the loops did not take the broadcast within 10 s")
		return
	}
	writeRaw(w, http.StatusOK, []byte(`{"sent":`+strconv.FormatInt(sent.Load(), 10)+`}`))
}
