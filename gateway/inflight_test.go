package gateway

import (
	"context"
	"testing"

	"github.com/huntgate/huntgate/state"
)

// TestDigAcrossLeaveAndRejoin leaves and joins a hunt again while a dig made
// under the first membership is at a blocking engine. The dig's answer must
// not end a hold of the new membership: a hold count below zero would stop
// pushes from being held for later digs, so their claimed push would overtake
// their dug.
func TestDigAcrossLeaveAndRejoin(t *testing.T) {
	eng := &gatedEngine{entered: make(chan struct{}, 1), gate: make(chan struct{})}
	tg := startGated(t, nil, eng)
	unblock := opener(t, eng.gate)
	tg.createHunt(t, fixedHunt("h", 10))
	alice := tg.player(t, "alice")
	alice.join("h")
	alice.sendRaw(`{"op":"dig","hunt":"h","x":5,"y":5,"ref":"d1"}`) // a miss: no push
	await(t, eng.entered, "the dig did not reach the engine")
	alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l"}`)
	if m := alice.expect("left"); m.str("ref") != "l" {
		t.Fatalf("left %v", m)
	}
	alice.sendRaw(`{"op":"join","hunt":"h","ref":"j"}`)
	if m := alice.expect("joined"); m.str("ref") != "j" {
		t.Fatalf("joined %v", m)
	}
	unblock()
	if m := alice.expect("dug"); m.str("ref") != "d1" || m["found"] != false {
		t.Fatalf("dug %v", m)
	}
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true}) {
		t.Fatalf("after the old dig's answer: %+v, want no hold", m)
	}
	alice.sendRaw(`{"op":"dig","hunt":"h","x":1,"y":0,"ref":"d2"}`)
	if m := alice.expect("dug"); m.str("ref") != "d2" || m["found"] != true {
		t.Fatalf("dug %v", m)
	}
	if m := alice.expect("update"); m.str("kind") != "claimed" || m.str("player") != "alice" {
		t.Fatalf("after dug %v", m)
	}
}

// leaveSignalEngine is a joinGatedEngine that signals every engine leave of
// alice on left, once it is made.
type leaveSignalEngine struct {
	*joinGatedEngine
	left chan struct{}
}

func (e *leaveSignalEngine) Leave(ctx context.Context, hunt, player string) error {
	err := e.joinGatedEngine.Leave(ctx, hunt, player)
	if player == "alice" {
		e.left <- struct{}{}
	}
	return err
}

// TestRejoinWhileJoining joins, leaves and joins again while both joins are
// at a blocking engine. The first join's answer must not be taken for the
// second membership's: it is answered not_joined and makes its own engine
// leave, and the second join ends the pending state it started, once. So
// after a last leave alice is counted out of the engine and the node exactly
// as often as she was counted in, and the hunt stays watched for bob.
func TestRejoinWhileJoining(t *testing.T) {
	e := &leaveSignalEngine{
		joinGatedEngine: &joinGatedEngine{block: make(chan struct{}), entered: make(chan struct{}, 1),
			gate: make(chan struct{}), lateLeave: make(chan struct{}, 1)},
		left: make(chan struct{}, 8),
	}
	tg := startGated(t, nil, e)
	unblock := opener(t, e.gate)
	tg.createHunt(t, fixedHunt("h", 10))
	bob := tg.player(t, "bob")
	bob.join("h")
	info := tg.hunts.getString("h")
	close(e.block)
	alice := tg.player(t, "alice")
	alice.sendRaw(`{"op":"join","hunt":"h","ref":"j1"}`)
	await(t, e.entered, "no first join at the engine")
	alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l1"}`)
	if m := alice.expect("left"); m.str("ref") != "l1" {
		t.Fatalf("left %v", m)
	}
	alice.sendRaw(`{"op":"join","hunt":"h","ref":"j2"}`)
	await(t, e.entered, "no second join at the engine")
	unblock()

	// The two joins may finish in either order.
	got := map[string]msg{}
	for range 2 {
		m := alice.read()
		got[m.str("ref")] = m
	}
	if m := got["j1"]; m.str("op") != "error" || m.str("code") != "not_joined" {
		t.Fatalf("first join answered %v, want not_joined", m)
	}
	if m := got["j2"]; m.str("op") != "joined" {
		t.Fatalf("second join answered %v, want joined", m)
	}
	await(t, e.left, "no engine leave for the overtaken join")
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true}) {
		t.Fatalf("after both joins: %+v, want joined with no hold", m)
	}

	alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l2"}`)
	if m := alice.expect("left"); m.str("ref") != "l2" {
		t.Fatalf("left %v", m)
	}
	await(t, e.left, "no engine leave for the second membership")
	waitFor(t, "alice counted out of the node", func() bool { return info.players.Load() == 1 })
	st, err := tg.engine.Status(context.Background(), "h")
	if err != nil || st.Players != 1 {
		t.Fatalf("engine counts %d players (%v), want bob only", st.Players, err)
	}
	if code, _ := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, `{"n":1}`); code != 200 {
		t.Fatalf("publish: %d", code)
	}
	if m := bob.expect("update"); m.str("kind") != "event" {
		t.Fatalf("bob got %v", m)
	}
}

