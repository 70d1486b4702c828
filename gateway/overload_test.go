package gateway

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/state"
)

// gatedEngine is a blocking engine whose Dig waits until gate is closed, so
// that a test can hold every worker and fill the work queue at will. Each
// Dig that starts waiting is announced on entered.
type gatedEngine struct {
	blockingEngine
	entered chan struct{}
	gate    chan struct{}
}

func (e *gatedEngine) Dig(ctx context.Context, hunt, player string, x, y int) (state.DigResult, error) {
	select {
	case e.entered <- struct{}{}:
	default:
	}
	select {
	case <-e.gate:
	case <-ctx.Done():
		return state.DigResult{}, ctx.Err()
	}
	return e.Memory.Dig(ctx, hunt, player, x, y)
}

// opener returns a function that closes gate, once however often it is
// called, and calls it in the test's cleanup: registered after the gateway
// started, it runs before the gateway's own cleanup, whose Shutdown waits for
// the workers the gate holds.
func opener(t *testing.T, gate chan struct{}) func() {
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(open)
	return open
}

// await waits for a signal on ch, failing the test with what after 10 s.
func await(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(what)
	}
}

// membership is what a probe on the loops found of one player in one hunt.
type membership struct {
	joined bool
	holds  int32
	held   int
}

// probe reports player's membership of hunt, read on the loops themselves.
// Posts from one goroutine run in order, so the probe sees every push posted
// before it was called.
func probe(t *testing.T, tg *testGateway, player, hunt string) membership {
	t.Helper()
	out := make(chan membership, len(tg.loops))
	tg.node.PostAll(func(l *conn.Loop) {
		var m membership
		tg.loops[l.ID()].sessions.each(func(s *session) {
			if s.h == 0 || s.player != player {
				return
			}
			if i := s.findName([]byte(hunt)); i >= 0 {
				m = membership{joined: true, holds: s.joined[i].holds, held: len(s.joined[i].held)}
			}
		})
		out <- m
	})
	var m membership
	for range tg.loops {
		select {
		case r := <-out:
			if r.joined {
				m = r
			}
		case <-time.After(10 * time.Second):
			t.Fatal("loop probe timed out")
		}
	}
	return m
}

