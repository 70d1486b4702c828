package load

import (
	"errors"
	"net/url"
	"runtime"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/huntgate/huntgate/bench/internal/wsc"
	"github.com/huntgate/huntgate/conn"
	"github.com/rs/zerolog"
)

func errUnknownScenario(s string) error { return errors.New("load: unknown scenario " + s) }

// defaultLoops shares the CPUs among the worker processes: more loop
// threads than CPUs only preempt one another, and every wake-up of a
// descheduled loop is a context switch taken from the server under test.
// Measured with 10,000 connections in two workers at 1,000,000 deliveries/s
// on 2 CPUs: one loop per worker gave one-way p99 217-222 ms, two loops per
// worker 293-328 ms.
func defaultLoops(workers int) int { return max(1, runtime.NumCPU()/max(1, workers)) }

// newClient builds the transport: conn's epoll loops unless asked otherwise.
func newClient(kind string, loops int, h wsc.Handler, log zerolog.Logger, t wsc.Timeouts) (wsc.Client, error) {
	switch kind {
	case "", wsc.KindConn:
		// The pacer, publisher and tick goroutines need a P beside the busy loops.
		conn.ReserveSpareP(loops)
		return wsc.NewConn(loops, h, log, 0, t)
	case wsc.KindGorilla:
		return wsc.NewGorilla(loops, h), nil
	}
	return nil, wsc.ErrKind
}

// tokenFunc returns how a player authenticates in the /ws query: a fresh
// HS256 token per player with the secret, or ?player= in dev mode.
func tokenFunc(secret string, dev bool) (func(player string) string, error) {
	if secret == "" {
		return func(player string) string { return "player=" + url.QueryEscape(player) }, nil
	}
	key := []byte(secret)
	return func(player string) string {
		t := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
			"sub": player,
			"exp": time.Now().Add(24 * time.Hour).Unix(),
		})
		s, err := t.SignedString(key)
		if err != nil {
			// HS256 with a non-empty key does not fail; fall back to dev form.
			return "player=" + url.QueryEscape(player)
		}
		return "token=" + s
	}, nil
}

func newScenario(name string) scenario {
	switch name {
	case Hold:
		return holdScenario{}
	case Echo:
		return &echoScenario{}
	case Fanout:
		return &fanoutScenario{}
	case Dig:
		return &gameScenario{mode: Dig}
	case Event:
		return &gameScenario{mode: Event}
	case Game:
		return &gameScenario{mode: Game}
	case Crowd:
		return &gameScenario{mode: Crowd}
	}
	return nil
}
