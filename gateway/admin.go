package gateway

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"strconv"
	"unicode/utf8"

	"github.com/huntgate/huntgate/state"
)

// adminHandler serves the game backend and ops API (PROTOCOL.md). It runs on
// net/http goroutines and talks to the engine directly: engines are safe for
// concurrent use, and admin traffic is not the hot path.
func (g *Gateway) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/hunts", g.keyed(g.createHunt))
	mux.HandleFunc("GET /v1/hunts", g.listHunts)
	mux.HandleFunc("GET /v1/hunts/{id}", g.getHunt)
	mux.HandleFunc("POST /v1/hunts/{id}/events", g.keyed(g.publishEvent))
	mux.HandleFunc("DELETE /v1/hunts/{id}", g.keyed(g.endHunt))
	mux.HandleFunc("GET /v1/hunts/{id}/leaderboard", g.getLeaderboard)
	mux.HandleFunc("GET /v1/hunts/{id}/players/{player}", g.getPlayerRank)
	mux.HandleFunc("GET /v1/hunts/{id}/claims", g.getClaims)
	mux.HandleFunc("GET /v1/hunts/{id}/updates", g.getUpdates)
	mux.HandleFunc("GET /v1/stats", g.stats)
	mux.Handle("GET /metrics", promhttp.HandlerFor(g.m.reg, promhttp.HandlerOpts{ErrorLog: promLogger{g}}))
	dashboard(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeRaw(w, http.StatusOK, []byte(`{"ok":true}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := g.notReady(); why != "" {
			b := append([]byte(`{"ready":false,"reason":`), appendJSONString(nil, why)...)
			writeRaw(w, http.StatusServiceUnavailable, append(b, '}'))
			return
		}
		writeRaw(w, http.StatusOK, []byte(`{"ready":true}`))
	})
	if g.cfg.TestEndpoints {
		mux.HandleFunc("POST /v1/test/broadcast", g.keyed(g.testBroadcast))
	}
	if g.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	// No catch-all pattern: it would match every method and hide the mux's
	// 405s behind 404s. Misses are answered here instead, in the JSON error
	// shape that clients parse everywhere else.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		miss := missWriter{h: http.Header{}}
		h.ServeHTTP(&miss, r)
		if miss.code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", miss.h.Get("Allow"))
			writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed; see the Allow header")
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint")
	})
}

// missWriter catches the status and headers of the mux's own 404 or 405
// answer so that it can be rewritten as a JSON error.
type missWriter struct {
	h    http.Header
	code int
}

func (m *missWriter) Header() http.Header         { return m.h }
func (m *missWriter) Write(b []byte) (int, error) { return len(b), nil }
func (m *missWriter) WriteHeader(code int)        { m.code = code }

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	writeRaw(w, status, b)
}

// writeError answers {"error":{"code":..,"message":..}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	b := []byte(`{"error":{"code":`)
	b = appendJSONString(b, code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, msg)
	b = append(b, "}}"...)
	writeRaw(w, status, b)
}

// keyed requires the API key (X-API-Key or Authorization: Bearer).
func (g *Gateway) keyed(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("X-API-Key")
		if key == "" {
			if t, ok := bearer([]byte(r.Header.Get("Authorization"))); ok {
				key = string(t)
			}
		}
		if g.cfg.APIKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(g.cfg.APIKey)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="huntgate-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "a valid API key is required")
			return
		}
		next(w, r)
	}
}

// writeEngineError maps an engine error to an HTTP answer.
func writeEngineError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, state.ErrUnknownHunt):
		writeError(w, http.StatusNotFound, "unknown_hunt", "no such hunt")
	case errors.Is(err, state.ErrExists):
		writeError(w, http.StatusConflict, "exists", "a hunt with this id exists")
	case errors.Is(err, state.ErrEnded):
		writeError(w, http.StatusConflict, "ended", "the hunt has ended")
	case errors.Is(err, state.ErrNotStarted):
		writeError(w, http.StatusConflict, "not_started", "the hunt has not started yet")
	case errors.Is(err, state.ErrNotRanked):
		writeError(w, http.StatusNotFound, "not_ranked", "the player has no points in this hunt")
	case errors.Is(err, state.ErrBadSpec):
		writeError(w, http.StatusBadRequest, "bad_request", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// maxSpecBytes bounds a hunt spec body (a fixed treasure list can be long).
// A variable only so that tests can lower it.
var maxSpecBytes int64 = 64 << 20

func (g *Gateway) createHunt(w http.ResponseWriter, r *http.Request) {
	var spec state.Spec
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxSpecBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(&spec)
	if err == nil {
		// One spec per request: anything after it is a malformed body, not
		// something to ignore.
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the spec")
		}
	}
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeError(w, http.StatusRequestEntityTooLarge, "too_large", "hunt spec too large")
			return
		}
		writeError(w, http.StatusBadRequest, "bad_request", "hunt spec: "+err.Error())
		return
	}
	st, err := g.engine.Create(r.Context(), spec)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	g.log.Info().Str("hunt", st.Hunt).Int("width", spec.Width).Int("height", spec.Height).Int("treasures", st.TreasuresLeft).Msg("gateway: hunt created")
	w.Header().Set("Location", "/v1/hunts/"+st.Hunt)
	writeRaw(w, http.StatusCreated, appendStatus(nil, &st))
}

func (g *Gateway) listHunts(w http.ResponseWriter, r *http.Request) {
	names, err := g.engine.Hunts(r.Context())
	if err != nil {
		writeEngineError(w, err)
		return
	}
	if names == nil {
		names = []string{}
	}
	writeJSON(w, http.StatusOK, map[string][]string{"hunts": names})
}

func (g *Gateway) getHunt(w http.ResponseWriter, r *http.Request) {
	st, err := g.engine.Status(r.Context(), r.PathValue("id"))
	if err != nil {
		writeEngineError(w, err)
		return
	}
	writeRaw(w, http.StatusOK, appendStatus(nil, &st))
}

func (g *Gateway) publishEvent(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(g.cfg.MaxEventBytes)+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", "cannot read body")
		return
	}
	if len(body) > g.cfg.MaxEventBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "too_large", "event over "+strconv.Itoa(g.cfg.MaxEventBytes)+" bytes")
		return
	}
	// json.Valid lets invalid UTF-8 through inside strings; pushed as is in
	// a text frame, it would make every player's client fail the connection.
	if !json.Valid(body) || !utf8.Valid(body) { // also refuses an empty body
		writeError(w, http.StatusBadRequest, "bad_request", "the body must be one JSON value in UTF-8")
		return
	}
	seq, err := g.engine.Publish(r.Context(), r.PathValue("id"), body)
	if err != nil {
		writeEngineError(w, err)
		return
	}
	if g.wh != nil {
		g.wh.wrote(r.PathValue("id"))
	}
	b := append([]byte(`{"seq":`), strconv.FormatUint(seq, 10)...)
	writeRaw(w, http.StatusOK, append(b, '}'))
}

func (g *Gateway) endHunt(w http.ResponseWriter, r *http.Request) {
	st, err := g.engine.End(r.Context(), r.PathValue("id"))
	if err != nil {
		writeEngineError(w, err)
		return
	}
	if g.wh != nil {
		g.wh.wrote(st.Hunt)
	}
	g.log.Info().Str("hunt", st.Hunt).Msg("gateway: hunt ended")
	writeRaw(w, http.StatusOK, appendStatus(nil, &st))
}

func (g *Gateway) stats(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, g.Stats(r.Context()))
}

// promLogger passes promhttp's errors (a collector that failed) to the
// gateway's log.
type promLogger struct{ g *Gateway }

func (p promLogger) Println(v ...any) { p.g.log.Warn().Msg("gateway: metrics: " + fmt.Sprint(v...)) }
