package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/huntgate/huntgate/internal/redistest"
	"github.com/huntgate/huntgate/state/redisengine"
)

// TestEngineTimeoutStalledRedis: with Redis stopped (SIGSTOP: connections
// stay open, nothing answers), a join of a hunt the node does not serve yet
// and a dig are answered with error internal within --engine-timeout,
// rather than after the Redis client's read timeout and retries (10-15 s),
// and pings of other players are answered meanwhile. Once Redis continues,
// the same join succeeds.
func TestEngineTimeoutStalledRedis(t *testing.T) {
	const timeout = 300 * time.Millisecond
	srv := redistest.Standalone(t, redistest.Options{})
	g, e := startEngineNode(t, redisengine.Config{URL: srv.URL()}, func(c *Config) { c.EngineTimeout = timeout })
	for _, id := range []string{"isle", "cove"} {
		if _, err := e.Create(context.Background(), fixedHunt(id, 3)); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := g.player(t, "alice"), g.player(t, "bob")
	alice.join("isle")
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Resume() })

	start := time.Now()
	alice.send(`{"op":"join","hunt":"cove","ref":"j"}`)
	alice.send(`{"op":"dig","hunt":"isle","x":2,"y":2,"ref":"d"}`)
	// Pings go through the loop, never a worker: answered while both
	// requests wait on the stopped Redis.
	bob.send(`{"op":"ping","ref":"p"}`)
	if m := bob.expect("pong"); m.str("ref") != "p" {
		t.Fatalf("pong %v", m)
	}
	got := map[string]string{}
	for len(got) < 2 {
		// 4 s: well past the timeout, well short of the Redis client's
		// own read timeout with retries, which the old code waited for.
		m, err := alice.tryRead(4 * time.Second)
		if err != nil {
			t.Fatalf("after %v, with %v: %v", time.Since(start), got, err)
		}
		if m.str("op") == "error" {
			got[m.str("ref")] = m.str("code")
		}
	}
	if got["j"] != "internal" || got["d"] != "internal" {
		t.Fatalf("answers %v, want internal for both", got)
	}
	t.Logf("both refused after %v (engine timeout %v)", time.Since(start), timeout)
	bob.send(`{"op":"ping","ref":"p2"}`)
	bob.expect("pong")

	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a join once Redis continues", func() bool {
		alice.send(`{"op":"join","hunt":"cove","ref":"again"}`)
		for {
			m := alice.read()
			if m.str("ref") == "again" {
				return m.str("op") == "joined"
			}
		}
	})
}
