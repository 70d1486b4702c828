package gateway

import (
	"context"
	"testing"

	"github.com/huntgate/huntgate/state"
)

// playerGatedEngine is a blocking engine whose Dig waits for gate when one
// player digs; everyone else digs at once.
type playerGatedEngine struct {
	blockingEngine
	player  string
	entered chan struct{}
	gate    chan struct{}
}

func (e *playerGatedEngine) Dig(ctx context.Context, hunt, player string, x, y int) (state.DigResult, error) {
	if player == e.player {
		e.entered <- struct{}{}
		select {
		case <-e.gate:
		case <-ctx.Done():
			return state.DigResult{}, ctx.Err()
		}
	}
	return e.Memory.Dig(ctx, hunt, player, x, y)
}

// Pushes held for a player while its dig is at a blocking engine follow the
// delivery classes once released: dug first, then every reliable update in
// seq order, no leaderboard ahead of the reliable update it reflects, the
// older leaderboards replaced, and the latest one (reflecting the last
// claim, which came after the last event) delivered.
func TestHeldPushesKeepDeliveryClasses(t *testing.T) {
	const claims = 30
	eng := &playerGatedEngine{player: "alice", entered: make(chan struct{}, 1), gate: make(chan struct{})}
	tg := startGated(t, func(c *Config) { c.Rate = -1 }, eng)
	unblock := opener(t, eng.gate)
	tg.createHunt(t, fixedHunt("h", claims))
	alice, bob := tg.player(t, "alice"), tg.player(t, "bob")
	start := alice.join("h").num("seq")
	bob.join("h")
	alice.sendRaw(`{"op":"dig","hunt":"h","x":5,"y":5,"ref":"held"}`)
	await(t, eng.entered, "alice's dig never reached the engine")
	for i := 0; i < claims; i++ {
		bob.send(`{"op":"dig","hunt":"h","x":%d,"y":0}`, i)
		bob.until("dug")
		if i%10 == 0 {
			if _, err := tg.engine.Publish(context.Background(), "h", []byte(`{"i":1}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	last := start + claims + 3 // the claims and the three events
	if m := probe(t, tg, "alice", "h"); m.holds != 1 || m.held < claims {
		t.Fatalf("alice's membership while her dig is in flight: %+v", m)
	}
	unblock()
	if m := alice.expect("dug"); m.str("ref") != "held" {
		t.Fatalf("first after the release: %v", m)
	}
	seq, boardSeq, boards := start, 0.0, 0
	for seq < last || boardSeq < last {
		m := alice.expect("update")
		switch m.str("kind") {
		case "leaderboard":
			boards++
			if s := m.num("seq"); s > seq || s < boardSeq {
				t.Fatalf("leaderboard seq %v after reliable %v and leaderboard %v", s, seq, boardSeq)
			}
			boardSeq = m.num("seq")
		default:
			if s := m.num("seq"); s != seq+1 {
				t.Fatalf("%s seq %v after %v", m.str("kind"), s, seq)
			}
			seq = m.num("seq")
		}
	}
	// Released in one loop pass, each leaderboard is replaced by the next
	// one (after the claim between them): only the final one goes out.
	if boards != 1 {
		t.Fatalf("%d leaderboards for %d claims released at once, want only the latest", boards, claims)
	}
	alice.sendRaw(`{"op":"ping","ref":"after"}`)
	if m := alice.expect("pong"); m.str("ref") != "after" {
		t.Fatalf("after the release: %v", m)
	}
}

// Pushes held for a session are output waiting for its connection, with the
// connection's queue bounds: a session that keeps a dig in flight while more
// reliable updates than the bound arrive is closed 1008 "slow" instead of
// holding them all (a client keeping digs in flight back to back would
// otherwise hold every push of the hunt for as long as it likes). It
// resumes with since and loses nothing; the other players get every update.
func TestHeldPushesBounded(t *testing.T) {
	const bound, events = 64, 100
	eng := &playerGatedEngine{player: "alice", entered: make(chan struct{}, 1), gate: make(chan struct{})}
	tg := startGated(t, func(c *Config) { c.Rate = -1; c.QueueFrames = bound }, eng)
	opener(t, eng.gate)
	tg.createHunt(t, fixedHunt("h", 1))
	alice, bob := tg.player(t, "alice"), tg.player(t, "bob")
	j := alice.join("h")
	start, epoch := j.num("seq"), uint64(j.num("epoch"))
	bob.join("h")
	alice.sendRaw(`{"op":"dig","hunt":"h","x":5,"y":5,"ref":"held"}`)
	await(t, eng.entered, "alice's dig never reached the engine")
	for i := 0; i < events; i++ {
		if _, err := tg.engine.Publish(context.Background(), "h", []byte(`{"i":1}`)); err != nil {
			t.Fatal(err)
		}
	}
	if m := probe(t, tg, "alice", "h"); m.held > bound {
		t.Fatalf("%d pushes held for alice, bound %d", m.held, bound)
	}
	if ce := alice.expectClose(); ce.Code != 1008 || ce.Text != "slow" {
		t.Fatalf("alice closed with %v, want 1008 slow", ce)
	}
	for i := 1; i <= events; i++ {
		if m := bob.expect("update"); m.num("seq") != start+float64(i) {
			t.Fatalf("bob: %v, want seq %v", m, start+float64(i))
		}
	}
	if n := tg.node.Stats().SlowCloses; n != 1 {
		t.Fatalf("%d slow closes, want 1", n)
	}
	again := tg.player(t, "alice")
	again.send(`{"op":"join","hunt":"h","since":%d,"epoch":%d}`, uint64(start), epoch)
	if m := again.expect("joined"); m["reset"] != false || m.num("replayed") != events {
		t.Fatalf("resume: %v", m)
	}
	for i := 1; i <= events; i++ {
		if m := again.expect("update"); m.num("seq") != start+float64(i) {
			t.Fatalf("replay: %v, want seq %v", m, start+float64(i))
		}
	}
}