// TestOverloadedRefusesAndRecovers fills the work queue of a blocking engine
// and checks that requests beyond it are refused with overloaded at once
// (dig, join of a new and of a known hunt, leave, status, an op on an
// unjoined unknown hunt), without starting goroutines and without leaving a
// push hold behind; that a connection closing meanwhile still leaves the
// hunt; that the refusals are counted; and that once the engine moves again
// everything queued completes, the held push arrives and the connection
// keeps working.
func TestOverloadedRefusesAndRecovers(t *testing.T) {
	const queue = 4
	eng := &gatedEngine{entered: make(chan struct{}, 4096), gate: make(chan struct{})}
	tg := startGated(t, func(c *Config) { c.Rate = -1; c.WorkQueue = queue }, eng)
	unblock := opener(t, eng.gate)
	tg.createHunt(t, fixedHunt("h", 10))
	tg.createHunt(t, fixedHunt("h2", 1))
	alice, bob, carol := tg.player(t, "alice"), tg.player(t, "bob"), tg.player(t, "carol")
	alice.join("h")
	bob.join("h")
	carol.join("h2")

	// Hold every worker in Dig, then fill the queue behind them. The ping
	// is answered on the loop after the digs before it were handled.
	workers := tg.workerCount()
	for i := range workers {
		alice.send(`{"op":"dig","hunt":"h","x":%d,"y":5,"ref":"w%d"}`, i%64, i)
	}
	for range workers {
		await(t, eng.entered, "workers did not all reach the engine")
	}
	for i := range queue {
		alice.send(`{"op":"dig","hunt":"h","x":%d,"y":6,"ref":"q%d"}`, i, i)
	}
	alice.sendRaw(`{"op":"ping","ref":"p0"}`)
	alice.expect("pong")
	if n := len(tg.work); n != queue {
		t.Fatalf("work queue holds %d, want %d (full)", n, queue)
	}
	inFlight := int32(workers + queue)

	// A push to the hunt is held for alice (her digs are in flight), bob gets it.
	if _, err := tg.engine.Publish(context.Background(), "h", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if m := bob.expect("update"); m.num("seq") != 1 {
		t.Fatalf("bob: %v", m)
	}
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true, holds: inFlight, held: 1}) {
		t.Fatalf("before the refusal: %+v, want %d holds and 1 held push", m, inFlight)
	}

	refused := 0
	refuse := func(c *client, req, ref string) {
		t.Helper()
		c.sendRaw(req)
		m := c.expectError("overloaded")
		if m.str("ref") != ref || m.str("message") == "" {
			t.Fatalf("%s: %v, want ref %q and a message", req, m, ref)
		}
		refused++
	}
	refuse(alice, `{"op":"dig","hunt":"h","x":1,"y":0,"ref":"over"}`, "over")
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true, holds: inFlight, held: 1}) {
		t.Fatalf("after the refused dig: %+v, want its hold released", m)
	}
	refuse(alice, `{"op":"status","hunt":"h","ref":"s"}`, "s")
	refuse(alice, `{"op":"leave","hunt":"h","ref":"l"}`, "l")
	if m := probe(t, tg, "alice", "h"); !m.joined {
		t.Fatal("a refused leave left the hunt")
	}
	refuse(alice, `{"op":"join","hunt":"h2","ref":"j"}`, "j") // known on the node: joinHeld
	if m := probe(t, tg, "alice", "h2"); m.joined {
		t.Fatalf("a refused join left a membership behind: %+v", m)
	}
	tg.createHunt(t, fixedHunt("h3", 1))
	refuse(alice, `{"op":"join","hunt":"h3","ref":"j3"}`, "j3") // first join on the node
	if m := probe(t, tg, "alice", "h3"); m.joined {
		t.Fatalf("a refused first join left a membership behind: %+v", m)
	}
	refuse(alice, `{"op":"dig","hunt":"nope","x":0,"y":0,"ref":"n"}`, "n")
	// A hunt known on the node needs no engine call to answer not_joined.
	alice.sendRaw(`{"op":"dig","hunt":"h2","x":0,"y":0,"ref":"nj"}`)
	if m := alice.expectError("not_joined"); m.str("ref") != "nj" {
		t.Fatalf("not joined: %v", m)
	}

	// A flood is refused without a goroutine per request.
	const flood = 300
	before := runtime.NumGoroutine()
	for i := range flood {
		alice.send(`{"op":"dig","hunt":"h","x":2,"y":0,"ref":"f%d"}`, i)
	}
	alice.sendRaw(`{"op":"ping","ref":"p1"}`)
	for i := range flood {
		if m := alice.expectError("overloaded"); m.str("ref") != fmt.Sprintf("f%d", i) {
			t.Fatalf("flood reply %d: %v", i, m)
		}
	}
	refused += flood
	alice.expect("pong")
	if after := runtime.NumGoroutine(); after > before+20 {
		t.Fatalf("goroutines %d before the flood, %d after: not bounded", before, after)
	}
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true, holds: inFlight, held: 1}) {
		t.Fatalf("after the flood: %+v", m)
	}

	// Carol's connection closes while the queue is full: her leave must still
	// reach the engine, through the leave backlog.
	carol.c.Close()
	waitFor(t, "carol's leave while the queue is full", func() bool {
		st, err := tg.engine.Status(context.Background(), "h2")
		return err == nil && st.Players == 0 && tg.hunts.getString("h2").players.Load() == 0
	})
	if n := len(tg.work); n != queue {
		t.Fatalf("work queue holds %d, want it still full", n)
	}

	// Refusals are counted as errors on /v1/stats and /metrics.
	if n := tg.Stats(context.Background()).Errors["overloaded"]; n != int64(refused) {
		t.Fatalf("stats errors.overloaded = %d, want %d", n, refused)
	}
	code, body := tg.adminDo(t, "GET", "/metrics", "", "")
	if want := fmt.Sprintf(`huntgate_errors_total{code="overloaded"} %d`, refused); code != 200 || !strings.Contains(string(body), want) {
		t.Fatalf("/metrics (%d) lacks %q", code, want)
	}

	// The engine moves again: every queued dig answers, then the held push.
	unblock()
	want := map[string]bool{}
	for i := range workers {
		want[fmt.Sprintf("w%d", i)] = true
	}
	for i := range queue {
		want[fmt.Sprintf("q%d", i)] = true
	}
	for len(want) > 0 {
		m := alice.read()
		if m.str("op") != "dug" || !want[m.str("ref")] {
			t.Fatalf("got %v, want the dug of one of %v", m, want)
		}
		delete(want, m.str("ref"))
	}
	if m := alice.expect("update"); m.num("seq") != 1 || m.str("kind") != "event" {
		t.Fatalf("held push: %v", m)
	}
	if m := probe(t, tg, "alice", "h"); m != (membership{joined: true}) {
		t.Fatalf("after recovery: %+v, want no hold and nothing held", m)
	}

	// The connection keeps working, live pushes included.
	alice.sendRaw(`{"op":"dig","hunt":"h","x":3,"y":0,"ref":"again"}`)
	if m := alice.expect("dug"); m.str("ref") != "again" || m["found"] != true {
		t.Fatalf("dig after recovery: %v", m)
	}
	if m := alice.expect("update"); m.str("kind") != "claimed" || m.num("seq") != 2 {
		t.Fatalf("claimed after recovery: %v", m)
	}
	alice.sendRaw(`{"op":"join","hunt":"h2","ref":"j2"}`)
	if m := alice.until("joined"); m.str("ref") != "j2" {
		t.Fatalf("join after recovery: %v", m)
	}
	alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l2"}`)
	if m := alice.until("left"); m.str("ref") != "l2" {
		t.Fatalf("leave after recovery: %v", m)
	}
}

