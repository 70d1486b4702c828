package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/huntgate/huntgate/state"
)

func TestPingEchoesRefAndTs(t *testing.T) {
	tg := startGateway(t, nil)
	c := tg.player(t, "alice")
	c.sendRaw(`{"op":"ping","ts":1700000000123.5,"ref":"r-1"}`)
	m := c.expect("pong")
	if m["ts"] != 1700000000123.5 || m["ref"] != "r-1" {
		t.Fatalf("pong %v", m)
	}
	// ts is echoed verbatim, not re-encoded.
	c.sendRaw(`{"op":"ping","ts":1e3,"ref":42}`)
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.c.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"ts":1e3`) || !strings.Contains(string(b), `"ref":42`) {
		t.Fatalf("pong %s, %v", b, err)
	}
}

func TestRequestErrors(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 4))
	c := tg.player(t, "alice")
	for _, tc := range []struct{ in, code string }{
		{`{"op":"ping"`, "bad_request"},
		{`not json`, "bad_request"},
		{`[1]`, "bad_request"},
		{`{"op":"teleport","ref":"u"}`, "unknown_op"},
		{`{"op":"join","hunt":"nope","ref":"j"}`, "unknown_hunt"},
		{`{"op":"dig","hunt":"nope","x":1,"y":1}`, "unknown_hunt"},
		{`{"op":"dig","hunt":"h","x":1,"y":1}`, "not_joined"},
		{`{"op":"leave","hunt":"h"}`, "not_joined"},
		{`{"op":"dig","hunt":"h","x":"1","y":1}`, "bad_request"},
		{`{"op":"status","hunt":"nope"}`, "unknown_hunt"},
	} {
		c.sendRaw(tc.in)
		m := c.expectError(tc.code)
		if strings.Contains(tc.in, `"ref"`) && m["ref"] == nil {
			t.Fatalf("%s: ref not echoed: %v", tc.in, m)
		}
		if m.str("message") == "" {
			t.Fatalf("%s: no message: %v", tc.in, m)
		}
	}
	// Out of grid and ended once joined.
	c.join("h")
	c.sendRaw(`{"op":"dig","hunt":"h","x":64,"y":0,"ref":1}`)
	c.expectError("out_of_grid")
	if code, _ := tg.adminDo(t, "DELETE", "/v1/hunts/h", testAPIKey, ""); code != 200 {
		t.Fatalf("end: %d", code)
	}
	if m := c.expect("update"); m.str("kind") != "ended" {
		t.Fatalf("want ended update, got %v", m)
	}
	c.sendRaw(`{"op":"dig","hunt":"h","x":1,"y":0}`)
	c.expectError("ended")
	// Binary frames are not part of the protocol.
	if err := c.c.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	c.expectError("bad_request")
	// The connection survived all of that.
	c.sendRaw(`{"op":"ping"}`)
	c.expect("pong")
}

func TestOversizeCloses1009(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxMessage = 512 })
	c := tg.player(t, "alice")
	// A message of exactly the limit is accepted.
	head := `{"op":"ping","ref":"fit","pad":"`
	c.sendRaw(head + strings.Repeat("x", 512-len(head)-2) + `"}`)
	if m := c.expect("pong"); m.str("ref") != "fit" {
		t.Fatalf("pong %v", m)
	}
	c.sendRaw(`{"op":"ping","pad":"` + strings.Repeat("x", 600) + `"}`)
	if ce := c.expectClose(); ce.Code != websocket.CloseMessageTooBig {
		t.Fatalf("close %v, want 1009", ce)
	}
}

func TestRateLimit(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.Rate = 1; c.RateBurst = 5 })
	c := tg.player(t, "alice")
	// Writes and reads are interleaved so that the refusals are seen before
	// the connection is closed for sustained excess.
	limited := 0
	for i := 0; i < 10; i++ {
		c.send(`{"op":"ping","ref":%d}`, i)
		m := c.read()
		switch m.str("op") {
		case "pong":
		case "error":
			if m.str("code") != "rate_limited" || m.num("ref") != float64(i) {
				t.Fatalf("got %v", m)
			}
			limited++
		default:
			t.Fatalf("got %v", m)
		}
	}
	if limited < 4 {
		t.Fatalf("%d of 10 pings rate limited with burst 5, want >= 4", limited)
	}
	// Sustained excess (more than 3 x burst refusals) closes with 1008.
	for i := 0; i < 20; i++ {
		if err := c.c.WriteMessage(websocket.TextMessage, []byte(`{"op":"ping"}`)); err != nil {
			break
		}
	}
	if ce := c.expectClose(); ce.Code != websocket.ClosePolicyViolation || ce.Text != "rate limit" {
		t.Fatalf("close %v, want 1008 \"rate limit\"", ce)
	}
	waitFor(t, "rate close counted", func() bool { return tg.m.rateCloses.Load() == 1 })
}