// statusGatedEngine is a blocking engine whose Status waits for gate while
// block is closed, announcing each such call on entered: the first join of a
// hunt on a node asks Status before the hunt gets its node id.
type statusGatedEngine struct {
	blockingEngine
	block   chan struct{}
	entered chan struct{}
	gate    chan struct{}
}

func (e *statusGatedEngine) Status(ctx context.Context, hunt string) (state.Status, error) {
	select {
	case <-e.block:
		e.entered <- struct{}{}
		<-e.gate
	default:
	}
	return e.Memory.Status(ctx, hunt)
}

// TestFirstJoinPipelined sends a dig or a leave right behind the first join
// of a hunt on the node, while that join is still being checked at a blocking
// engine. They must see the join, as they do behind a join of a hunt the node
// knows: the dig digs (its dug before the claimed push), and the leave leaves,
// so the join ends answered not_joined and alice is not counted in the hunt.
func TestFirstJoinPipelined(t *testing.T) {
	for _, how := range []string{"dig", "leave", "close"} {
		t.Run(how, func(t *testing.T) {
			e := &statusGatedEngine{block: make(chan struct{}), entered: make(chan struct{}, 8), gate: make(chan struct{})}
			tg := startGated(t, nil, e)
			unblock := opener(t, e.gate)
			tg.createHunt(t, fixedHunt("h", 10))
			close(e.block)
			alice := tg.player(t, "alice")
			alice.sendRaw(`{"op":"join","hunt":"h","ref":"j"}`)
			await(t, e.entered, "the join did not reach the engine")
			// The pong says that the loop has handled the request before the
			// join goes on.
			got := map[string]bool{}
			switch how {
			case "dig":
				alice.sendRaw(`{"op":"dig","hunt":"h","x":0,"y":0,"ref":"d"}`)
				alice.sendRaw(`{"op":"ping","ref":"p"}`)
				// The dig goes to a worker at once and may be answered before
				// the ping is read: its dug can come before the pong.
				for m := alice.read(); m.str("op") != "pong"; m = alice.read() {
					if m.str("op") != "dug" || m.str("ref") != "d" || m["found"] != true || got["dug"] {
						t.Fatalf("got %v before the pong", m)
					}
					got["dug"] = true
				}
			case "leave":
				alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l"}`)
				alice.sendRaw(`{"op":"ping","ref":"p"}`)
				if m := alice.expect("left"); m.str("ref") != "l" {
					t.Fatalf("left %v", m)
				}
				alice.expect("pong")
			case "close":
				alice.c.Close()
				waitFor(t, "alice's session closed", func() bool { return tg.m.conns.Load() == 0 })
			}
			unblock()
			switch how {
			case "dig":
				// The claim is either in the joined status or pushed after dug.
				for !got["joined"] || !got["dug"] {
					m := alice.read()
					switch {
					case m.str("op") == "joined" && m.str("ref") == "j":
					case m.str("op") == "dug" && m.str("ref") == "d" && m["found"] == true:
					case m.str("op") == "update" && got["dug"]:
					default:
						t.Fatalf("got %v after %v", m, got)
					}
					got[m.str("op")] = true
				}
			case "leave":
				if m := alice.expect("error"); m.str("ref") != "j" || m.str("code") != "not_joined" {
					t.Fatalf("join answered %v", m)
				}
				if m := probe(t, tg, "alice", "h"); m.joined {
					t.Fatalf("alice still joined: %+v", m)
				}
			}
			// Bob's join comes after alice's is settled: the engine counts
			// alice in only if she is still joined.
			bob := tg.player(t, "bob")
			j := bob.join("h")
			want := 1.0
			if how == "dig" {
				want = 2
			}
			if n := j["status"].(map[string]any)["players"]; n != want {
				t.Fatalf("players %v, want %v", n, want)
			}
		})
	}
}