// TestClusterUnknownHunt checks on the Redis engine that an op on a hunt
// that does not exist answers unknown_hunt, and one on an existing hunt the
// player has not joined not_joined, whether or not the hunt is known on the
// node yet.
func TestClusterUnknownHunt(t *testing.T) {
	url := startRedis(t)
	g, e := startClusterNode(t, url)
	if _, err := e.Create(context.Background(), fixedHunt("isle", 3)); err != nil {
		t.Fatal(err)
	}
	alice := g.player(t, "alice")
	// Replies to offloaded ops may overtake each other: one at a time.
	ask := func(req, code, ref string) {
		t.Helper()
		alice.sendRaw(req)
		if m := alice.expectError(code); m.str("ref") != ref {
			t.Fatalf("%s: %v, want ref %q", req, m, ref)
		}
	}
	check := func() {
		t.Helper()
		ask(`{"op":"dig","hunt":"nope","x":0,"y":0,"ref":"d1"}`, "unknown_hunt", "d1")
		ask(`{"op":"dig","hunt":"isle","x":0,"y":0,"ref":"d2"}`, "not_joined", "d2")
		ask(`{"op":"leave","hunt":"nope","ref":"l1"}`, "unknown_hunt", "l1")
		ask(`{"op":"leave","hunt":"isle","ref":"l2"}`, "not_joined", "l2")
		ask(`{"op":"status","hunt":"nope","ref":"s1"}`, "unknown_hunt", "s1")
	}
	check()
	// Once a player on the node has joined, the hunt is known locally.
	g.player(t, "bob").join("isle")
	if g.hunts.getString("isle") == nil {
		t.Fatal("isle not registered after a join")
	}
	check()
}

// joinGatedEngine is a blocking engine whose Join waits for gate while
// block is closed, so that a test can act while a join is at the engine. It
// counts alice's engine leaves and signals lateLeave for one made after the
// gated join returned.
type joinGatedEngine struct {
	blockingEngine
	block     chan struct{}
	entered   chan struct{}
	gate      chan struct{}
	lateLeave chan struct{}

	mu       sync.Mutex
	joinDone bool
	leaves   int
}

func (e *joinGatedEngine) Join(ctx context.Context, hunt, player string) (state.Status, error) {
	select {
	case <-e.block:
		e.entered <- struct{}{}
		<-e.gate
		defer func() {
			e.mu.Lock()
			e.joinDone = true
			e.mu.Unlock()
		}()
	default:
	}
	return e.Memory.Join(ctx, hunt, player)
}

func (e *joinGatedEngine) Leave(ctx context.Context, hunt, player string) error {
	if player == "alice" {
		e.mu.Lock()
		e.leaves++
		if e.joinDone {
			select {
			case e.lateLeave <- struct{}{}:
			default:
			}
		}
		e.mu.Unlock()
	}
	return e.Memory.Leave(ctx, hunt, player)
}