func TestMaxHuntsAndLeave(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.MaxHunts = 2 })
	for _, id := range []string{"a", "b", "c"} {
		tg.createHunt(t, fixedHunt(id, 2))
	}
	c := tg.player(t, "alice")
	c.join("a")
	c.join("b")
	c.sendRaw(`{"op":"join","hunt":"c","ref":"x"}`)
	c.expectError("too_many_hunts")
	c.sendRaw(`{"op":"leave","hunt":"a","ref":"l"}`)
	if m := c.expect("left"); m.str("hunt") != "a" || m.str("ref") != "l" {
		t.Fatalf("left %v", m)
	}
	c.join("c")
	c.sendRaw(`{"op":"status","hunt":"c","ref":"s"}`)
	m := c.expect("status")
	st := m["status"].(map[string]any)
	if m.str("hunt") != "c" || st["players"] != 1.0 || st["state"] != "open" || st["treasures_left"] != 3.0 {
		t.Fatalf("status %v", m)
	}
}

func TestAuth(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.DevMode = false })
	tg.createHunt(t, fixedHunt("a", 1))
	tg.createHunt(t, fixedHunt("b", 1))
	future := time.Now().Add(time.Hour)
	good := token(t, testSecret, "alice", future, []string{"a"})
	cases := []struct {
		name  string
		path  string
		hdr   http.Header
		want  int
		extra string
	}{
		{"no credentials", "/ws", nil, 401, ""},
		{"dev player refused outside dev mode", "/ws?player=alice", nil, 401, ""},
		{"forged", "/ws?token=" + token(t, "other-secret", "alice", future, nil), nil, 401, ""},
		{"expired", "/ws?token=" + token(t, testSecret, "alice", time.Now().Add(-time.Minute), nil), nil, 401, ""},
		{"no exp", "/ws?token=" + token(t, testSecret, "alice", time.Time{}, nil), nil, 401, ""},
		{"bad sub", "/ws?token=" + token(t, testSecret, "al ice", future, nil), nil, 401, ""},
		{"garbage", "/ws?token=abc.def.ghi", nil, 401, ""},
		{"alg none", "/ws?token=" + signWith(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwt.MapClaims{"sub": "alice", "exp": future.Unix()}), nil, 401, ""},
		{"HS512", "/ws?token=" + signWith(t, jwt.SigningMethodHS512, []byte(testSecret), jwt.MapClaims{"sub": "alice", "exp": future.Unix()}), nil, 401, ""},
		{"hunts not a list", "/ws?token=" + signWith(t, jwt.SigningMethodHS256, []byte(testSecret), jwt.MapClaims{"sub": "alice", "exp": future.Unix(), "hunts": "a"}), nil, 401, ""},
		{"bad query token beside a good bearer", "/ws?token=x", http.Header{"Authorization": {"Bearer " + good}}, 401, ""},
		{"bearer", "/ws", http.Header{"Authorization": {"Bearer " + good}}, 101, ""},
		{"query", "/ws?token=" + good, nil, 101, ""},
		{"unknown path", "/nope?token=" + good, nil, 404, ""},
	}
	for _, tc := range cases {
		if got := tg.dialStatus(t, tc.path, tc.hdr); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}
	c := tg.dial(t, "/ws?token="+good)
	c.sendRaw(`{"op":"join","hunt":"b","ref":1}`)
	c.expectError("forbidden")
	c.sendRaw(`{"op":"status","hunt":"b"}`)
	c.expectError("forbidden")
	c.join("a")
	// The token's subject is who digs: a player cannot act as another.
	c.sendRaw(`{"op":"dig","hunt":"a","x":0,"y":0,"player":"mallory"}`)
	if m := c.expect("dug"); m["found"] != true {
		t.Fatalf("dug %v", m)
	}
	if m := c.expect("update"); m.str("player") != "alice" {
		t.Fatalf("claimed by %v", m)
	}
	if n := tg.m.authFailures.Load(); n != 11 {
		t.Fatalf("auth failures %d, want 11", n)
	}
}

