package load

import (
	"bytes"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"
)

// refusingServer speaks enough of the game protocol for joins: player p0's
// join is refused with unknown_hunt, p1's always with overloaded, everyone
// else's twice with overloaded and then admitted. It records when each
// player's joins arrived.
type refusingServer struct {
	mu       sync.Mutex
	attempts map[string][]time.Time
}

func (s *refusingServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/ws" {
		// The admin calls of the event scenario: hunt exists, publish ok.
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"seq":1}`))
		return
	}
	player := r.URL.Query().Get("player")
	c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		if !bytes.Contains(msg, []byte(`"op":"join"`)) {
			continue
		}
		s.mu.Lock()
		s.attempts[player] = append(s.attempts[player], time.Now())
		n := len(s.attempts[player])
		s.mu.Unlock()
		var reply string
		switch {
		case player == "p0":
			reply = `{"op":"error","code":"unknown_hunt","message":"no such hunt"}`
		case player == "p1" || n <= 2:
			reply = `{"op":"error","code":"overloaded","message":"try again"}`
		default:
			reply = `{"op":"joined","hunt":"load-0","epoch":7,"seq":0,"reset":true,"status":{"hunt":"load-0","epoch":7,"seq":0,"players":1}}`
		}
		if err := c.WriteMessage(websocket.TextMessage, []byte(reply)); err != nil {
			return
		}
	}
}

// Every refused join is an error of the join op; overloaded is retried with
// a growing jittered backoff until admitted or out of tries; the report
// accounts for each outcome.
func TestJoinRefusalsCountedAndRetried(t *testing.T) {
	srv := &refusingServer{attempts: map[string][]time.Time{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })

	cfg := Config{Scenario: Event, URL: "ws://" + ln.Addr().String(), Admin: "http://" + ln.Addr().String(), Dev: true,
		Players: 20, Rates: []float64{1}, Duration: time.Second, Drain: 100 * time.Millisecond, Loops: 2, JoinTries: 3}
	rep, err := Run(cfg, Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	j, join := rep.Facts.Joins, rep.Ops["join"]
	// p0: 1 refusal, given up; p1: 3 overloaded, 2 retries, given up;
	// p2..p19: 2 overloaded each, retried, then admitted.
	if j.Admitted != 18 || join.Count != 18 || join.Errors != 1+3+2*18 {
		t.Fatalf("admitted %d, join op %+v: want 18 admitted, 40 errors", j.Admitted, join)
	}
	if j.Refused["overloaded"] != 3+2*18 || j.Refused["unknown_hunt"] != 1 || len(j.Refused) != 2 {
		t.Fatalf("refused %v", j.Refused)
	}
	if j.Retries != 2+2*18 || j.GaveUp != 2 || j.Unanswered != 0 {
		t.Fatalf("retries %d gave up %d unanswered %d", j.Retries, j.GaveUp, j.Unanswered)
	}
	if j.PerS <= 0 || j.PeakPerS < 1 {
		t.Fatalf("admitted per second %.1f, peak %.1f", j.PerS, j.PeakPerS)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "joins: 18 admitted") || !strings.Contains(table.String(), "40 refused") {
		t.Fatalf("table lacks the join line:\n%s", table.String())
	}
	// The retries waited: at least 100 ms before the first, 200 ms before
	// the second (the backoff doubles).
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for p, at := range srv.attempts {
		for i := 1; i < len(at); i++ {
			if gap, min := at[i].Sub(at[i-1]), 100*time.Millisecond<<(i-1); gap < min {
				t.Errorf("%s: attempt %d came %v after the previous, want >= %v", p, i+1, gap, min)
			}
		}
	}
	if len(srv.attempts["p1"]) != 3 || len(srv.attempts["p0"]) != 1 || len(srv.attempts["p5"]) != 3 {
		t.Fatalf("attempts p0 %d p1 %d p5 %d", len(srv.attempts["p0"]), len(srv.attempts["p1"]), len(srv.attempts["p5"]))
	}
}

func TestJoinBackoffBounds(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	seen := map[time.Duration]bool{}
	for i := 0; i < 1000; i++ {
		for tries, lo := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond} {
			d := joinBackoff(rng, tries)
			if d < lo || d >= 5*lo {
				t.Fatalf("try %d: backoff %v outside [%v, %v)", tries, d, lo, 5*lo)
			}
			seen[d] = true
		}
		if d := joinBackoff(rng, 30); d > 8*time.Second || d < 3200*time.Millisecond {
			t.Fatalf("try 30: backoff %v, want 3.2-8 s", d)
		}
	}
	if len(seen) < 1000 {
		t.Fatalf("only %d distinct backoffs in 3000: not jittered", len(seen))
	}
}