// TestLeaveWhileJoining leaves (by op, by closing the connection, and by op
// after a repeated join was answered) while the engine is still answering the
// first join: alice is left in the engine once
// (by finishJoin, after the join returned), so the hunt stays watched for
// bob, who remains, and keeps reaching him.
func TestLeaveWhileJoining(t *testing.T) {
	for _, how := range []string{"leave", "close", "rejoin-leave"} {
		t.Run(how, func(t *testing.T) {
			e := &joinGatedEngine{block: make(chan struct{}), entered: make(chan struct{}, 1),
				gate: make(chan struct{}), lateLeave: make(chan struct{}, 1)}
			tg := startGated(t, nil, e)
			tg.createHunt(t, fixedHunt("h", 10))
			bob := tg.player(t, "bob")
			bob.join("h")
			info := tg.hunts.getString("h")
			close(e.block)
			alice := tg.player(t, "alice")
			alice.sendRaw(`{"op":"join","hunt":"h","ref":"j"}`)
			<-e.entered
			if how == "rejoin-leave" {
				// The repeated join asks only the status, so it is answered
				// while the first is still at the engine.
				alice.sendRaw(`{"op":"join","hunt":"h","ref":"j2"}`)
				if m := alice.expect("joined"); m.str("ref") != "j2" {
					t.Fatalf("joined %v", m)
				}
			}
			if how != "close" {
				alice.sendRaw(`{"op":"leave","hunt":"h","ref":"l"}`)
				if m := alice.expect("left"); m.str("ref") != "l" {
					t.Fatalf("left %v", m)
				}
			} else {
				alice.c.Close()
				waitFor(t, "alice's session closed", func() bool { return tg.m.conns.Load() == 1 })
			}
			close(e.gate)
			if how != "close" {
				// Every request is answered: the join that was left before it
				// completed says so, after the left.
				if m := alice.expect("error"); m.str("ref") != "j" || m.str("code") != "not_joined" {
					t.Fatalf("join answered %v", m)
				}
			}
			// finishJoin's leave: any other came before it.
			await(t, e.lateLeave, "no engine leave after the join returned")
			e.mu.Lock()
			leaves := e.leaves
			e.mu.Unlock()
			if leaves != 1 {
				t.Fatalf("alice left the engine %d times, want 1", leaves)
			}
			waitFor(t, "alice counted out of the node", func() bool { return info.players.Load() == 1 })
			if code, _ := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, `{"n":1}`); code != 200 {
				t.Fatalf("publish: %d", code)
			}
			if m := bob.expect("update"); m.str("kind") != "event" {
				t.Fatalf("bob got %v", m)
			}
		})
	}
}

// TestBurstQueuedStallRefused: a burst of digs larger than the workers is
// queued, not refused, while the engine may still take it; once no worker
// has taken a call for over a second (the engine stalled), a request is
// refused at once with overloaded although the queue has room; when the
// engine resumes, everything queued is answered and requests are accepted
// again.
func TestBurstQueuedStallRefused(t *testing.T) {
	eng := &gatedEngine{entered: make(chan struct{}, 4096), gate: make(chan struct{})}
	tg := startGated(t, func(c *Config) { c.Rate = -1; c.WorkQueue = 10000 }, eng)
	unblock := opener(t, eng.gate)
	tg.createHunt(t, fixedHunt("h", 1))
	alice := tg.player(t, "alice")
	alice.join("h")
	burst := 20 * tg.workerCount()
	for i := range burst {
		alice.send(`{"op":"dig","hunt":"h","x":%d,"y":%d,"ref":"b%d"}`, i%64, 1+i/64, i)
	}
	alice.sendRaw(`{"op":"ping","ref":"p"}`)
	if m := alice.expect("pong"); m.str("ref") != "p" {
		t.Fatalf("got %v before the pong: the burst was refused", m)
	}
	// Stalled: the workers hold their digs; after a second new ones are refused.
	var refusedAfter int
	waitFor(t, "a request refused while the engine is stalled", func() bool {
		alice.send(`{"op":"dig","hunt":"h","x":0,"y":60,"ref":"s%d"}`, refusedAfter)
		alice.sendRaw(`{"op":"ping","ref":"q"}`)
		m := alice.read()
		if m.str("op") == "error" {
			if m.str("code") != "overloaded" {
				t.Fatalf("stalled: %v", m)
			}
			alice.expect("pong")
			return true
		}
		if m.str("op") != "pong" {
			t.Fatalf("stalled: %v", m)
		}
		refusedAfter++
		time.Sleep(100 * time.Millisecond) // the stall is what is measured: a second without progress
		return false
	})
	if len(tg.work) >= cap(tg.work) {
		t.Fatal("refused only because the queue was full")
	}
	unblock()
	for i := 0; i < burst+refusedAfter; i++ {
		if m := alice.until("dug"); m.str("ref") == "" {
			t.Fatalf("dug without ref: %v", m)
		}
	}
	alice.send(`{"op":"dig","hunt":"h","x":1,"y":62,"ref":"after"}`)
	if m := alice.until("dug"); m.str("ref") != "after" {
		t.Fatalf("after the stall: %v", m)
	}
}