// signWith signs claims with any method, for tokens the gateway must refuse.
func signWith(t testing.TB, m jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDevModeAndRefusals(t *testing.T) {
	tg := startGateway(t, func(c *Config) { c.TestEndpoints = false })
	if got := tg.dialStatus(t, "/ws?player=bad%20id", nil); got != 401 {
		t.Fatalf("bad dev id: %d", got)
	}
	if got := tg.dialStatus(t, "/echo", nil); got != 404 {
		t.Fatalf("/echo without test endpoints: %d", got)
	}
	if got := tg.dialStatus(t, "/ws?player=ok.id-1_", nil); got != 101 {
		t.Fatalf("dev id: %d", got)
	}
}

// Two players dig the same treasure at the same moment: exactly one finds it.
func TestConcurrentDigOneWinner(t *testing.T) {
	tg := startGateway(t, nil)
	const n = 40
	tg.createHunt(t, fixedHunt("race", n))
	a, b := tg.player(t, "alice"), tg.player(t, "bob")
	a.join("race")
	b.join("race")
	wins := map[string]int{}
	for i := 0; i < n; i++ {
		var wg sync.WaitGroup
		found := make([]bool, 2)
		for _, c := range []*client{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = c.c.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"op":"dig","hunt":"race","x":%d,"y":0}`, i))
			}()
		}
		wg.Wait()
		for k, c := range []*client{a, b} {
			// Read until this player's dug; pushes may come first.
			for {
				m, err := c.tryRead(5 * time.Second)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				if m.str("op") == "dug" {
					found[k] = m["found"] == true
					break
				}
			}
		}
		if found[0] == found[1] {
			t.Fatalf("treasure %d: found = %v, want exactly one", i, found)
		}
		if found[0] {
			wins["alice"]++
		} else {
			wins["bob"]++
		}
	}
	st, _ := tg.engine.Status(t.Context(), "race")
	if st.TreasuresLeft != 1 || st.Seq != n {
		t.Fatalf("status after race: %+v", st)
	}
	t.Logf("wins: %v", wins)
}

// The digger gets dug before the claimed push it causes; others get the push.
func TestDugBeforeClaimed(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 20))
	a, b := tg.player(t, "alice"), tg.player(t, "bob")
	a.join("h")
	b.join("h")
	for i := 0; i < 20; i++ {
		a.send(`{"op":"dig","hunt":"h","x":%d,"y":0,"ref":%d}`, i, i)
		m := a.expect("dug")
		if m["found"] != true || m.num("ref") != float64(i) || m.num("points") != float64(i+1) || m.num("rank") != 1 {
			t.Fatalf("dug %v", m)
		}
		if u := a.expect("update"); u.str("kind") != "claimed" || u.num("seq") != m.num("seq") || u.str("player") != "alice" {
			t.Fatalf("after dug: %v", u)
		}
		if u := a.expect("update"); u.str("kind") != "leaderboard" {
			t.Fatalf("after claimed: %v", u)
		}
		if u := b.expect("update"); u.str("kind") != "claimed" || u.str("treasure") != fmt.Sprintf("t%d", i) {
			t.Fatalf("other player: %v", u)
		}
		b.expect("update")
	}
	a.send(`{"op":"dig","hunt":"h","x":5,"y":5}`)
	if m := a.expect("dug"); m["found"] != false {
		t.Fatalf("empty cell: %v", m)
	}
}

// A player misses updates while disconnected and resumes with since/epoch:
// nothing reliable is lost and the order is kept.
func TestResume(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 50))
	a := tg.player(t, "alice")
	j := a.join("h")
	if j["reset"] != true {
		t.Fatalf("first join: %v", j)
	}
	epoch := uint64(j.num("epoch"))
	publish := func(i int) {
		if code, body := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, fmt.Sprintf(`{"i":%d}`, i)); code != 200 {
			t.Fatalf("publish: %d %s", code, body)
		}
	}
	for i := 0; i < 5; i++ {
		publish(i)
	}
	var last uint64
	for i := 0; i < 5; i++ {
		m := a.expect("update")
		last = uint64(m.num("seq"))
	}
	a.c.Close()
	// Missed while away: events and claims by another player.
	bob := tg.player(t, "bob")
	bob.join("h")
	for i := 5; i < 10; i++ {
		publish(i)
		bob.send(`{"op":"dig","hunt":"h","x":%d,"y":0}`, i)
		// The claim is in the history once bob has his answer.
		if m := bob.until("dug"); m["found"] != true {
			t.Fatalf("bob's dig %d: %v", i, m)
		}
	}
	a2 := tg.player(t, "alice")
	a2.send(`{"op":"join","hunt":"h","since":%d,"epoch":%d,"ref":"resume"}`, last, epoch)
	j = a2.expect("joined")
	if j["reset"] != false || j.num("replayed") != 10 {
		t.Fatalf("resume: %v", j)
	}
	// Live updates published right after the resume follow the replay in order.
	for i := 10; i < 15; i++ {
		publish(i)
	}
	want := last + 1
	for n := 0; n < 15; {
		m := a2.expect("update")
		if m.str("kind") == "leaderboard" {
			continue
		}
		if uint64(m.num("seq")) != want {
			t.Fatalf("seq %v, want %d (%v)", m["seq"], want, m)
		}
		want++
		n++
	}
	// A since from another epoch gets a reset with the full status.
	a3 := tg.player(t, "carol")
	a3.send(`{"op":"join","hunt":"h","since":1,"epoch":%d}`, epoch+1)
	if j := a3.expect("joined"); j["reset"] != true || j["status"] == nil {
		t.Fatalf("other epoch: %v", j)
	}
}

// A since older than the history bound gets a reset.
func TestResumeTooOld(t *testing.T) {
	tg := startGateway(t, nil, state.MemoryConfig{HistoryMax: 4})
	tg.createHunt(t, fixedHunt("h", 1))
	epoch := uint64(tg.player(t, "x").join("h").num("epoch"))
	for i := 0; i < 10; i++ {
		if _, err := tg.engine.Publish(t.Context(), "h", []byte(`1`)); err != nil {
			t.Fatal(err)
		}
	}
	c := tg.player(t, "alice")
	c.send(`{"op":"join","hunt":"h","since":2,"epoch":%d}`, epoch)
	if j := c.expect("joined"); j["reset"] != true || j.num("seq") != 10 {
		t.Fatalf("old since: %v", j)
	}
	c2 := tg.player(t, "bob")
	c2.send(`{"op":"join","hunt":"h","since":7,"epoch":%d}`, epoch)
	if j := c2.expect("joined"); j["reset"] != false || j.num("replayed") != 3 {
		t.Fatalf("held since: %v", j)
	}
	for i := 8; i <= 10; i++ {
		if m := c2.expect("update"); m.num("seq") != float64(i) {
			t.Fatalf("replay %v, want seq %d", m, i)
		}
	}
}

func TestEventPassthrough(t *testing.T) {
	tg := startGateway(t, nil)
	tg.createHunt(t, fixedHunt("h", 1))
	c := tg.player(t, "alice")
	c.join("h")
	body := `{"type":"storm","at":[1,2],"msg":"é \"q\""}`
	code, resp := tg.adminDo(t, "POST", "/v1/hunts/h/events", testAPIKey, body)
	if code != 200 || string(resp) != "{\"seq\":1}\n" {
		t.Fatalf("publish: %d %s", code, resp)
	}
	_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.c.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"data":`+body) {
		t.Fatalf("event push %s (%v), want data %s unchanged", b, err, body)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil || m.str("kind") != "event" || m.num("seq") != 1 {
		t.Fatalf("event push %s", b)
	}
}

// blockingEngine presents the memory engine as one that must not be called on
// an event loop, like a networked store: the gateway then makes engine calls
// on worker goroutines and posts the results back to the loops.
type blockingEngine struct{ *state.Memory }

func (blockingEngine) Inline() bool { return false }

// wire points b at the gateway's memory engine.
func (b *blockingEngine) wire(m *state.Memory) { b.Memory = m }

// startGated starts a gateway on e, a test engine that embeds a
// blockingEngine, with that blockingEngine wired to the gateway's memory
// engine.
func startGated(t testing.TB, mod func(*Config), e interface {
	state.Engine
	wire(*state.Memory)
}) *testGateway {
	return startGatewayWith(t, mod, func(m *state.Memory) state.Engine { e.wire(m); return e })
}

func TestOffLoopEngine(t *testing.T) {
	tg := startGatewayWith(t, nil, func(m *state.Memory) state.Engine { return blockingEngine{m} })
	tg.createHunt(t, fixedHunt("h", 10))
	a, b := tg.player(t, "alice"), tg.player(t, "bob")
	if j := a.join("h"); j["reset"] != true {
		t.Fatalf("join %v", j)
	}
	b.join("h")
	a.sendRaw(`{"op":"join","hunt":"nope","ref":1}`)
	a.expectError("unknown_hunt")
	a.sendRaw(`{"op":"dig","hunt":"h","x":0,"y":0,"ref":"d"}`)
	if m := a.expect("dug"); m["found"] != true || m.str("ref") != "d" {
		t.Fatalf("dug %v", m)
	}
	if m := a.expect("update"); m.str("kind") != "claimed" {
		t.Fatalf("after dug %v", m)
	}
	if m := b.expect("update"); m.str("kind") != "claimed" || m.str("player") != "alice" {
		t.Fatalf("claimed %v", m)
	}
	b.sendRaw(`{"op":"status","hunt":"h","ref":2}`)
	if m := b.until("status"); m["status"].(map[string]any)["players"] != 2.0 {
		t.Fatalf("status %v", m)
	}
	b.sendRaw(`{"op":"leave","hunt":"h"}`)
	b.until("left")
	// Resume through the worker path.
	c := tg.player(t, "carol")
	c.send(`{"op":"join","hunt":"h","since":0,"epoch":%d}`, uint64(1<<40))
	if j := c.expect("joined"); j["reset"] != false || j.num("replayed") != 1 {
		t.Fatalf("resume %v", j)
	}
	if m := c.expect("update"); m.num("seq") != 1 {
		t.Fatalf("replay %v", m)
	}
	b.c.Close()
	waitFor(t, "players after close", func() bool { return tg.hunts.getString("h").players.Load() == 2 })
}

// Players who join while updates are being published get a contiguous
// stream: joined.seq (or the replay) then every later seq, none twice.
func TestJoinDuringPublishNoGap(t *testing.T) {
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			var wrap func(*state.Memory) state.Engine
			if blocking {
				wrap = func(m *state.Memory) state.Engine { return blockingEngine{m} }
			}
			tg := startGatewayWith(t, func(c *Config) { c.Rate = -1 }, wrap)
			tg.createHunt(t, fixedHunt("h", 1))
			const events = 300
			started := make(chan struct{})
			done := make(chan error, 1)
			go func() {
				for i := 1; i <= events; i++ {
					if _, err := tg.engine.Publish(context.Background(), "h", []byte(strconv.Itoa(i))); err != nil {
						done <- err
						return
					}
					if i == 20 {
						close(started)
					}
				}
				done <- nil
			}()
			<-started
			var cs []*client
			var from []uint64
			for i := 0; i < 6; i++ {
				c := tg.player(t, fmt.Sprintf("p%d", i))
				if i%2 == 0 {
					c.sendRaw(`{"op":"join","hunt":"h"}`)
				} else {
					c.send(`{"op":"join","hunt":"h","since":5,"epoch":%d}`, uint64(1<<40))
				}
				j := c.expect("joined")
				next := uint64(j.num("seq")) + 1
				if j["reset"] == false {
					next = 6
				}
				cs = append(cs, c)
				from = append(from, next)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			for k, c := range cs {
				for want := from[k]; want <= events; want++ {
					if m := c.expect("update"); uint64(m.num("seq")) != want {
						t.Fatalf("player %d: got %v, want seq %d", k, m, want)
					}
				}
			}
		})
	}
}
